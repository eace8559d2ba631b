"""Classify IP addresses the way a cloud service sees them."""

from __future__ import annotations

import ipaddress

_CGNAT = ipaddress.ip_network("100.64.0.0/10")
# RFC 5737 / RFC 3849: documentation examples, never a real PBX.
_DOC = [ipaddress.ip_network(n) for n in
        ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "2001:db8::/32")]


def parse_ip(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(value.strip("[]"))
    except ValueError:
        return None


def address_kind(value: str) -> str | None:
    """'loopback', 'private', 'carrier-grade NAT', 'documentation-only', 'reserved', or None for a public address
    (or for something that is not an IP at all)."""
    ip = parse_ip(value)
    if ip is None:
        return None
    if ip.is_loopback:
        return "loopback"
    if ip.version == 4 and ip in _CGNAT:
        return "carrier-grade NAT"
    if any(ip in net for net in _DOC if net.version == ip.version):
        return "documentation-only (RFC 5737)"
    if ip.is_private:
        return "private"
    if ip.is_reserved or ip.is_multicast or ip.is_unspecified or ip.is_link_local:
        return "reserved"
    return None


def canonical_ip(value: str) -> str:
    """One spelling per address, so addresses compare as strings: ``2001:DB8:0::1`` and
    ``[2001:db8::1]`` (as some servers write Via received) are both ``2001:db8::1``."""
    ip = parse_ip(value)
    return str(ip) if ip is not None else value


def uri_host(host: str) -> str:
    """A host as URIs and host:port write it: an IPv6 literal in brackets (RFC 3261 §25.1,
    ``IPv6reference``); names and IPv4 as they are."""
    bare = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    return f"[{bare}]" if ":" in bare else bare


def hostport(host: str, port: int) -> str:
    """``1.2.3.4:5060``, ``[2001:db8::1]:5060``, ``pbx.example.com:5061``."""
    return f"{uri_host(host)}:{port}"


def split_hostport(value: str, default_port: int) -> tuple[str, int]:
    """``host``, ``host:port``, ``[v6]`` or ``[v6]:port`` -> (host, port). ValueError if bad."""
    value = value.strip()
    if value.startswith("["):
        host, close, rest = value[1:].partition("]")
        if not close or (rest and not rest.startswith(":")):
            raise ValueError(f"bad address {value!r}")
        port = rest[1:]
    elif value.count(":") == 1:
        host, port = value.split(":")
    else:
        host, port = value, ""  # a bare name, IPv4, or an unbracketed IPv6 literal
    # ASCII digits only: str.isdigit() admits "５０６０" and "²", which int() reads or chokes on
    if port and not (port.isascii() and port.isdigit() and 0 < int(port) < 65536):
        raise ValueError(f"bad port in {value!r}")
    if not host:
        raise ValueError(f"no host in {value!r}")
    return host, int(port) if port else default_port
