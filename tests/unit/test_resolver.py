"""RFC 3263 resolver rules and the dns verdicts, without a network."""

from __future__ import annotations

import asyncio

import pytest

from sipkit.checks.base import Target
from sipkit.checks.dns import judge
from sipkit.errors import UsageError
from sipkit.net.resolver import (
    Lookup,
    NameserverError,
    Naptr,
    Resolution,
    Srv,
    naptr_for,
    parse_nameserver,
    resolve_sip,
    srv_order,
)

# -- RFC 2782 ordering ----------------------------------------------------------------------


def test_srv_lowest_priority_first_then_heaviest_weight():
    recs = [Srv(20, 100, 5060, "c."), Srv(10, 5, 5060, "b."), Srv(10, 60, 5060, "a2."),
            Srv(10, 60, 5060, "a1."), Srv(0, 0, 5070, "z.")]
    assert [r.target for r in srv_order(recs)] == ["z.", "a1.", "a2.", "b.", "c."]


def test_srv_order_is_stable_across_input_orders():
    recs = [Srv(1, 10, 5060, "x."), Srv(1, 10, 5060, "y."), Srv(2, 90, 5060, "w.")]
    assert srv_order(recs) == srv_order(list(reversed(recs)))


# -- RFC 3263 §4.1 NAPTR filtering ----------------------------------------------------------

NAPTRS = [
    Naptr(10, 50, "s", "SIPS+D2T", "", "_sips._tcp.example.com."),
    Naptr(20, 50, "s", "SIP+D2U", "", "_sip._udp.example.com."),
    Naptr(10, 90, "S", "sip+d2u", "", "_sip._udp.alt.example.com."),  # case-insensitive
    Naptr(5, 10, "u", "SIP+D2U", "!^.*$!sip:x@y!", "."),  # a regexp record: not for SIP
    Naptr(1, 10, "s", "SIP+D2T", "", "_sip._tcp.example.com."),
    Naptr(1, 1, "s", "SIP+D2U", "", "."),  # no replacement
]


def test_naptr_keeps_only_the_wanted_service_in_order_then_preference():
    udp = naptr_for(NAPTRS, "udp")
    assert [n.replacement for n in udp] == ["_sip._udp.alt.example.com.",
                                           "_sip._udp.example.com."]
    assert [n.replacement for n in naptr_for(NAPTRS, "tls")] == ["_sips._tcp.example.com."]
    assert [n.replacement for n in naptr_for(NAPTRS, "tcp")] == ["_sip._tcp.example.com."]
    assert naptr_for([], "udp") == []


# -- inputs ------------------------------------------------------------------------------------


@pytest.mark.parametrize("value,want", [("127.0.0.1", ("127.0.0.1", 53)),
                                        ("127.0.50.3:5353", ("127.0.50.3", 5353)),
                                        ("[::1]:5353", ("::1", 5353)), ("::1", ("::1", 53))])
def test_parse_nameserver(value, want):
    assert parse_nameserver(value) == want


@pytest.mark.parametrize("bad", ["dns.google", "1.2.3.4:99999", "1.2.3.4:x", "", "[::1"])
def test_bad_nameserver_is_a_usage_error(bad):
    with pytest.raises(NameserverError) as err:
        parse_nameserver(bad)
    assert isinstance(err.value, UsageError) and "IP" in str(err.value)


def test_ip_literal_needs_no_dns_even_with_a_dead_nameserver():
    # 127.0.50.30:9 has no DNS server: any query would time out, and the test would be slow.
    res = asyncio.run(resolve_sip("8.8.4.4", transport="tls", port=None, explicit_port=False,
                                  nameserver="127.0.50.30:9", timeout=5))
    assert res.source == "ip-literal" and res.lookups == []
    assert res.targets == [Target("8.8.4.4", "8.8.4.4", 5061, "tls")]
    res = asyncio.run(resolve_sip("[2001:4860::8888]", transport="udp", port=5070,
                                  explicit_port=True, nameserver=None, timeout=5))
    assert res.targets[0].ip == "2001:4860::8888" and res.targets[0].port == 5070


def test_resolver_rejects_nonsense_arguments():
    with pytest.raises(ValueError):
        asyncio.run(resolve_sip("pbx.test", transport="sctp"))
    with pytest.raises(ValueError):
        asyncio.run(resolve_sip("pbx.test", transport="udp", explicit_port=True))


def test_lookup_text_caps_long_answers():
    lk = Lookup("big.test.", "A", "answer", [f"8.8.8.{i}" for i in range(30)], 60, 1.5)
    line = lk.text()
    assert "(+20 more)" in line and "8.8.8.9" in line and "8.8.8.10," not in line


# -- verdicts (classification) -----------------------------------------------------------------


