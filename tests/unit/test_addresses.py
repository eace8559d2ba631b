"""Address helpers: kinds, host:port parsing and writing (IPv6 in brackets)."""

from __future__ import annotations

import pytest

from sipkit.net.addresses import address_kind, canonical_ip, hostport, split_hostport, uri_host


@pytest.mark.parametrize("host, uri, hp", [
    ("192.0.2.1", "192.0.2.1", "192.0.2.1:5060"),
    ("2001:db8::1", "[2001:db8::1]", "[2001:db8::1]:5060"),
    ("[2001:db8::1]", "[2001:db8::1]", "[2001:db8::1]:5060"),  # already bracketed
    ("::1", "[::1]", "[::1]:5060"),
    ("pbx.example.com", "pbx.example.com", "pbx.example.com:5060"),
])
def test_uri_host_and_hostport(host, uri, hp):
    assert uri_host(host) == uri and hostport(host, 5060) == hp
    assert split_hostport(hp, 1) == (host.strip("[]"), 5060)  # and back


@pytest.mark.parametrize("value, expected", [
    ("pbx.example.com", ("pbx.example.com", 5060)),
    ("pbx.example.com:5080", ("pbx.example.com", 5080)),
    ("2001:db8::1", ("2001:db8::1", 5060)),  # unbracketed IPv6: no port in it
    ("[2001:db8::1]:5070", ("2001:db8::1", 5070)),
])
def test_split_hostport(value, expected):
    assert split_hostport(value, 5060) == expected


@pytest.mark.parametrize("bad", ["[::1", "[::1]x", "host:0", "host:70000", ":5060", "h:p"])
def test_split_hostport_rejects(bad):
    with pytest.raises(ValueError):
        split_hostport(bad, 5060)


def test_address_kinds():
    assert address_kind("8.8.8.8") is None and address_kind("2001:4860::8888") is None
    assert address_kind("10.1.2.3") and address_kind("100.64.0.1")  # private, CGNAT
    assert address_kind("::1") and address_kind("fd00::1")  # loopback, unique local


@pytest.mark.parametrize("value, canonical", [
    ("2001:DB8:0:0::1", "2001:db8::1"), ("[2001:db8::1]", "2001:db8::1"),
    ("192.0.2.1", "192.0.2.1"), ("pbx.example.com", "pbx.example.com")])
def test_canonical_ip(value, canonical):
    assert canonical_ip(value) == canonical


def test_ports_are_ascii_digits_only():
    import pytest

    from sipkit.net.addresses import split_hostport

    for bad in ("pbx.example.com:５０６０", "1.2.3.4:5²", "[::1]:٥٠٦٠"):
        with pytest.raises(ValueError, match="bad port"):
            split_hostport(bad, 5060)
    assert split_hostport("pbx.example.com:5061", 5060) == ("pbx.example.com", 5061)
