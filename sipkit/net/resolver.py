"""RFC 3263 §4 server location on dnspython: NAPTR -> SRV -> A/AAAA, every lookup recorded.

    resolution = await resolve_sip("pbx.example.com", transport="udp", port=None,
                                   explicit_port=False, nameserver="127.0.0.1:5353", timeout=2)
    resolution.targets   # [Target(host, ip, port, transport)], in the order to try them

The rules (RFC 3263 §4.1, §4.2):

- an IP literal needs no DNS at all;
- an explicit port skips NAPTR and SRV: only A/AAAA of the host, on that port;
- otherwise NAPTR of the host, keeping the records for our transport (SIP+D2U for UDP,
  SIPS+D2T for TLS); their replacement names are SRV names. With none, the SRV name is built
  (``_sip._udp.`` / ``_sips._tcp.``). SRV records are ordered by priority and weight
  (RFC 2782) and their targets resolved to A/AAAA. With no SRV at all, A/AAAA of the host on
  the default port (5060 UDP, 5061 TLS) — or on ``port`` when one was given as a default.

How the dns check uses it: a site always has a port (the API defaults it to 5060) and the
connector is given exactly host and port, so for the connector the port is explicit and the
addresses are the host's A/AAAA. The check asks with ``explicit_port=True, advisory_srv=True``:
NAPTR/SRV are still looked up, at the same time, to *report* what the domain advertises (an SRV
port that differs from the configured one is a warning), never to choose the targets.

Nothing here raises on a DNS failure: each lookup records its outcome (``answer``,
``nxdomain``, ``nodata``, ``servfail``, ``timeout``, ``refused``, ``error``) and the caller
judges. Only a malformed ``nameserver`` raises :class:`NameserverError`.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import dns.asyncresolver
import dns.exception
import dns.nameserver
import dns.resolver

from ..errors import UsageError
from ..net.addresses import hostport
from .addresses import parse_ip, split_hostport
from .target import Target

# RFC 3263 §4.1: NAPTR services and SRV prefixes per transport. TLS is SIPS over TCP.
NAPTR_SERVICE = {"udp": "SIP+D2U", "tcp": "SIP+D2T", "tls": "SIPS+D2T"}
SRV_PREFIX = {"udp": "_sip._udp.", "tcp": "_sip._tcp.", "tls": "_sips._tcp."}
DEFAULT_PORT = {"udp": 5060, "tcp": 5060, "tls": 5061}

# A zone can list many SRV targets; resolving a handful is enough to find one that answers.
MAX_SRV_TARGETS = 8


class NameserverError(UsageError):
    """``--nameserver`` is not "IP" or "IP:PORT"."""


@dataclass
class Lookup:
    """One DNS question and what came back."""

    qname: str
    rdtype: str
    outcome: str = "error"  # answer | nxdomain | nodata | servfail | timeout | refused | error
    answers: list[str] = field(default_factory=list)
    ttl: int | None = None
    ms: float = 0.0
    server: str | None = None  # the name server asked ("ip:port"), or "system resolver"
    cname: str | None = None  # the canonical name when qname was an alias (CNAME)
    error: str | None = None  # why, for servfail/refused/timeout/error

    @property
    def ok(self) -> bool:
        return self.outcome == "answer"

    def text(self, max_answers: int = 10) -> str:
        """One line for evidence and logs."""
        line = f"{self.qname} {self.rdtype}: {self.outcome}"
        if self.answers:
            shown = self.answers[:max_answers]
            more = len(self.answers) - len(shown)
            line += f" {', '.join(shown)}{f' (+{more} more)' if more else ''} (TTL {self.ttl})"
        if self.cname:
            line += f" via CNAME {self.cname}"
        if self.error:
            line += f" [{self.error}]"
        return line + f" in {self.ms:.1f} ms"

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None or k == "ttl"}


@dataclass(frozen=True)
class Srv:
    priority: int
    weight: int
    port: int
    target: str  # absolute, with the trailing dot; "." means "no service here" (RFC 2782)
    name: str = ""  # the SRV owner name it came from

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Naptr:
    order: int
    preference: int
    flags: str
    service: str
    regexp: str
    replacement: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Resolution:
    host: str
    transport: str
    source: str = "a/aaaa"  # ip-literal | a/aaaa | srv | naptr
    targets: list[Target] = field(default_factory=list)
    lookups: list[Lookup] = field(default_factory=list)
    srv: list[Srv] = field(default_factory=list)  # ordered (RFC 2782); advisory or used
    naptr: list[Naptr] = field(default_factory=list)  # all NAPTR records seen, sorted
    explicit_port: bool = False
    ms: float = 0.0  # wall time of the whole resolution
    server: str | None = None

    @property
    def srv_ports(self) -> list[int]:
        return sorted({s.port for s in self.srv if s.target != "."})

    @property
    def addresses(self) -> list[str]:
        """The target addresses, in order, each once."""
        return list(dict.fromkeys(t.ip for t in self.targets))

    @property
    def naptr_services(self) -> list[str]:
        return [n.service for n in self.naptr]

    def lookup(self, qname: str, rdtype: str) -> Lookup | None:
        qname = _absolute(qname)
        return next((lk for lk in self.lookups if lk.qname == qname and lk.rdtype == rdtype),
                    None)


# -- pure helpers (unit-tested) ----------------------------------------------------------------

def srv_order(records: list[Srv]) -> list[Srv]:
    """RFC 2782: lowest priority first; within a priority, heavier weight first.

    RFC 2782 asks for a weighted *random* pick within a priority; a diagnostic wants the same
    order on every run, so the heaviest goes first (the most likely pick) and ties go by name.
    """
    return sorted(records, key=lambda r: (r.priority, -r.weight, r.target))


def naptr_for(records: list[Naptr], transport: str) -> list[Naptr]:
    """The NAPTR records that lead to SRV for ``transport``, best first (RFC 3263 §4.1).

    SIP uses only terminal "S" records with an empty regexp whose replacement is an SRV name;
    order then preference decide (RFC 3403 §4.1). Anything else is not for us.
    """
    want = NAPTR_SERVICE[transport]
    keep = [r for r in records
            if r.service.upper() == want and r.flags.upper() == "S" and not r.regexp
            and r.replacement not in ("", ".")]
    return sorted(keep, key=lambda r: (r.order, r.preference))


def parse_nameserver(value: str) -> tuple[str, int]:
    """ "IP" or "IP:PORT" ([v6]:port for IPv6) -> (ip, port)."""
    try:
        host, port = split_hostport(value, 53)
    except ValueError:
        host, port = "", 0
    if parse_ip(host) is None:
        raise NameserverError(f"--nameserver {value!r} is not an IP address with an optional "
                              ":PORT (e.g. 192.0.2.53 or 127.0.0.1:5353)")
    return host.strip("[]"), port


def _absolute(name: str) -> str:
    return name if name.endswith(".") else name + "."


# -- asking ------------------------------------------------------------------------------------

def make_resolver(nameserver: str | None, timeout: float) -> tuple[Any, str]:
    """A dnspython async resolver that asks exactly ``nameserver`` (or the system's).

    Returns (resolver, a label for reports). No cache: every run asks afresh, so TTLs and
    lookup times are real. Raises NameserverError for a bad ``nameserver``; a missing
    /etc/resolv.conf is not raised here but becomes an ``error`` lookup.
    """
    if nameserver:
        ip, port = parse_nameserver(nameserver)
        res = dns.asyncresolver.Resolver(configure=False)
        res.nameservers = [dns.nameserver.Do53Nameserver(ip, port)]
        label = hostport(ip, port)
    else:
        res = dns.asyncresolver.Resolver()  # /etc/resolv.conf
        label = "system resolver"
    # One budget per question: each try and the whole lookup (retries included).
    res.timeout = res.lifetime = max(0.05, float(timeout))
    res.cache = None
    return res, label


def _failure(exc: dns.resolver.NoNameservers) -> tuple[str, str]:
    """SERVFAIL, REFUSED or an I/O error, from the per-server error list dnspython keeps."""
    errors = exc.kwargs.get("errors") or []
    why = [str(err[3]) for err in errors]
    if any(w == "SERVFAIL" for w in why):
        return "servfail", "; ".join(dict.fromkeys(why))
    if why and all(w == "REFUSED" for w in why):
        return "refused", "REFUSED"
    texts = []
    for err in errors:
        e = err[3]
        if isinstance(e, ConnectionRefusedError):
            texts.append(f"{err[0]}:{err[2]} refused the connection (no DNS server there)")
        else:
            texts.append(f"{err[0]}:{err[2]} {e}")
    return "error", "; ".join(dict.fromkeys(texts))[:300] or "no name server answered"


async def ask(res: Any, qname: str, rdtype: str, server: str | None = None) -> tuple[Lookup, list]:
    """One question; never raises for a DNS failure. Returns the lookup and the rdata list."""
    look = Lookup(_absolute(qname), rdtype, server=server)
    rrs: list = []
    t0 = time.perf_counter()
    try:
        ans = await res.resolve(look.qname, rdtype, raise_on_no_answer=False, search=False)
    except dns.resolver.NXDOMAIN:
        look.outcome = "nxdomain"
    except dns.resolver.NoNameservers as exc:
        look.outcome, look.error = _failure(exc)
    except dns.exception.Timeout:
        look.outcome = "timeout"
        look.error = f"no answer within {res.lifetime:g} s"
    except dns.resolver.NoResolverConfiguration:
        look.error = "no DNS resolver configured on this machine (/etc/resolv.conf)"
    except dns.exception.DNSException as exc:
        look.error = str(exc)[:300] or type(exc).__name__
    else:
        if ans.rrset is None:
            look.outcome = "nodata"
        else:
            rrs = list(ans.rrset)
            look.outcome, look.ttl = "answer", ans.rrset.ttl
            look.answers = [r.to_text() for r in rrs]
            if ans.canonical_name != ans.qname:
                look.cname = ans.canonical_name.to_text()
    look.ms = round((time.perf_counter() - t0) * 1000, 2)
    return look, rrs


async def _addresses(res: Any, name: str, server: str) -> tuple[list[Lookup], list[str]]:
    """A and AAAA of ``name`` at once; IPv4 first (the SIP transports here are v4-first)."""
    (a, a_rr), (aaaa, aaaa_rr) = await asyncio.gather(ask(res, name, "A", server),
                                                      ask(res, name, "AAAA", server))
    return [a, aaaa], [r.address for r in a_rr] + [r.address for r in aaaa_rr]


def _srv_records(rrs: list, owner: str) -> list[Srv]:
    return [Srv(r.priority, r.weight, r.port, r.target.to_text(), owner) for r in rrs]


async def resolve_sip(host: str, *, transport: str = "udp", port: int | None = None,
                      explicit_port: bool = False, nameserver: str | None = None,
                      timeout: float = 3.0, advisory_srv: bool = False) -> Resolution:
    """Locate the SIP server for ``host`` over ``transport`` (RFC 3263 §4).

    ``port``: with ``explicit_port`` the port to use (A/AAAA only); without, the port for
    the A/AAAA fallback when DNS has no SRV (default 5060 UDP / 5061 TLS).
    ``advisory_srv`` (with ``explicit_port``): also ask NAPTR/SRV, concurrently, and fill
    ``srv``/``naptr`` for the caller to compare — the targets still come from A/AAAA.
    ``nameserver``: "IP" or "IP:PORT" to ask that server only; None = /etc/resolv.conf.
    """
    if transport not in DEFAULT_PORT:
        raise ValueError(f"transport must be one of {', '.join(DEFAULT_PORT)}, not {transport!r}")
    if explicit_port and port is None:
        raise ValueError("explicit_port needs a port")
    fallback_port = port if port is not None else DEFAULT_PORT[transport]
    t0 = time.perf_counter()
    ip = parse_ip(host)
    if ip is not None:  # RFC 3263 §4.2: a numeric address is the target, no DNS.
        out = Resolution(host, transport, "ip-literal", explicit_port=explicit_port)
        out.targets = [Target(host, str(ip), fallback_port, transport)]
        return out

    res, label = make_resolver(nameserver, timeout)
    fqdn = _absolute(host)
    out = Resolution(host, transport, explicit_port=explicit_port, server=label)
    srv_name = SRV_PREFIX[transport] + fqdn

    if explicit_port:
        jobs = [_addresses(res, fqdn, label)]
        if advisory_srv:
            jobs.append(_srv_via_naptr(res, fqdn, srv_name, transport, label, out))
        results = await asyncio.gather(*jobs)
        lookups, addrs = results[0]
        out.lookups[:0] = lookups  # A/AAAA first: they decide
        out.source = "a/aaaa"
        out.targets = [Target(host, a, port, transport) for a in addrs]
    else:
        used = await _srv_via_naptr(res, fqdn, srv_name, transport, label, out)
        if out.srv:
            out.source = used
            out.targets = await _srv_targets(res, host, out.srv, transport, label, out)
        else:  # RFC 3263 §4.2: no SRV -> A/AAAA of the host, default port.
            lookups, addrs = await _addresses(res, fqdn, label)
            out.lookups += lookups
            out.source = "a/aaaa"
            out.targets = [Target(host, a, fallback_port, transport) for a in addrs]
    out.ms = round((time.perf_counter() - t0) * 1000, 2)
    return out


async def _srv_via_naptr(res: Any, fqdn: str, srv_name: str, transport: str, label: str,
                         out: Resolution) -> str:
    """NAPTR then SRV; fills out.naptr, out.srv, out.lookups. Returns "naptr" or "srv".

    The standard SRV name is asked together with NAPTR: it is the answer whenever NAPTR is
    absent or points at that very name (the common case), so the usual path costs one round.
    """
    (n_look, n_rr), (s_look, s_rr) = await asyncio.gather(ask(res, fqdn, "NAPTR", label),
                                                          ask(res, srv_name, "SRV", label))
    out.naptr = sorted((Naptr(r.order, r.preference, r.flags.decode(errors="replace"),
                              r.service.decode(errors="replace"),
                              r.regexp.decode(errors="replace"), r.replacement.to_text())
                        for r in n_rr), key=lambda r: (r.order, r.preference))
    out.lookups.append(n_look)
    asked: dict[str, tuple[Lookup, list]] = {srv_name.lower(): (s_look, s_rr)}
    used: list[Lookup] = []
    # RFC 3263 §4.1: follow the NAPTR records for our transport in order; the first whose
    # SRV name has records wins.
    for rec in naptr_for(out.naptr, transport):
        key = rec.replacement.lower()
        if key not in asked:
            asked[key] = await ask(res, rec.replacement, "SRV", label)
        look, rrs = asked[key]
        if not any(look is u for u in used):
            used.append(look)
        if rrs:
            out.srv = srv_order(_srv_records(rrs, look.qname))
            break
    # The standard SRV name was asked in any case: keep the evidence complete.
    if not any(s_look is u for u in used):
        used.append(s_look)
    out.lookups += used
    if out.srv:
        return "naptr"
    # RFC 3263 §4.1: no usable NAPTR -> the SRV name for the transport.
    out.srv = srv_order(_srv_records(s_rr, s_look.qname))
    return "srv"


async def _srv_targets(res: Any, host: str, srv: list[Srv], transport: str, label: str,
                       out: Resolution) -> list[Target]:
    """A/AAAA of each SRV target, in SRV order, with the SRV's port (RFC 3263 §4.2).

    A target of "." means the service is decidedly not offered (RFC 2782): no fallback.
    """
    usable = [s for s in srv if s.target != "."][:MAX_SRV_TARGETS]
    names = list(dict.fromkeys(s.target for s in usable))
    found = await asyncio.gather(*(_addresses(res, name, label) for name in names))
    by_name: dict[str, list[str]] = {}
    for name, (lookups, addrs) in zip(names, found):
        out.lookups += lookups
        by_name[name] = addrs
    targets: list[Target] = []
    seen: set[tuple[str, int]] = set()
    for s in usable:
        for addr in by_name[s.target]:
            if (addr, s.port) not in seen:
                seen.add((addr, s.port))
                targets.append(Target(host, addr, s.port, transport))
    return targets