def _res(host: str, a: list[str] = (), *, outcome: str = "answer", aaaa_outcome: str = "nodata",
         srv: list[Srv] = (), source: str = "a/aaaa", port: int = 5060) -> Resolution:
    res = Resolution(host, "udp", source, server="127.0.50.1:5353", ms=3.0)
    if source == "ip-literal":
        res.targets = [Target(host, host, port, "udp")]
        return res
    res.lookups = [Lookup(host + ".", "A", outcome if not a else "answer", list(a),
                          300 if a else None, 1.0),
                   Lookup(host + ".", "AAAA", aaaa_outcome, [], None, 1.0)]
    res.targets = [Target(host, ip, port, "udp") for ip in a]
    res.srv = list(srv)
    return res


def test_public_answer_passes_with_ttl_and_time():
    v = judge(_res("pbx.test", ["8.8.4.4"]), port=5060, allow_private=False)
    assert v.status == "pass" and "8.8.4.4" in v.summary and "TTL 300" in v.summary
    assert "ms" in v.summary and v.hint is None


@pytest.mark.parametrize("ip,kind", [("192.168.1.10", "private"), ("10.0.0.5", "private"),
                                     ("127.0.0.1", "loopback"), ("100.64.1.1", "carrier-grade"),
                                     ("203.0.113.5", "documentation")])
def test_only_unreachable_space_fails_with_the_fix(ip, kind):
    v = judge(_res("pbx.test", [ip]), port=5060, allow_private=False)
    assert v.status == "fail" and "cloud connector cannot reach" in v.summary
    assert kind in v.summary and ip in v.summary and "publish the PBX's public address" in v.hint


def test_private_is_accepted_when_allowed():
    v = judge(_res("pbx.test", ["192.168.1.10"]), port=5060, allow_private=True)
    assert v.status == "pass" and "allow_private_registrar" in v.summary


def test_mixed_public_and_private_warns():
    v = judge(_res("pbx.test", ["8.8.4.4", "10.1.2.3"]), port=5060, allow_private=False)
    assert v.status == "warn" and "10.1.2.3" in v.summary and "split-horizon" in v.summary


def test_ip_literal_is_classified_too():
    v = judge(_res("192.168.7.7", source="ip-literal"), port=5060, allow_private=False)
    assert v.status == "fail" and "192.168.7.7 is" in v.summary
    v = judge(_res("8.8.4.4", source="ip-literal"), port=5060, allow_private=False)
    assert v.status == "pass" and v.summary == "IP literal 8.8.4.4, no DNS"


def test_srv_port_differs_warns_and_matching_port_passes():
    srv = [Srv(10, 10, 5080, "sip.pbx.test.", "_sip._udp.pbx.test.")]
    v = judge(_res("pbx.test", ["8.8.4.4"], srv=srv), port=5060, allow_private=False)
    assert v.status == "warn" and "advertises port 5080, but port is 5060" in v.summary
    assert "port: 5080" in v.hint
    v = judge(_res("pbx.test", ["8.8.4.4"], srv=srv), port=5080, allow_private=False)
    assert v.status == "pass" and "SRV agrees on port 5080" in v.summary


@pytest.mark.parametrize("outcome,words,fix", [
    ("nxdomain", "does not exist (NXDOMAIN)", "spelling"),
    ("servfail", "SERVFAIL for A and AAAA", "DNS is broken"),
    ("timeout", "no DNS answer within 2 s for A and AAAA", "/etc/resolv.conf"),
    ("refused", "refused the query", "another resolver"),
])
def test_no_address_fails_per_record_type(outcome, words, fix):
    v = judge(_res("pbx.test", outcome=outcome, aaaa_outcome=outcome), port=5060,
              allow_private=False, timeout=2)
    assert v.status == "fail" and words in v.summary and fix in v.hint
    assert {f["rdtype"] for f in v.facts["failed_lookups"]} == (
        {"A", "AAAA"} if outcome in ("servfail", "timeout", "refused") else set())


def test_a_record_timeout_beats_aaaa_nodata_in_the_summary():
    v = judge(_res("pbx.test", outcome="timeout", aaaa_outcome="nodata"), port=5060,
              allow_private=False, timeout=1)
    assert v.status == "fail" and "for A " in v.summary and "AAAA" not in v.summary


def test_srv_only_name_fails_naming_the_srv_target():
    srv = [Srv(10, 10, 5080, "sip.pbx.test.", "_sip._udp.pbx.test.")]
    v = judge(_res("pbx.test", outcome="nodata", srv=srv), port=5060, allow_private=False)
    assert v.status == "fail" and "no A or AAAA" in v.summary
    assert "registrar_server: sip.pbx.test and port: 5080" in v.hint


def test_half_broken_dns_warns():
    v = judge(_res("pbx.test", ["8.8.4.4"], aaaa_outcome="timeout"), port=5060,
              allow_private=False)
    assert v.status == "warn" and "pbx.test AAAA (timeout)" in v.summary
