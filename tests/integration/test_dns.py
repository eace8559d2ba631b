"""The resolver and the dns check against sipkit's own DNS server on 127.0.50.x.

Every query goes to that server (``nameserver=``); nothing leaves the machine. The public
addresses in the zone are data only: the dns check never connects to them.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import dns.exception
import dns.message
import dns.query
import dns.rcode
import pytest
import yaml

from sipkit.checks.base import RunOptions, Target
from sipkit.checks.runner import run_checks
from sipkit.lab.dns import DnsServer
from sipkit.net.resolver import resolve_sip
from sipkit.settings import CheckSettings, Site

IP = "127.0.50.1"  # this suite's loopback block: 127.0.50.1-30
PASSWORD = "pw-dns-Secret-7"

ZONE = {
    "pbx.public.test.": {"A": ["8.8.4.4"], "AAAA": ["2001:4860:4860::8844"], "TTL": 120},
    "pbx.private.test.": {"A": ["192.168.1.10"]},
    "pbx.mixed.test.": {"A": ["8.8.4.4", "10.1.2.3"]},
    "pbx.halfbroken.test.": {"A": ["8.8.4.4"]},
    # SRV on another port than the site's
    "pbx.srv.test.": {"A": ["8.8.4.4"]},
    "_sip._udp.pbx.srv.test.": {"SRV": ["20 10 5080 sip2.srv.test.", "10 60 5080 sip1.srv.test.",
                                        "10 5 5080 sip3.srv.test."]},
    "sip1.srv.test.": {"A": ["8.8.8.8"]},
    "sip2.srv.test.": {"A": ["9.9.9.9"]},
    "sip3.srv.test.": {"CNAME": ["sip1.srv.test."]},
    # NAPTR -> SRV (not the standard name) -> A
    "chain.test.": {"NAPTR": ['10 50 "s" "SIPS+D2T" "" _sips._tcp.chain.test.',
                              '20 50 "s" "SIP+D2U" "" _sip._udp.alt.chain.test.',
                              '30 50 "s" "SIP+D2T" "" _sip._tcp.chain.test.']},
    "_sip._udp.alt.chain.test.": {"SRV": ["10 60 5062 host.chain.test."]},
    "_sips._tcp.chain.test.": {"SRV": ["10 60 5063 host.chain.test."]},
    "host.chain.test.": {"A": ["8.8.8.8"], "AAAA": ["2001:4860:4860::8888"]},
    # SRV says: no SIP here (RFC 2782 ".")
    "nosip.test.": {"A": ["8.8.4.4"]},
    "_sip._udp.nosip.test.": {"SRV": ["0 0 0 ."]},
    "alias.test.": {"CNAME": ["pbx.public.test."]},
    "big.test.": {"A": [f"8.8.{i}.{i}" for i in range(1, 80)]},
}


@pytest.fixture(scope="module")
def dns_server():
    # pbx.halfbroken.test answers A but drops AAAA (a broken DNS box, seen in the wild)
    with DnsServer(IP, 0, ZONE, servfail=["pbx.broken.test."],
                   drop=["pbx.slow.test.", "pbx.halfbroken.test. AAAA"],
                   refuse=["pbx.refused.test."]) as srv:
        yield srv
        assert srv.errors == []


def _site(host: str, **kw) -> Site:
    return Site(agent_uuid="3c90c3cc-0d44-4b50-8888-8dd25736052a", phone_number="+12084439178",
                registrar_server=host, username_extension="100", pbx_password=PASSWORD,
                allowed_ip="8.8.4.4", **kw)


def _dns(server, host, timeout=0.3, **kw):
    rep = asyncio.run(run_checks(_site(host, **kw), RunOptions(nameserver=server.nameserver,
                                                               timeout=timeout), only=["dns"]))
    r = rep.get("dns")
    assert PASSWORD not in r.model_dump_json()
    return r


def _resolve(server, host, **kw):
    kw.setdefault("transport", "udp")
    kw.setdefault("timeout", 0.3)
    return asyncio.run(resolve_sip(host, nameserver=server.nameserver, **kw))


# -- the check ---------------------------------------------------------------------------------


def test_public_name_passes_with_answers_ttl_and_time(dns_server):
    r = _dns(dns_server, "pbx.public.test")
    assert r.status == "pass", r.summary
    assert "8.8.4.4 (A, TTL 120 s)" in r.summary and "2001:4860:4860::8844" in r.summary
    assert r.details["targets"] == [
        {"host": "pbx.public.test", "ip": "8.8.4.4", "port": 5060, "transport": "udp"},
        {"host": "pbx.public.test", "ip": "2001:4860:4860::8844", "port": 5060,
         "transport": "udp"}]
    assert r.details["source"] == "a/aaaa" and r.details["nameserver"] == dns_server.nameserver
    kinds = {(lk["qname"], lk["rdtype"]): lk["outcome"] for lk in r.details["lookups"]}
    assert kinds == {("pbx.public.test.", "A"): "answer", ("pbx.public.test.", "AAAA"): "answer",
                     ("pbx.public.test.", "NAPTR"): "nodata",
                     ("_sip._udp.pbx.public.test.", "SRV"): "nxdomain"}
    assert all(lk["ms"] > 0 for lk in r.details["lookups"])
    # one evidence item per lookup
    ev = [e for e in r.evidence if e.kind == "dns"]
    assert len(ev) == 4 and any("8.8.4.4 (TTL 120)" in e.summary for e in ev)


def test_targets_feed_the_next_checks(dns_server):
    """dns publishes its targets as typed facts; the next checks read those, not details."""
    from sipkit.checks import dns
    from sipkit.checks.base import CheckContext

    site = _site("pbx.public.test", connection_type="tls", port=5061)
    ctx = CheckContext.for_site(site, RunOptions(nameserver=dns_server.nameserver, timeout=0.3))
    r = asyncio.run(dns.run(ctx))
    assert ctx.targets[0] == Target("pbx.public.test", "8.8.4.4", 5061, "tls")
    assert {lk["qname"] for lk in r.details["lookups"]} >= {"_sips._tcp.pbx.public.test."}


def test_nxdomain_fails_with_spelling_hint(dns_server):
    r = _dns(dns_server, "nope.test")
    assert r.status == "fail" and "does not exist (NXDOMAIN)" in r.summary
    assert "spelling" in r.hint and r.details["targets"] == []


def test_servfail_fails(dns_server):
    r = _dns(dns_server, "pbx.broken.test")
    assert r.status == "fail" and "SERVFAIL for A and AAAA" in r.summary
    assert {(f["rdtype"], f["outcome"]) for f in r.details["failed_lookups"]} >= {
        ("A", "servfail"), ("AAAA", "servfail")}


def test_refused_fails(dns_server):
    r = _dns(dns_server, "pbx.refused.test")
    assert r.status == "fail" and "refused the query" in r.summary


def test_timeout_fails_quickly(dns_server):
    t0 = time.monotonic()
    r = _dns(dns_server, "pbx.slow.test", timeout=0.2)
    assert time.monotonic() - t0 < 2.0
    assert r.status == "fail" and "no DNS answer within 0.2 s" in r.summary
    assert dns_server.nameserver in r.summary and "/etc/resolv.conf" in r.hint


def test_unreachable_resolver_is_a_timeout(dns_server):
    rep = asyncio.run(run_checks(_site("pbx.public.test"),
                                 RunOptions(nameserver="127.0.50.29:9", timeout=0.2),
                                 only=["dns"]))
    r = rep.get("dns")
    assert r.status == "fail" and "127.0.50.29:9 unreachable" in r.summary


def test_private_only_fails_unless_allowed(dns_server):
    r = _dns(dns_server, "pbx.private.test")
    assert r.status == "fail" and "cloud connector cannot reach" in r.summary
    assert "192.168.1.10 (private)" in r.summary and "publish the PBX's public address" in r.hint
    r = _dns(dns_server, "pbx.private.test", check=CheckSettings(allow_private_registrar=True))
    assert r.status == "pass" and "allow_private_registrar" in r.summary
    assert r.details["targets"][0]["ip"] == "192.168.1.10"


def test_mixed_answers_warn(dns_server):
    r = _dns(dns_server, "pbx.mixed.test")
    assert r.status == "warn" and "10.1.2.3" in r.summary and "split-horizon" in r.summary
    assert sorted(a["kind"] for a in r.details["addresses"]) == ["private", "public"]


def test_srv_port_mismatch_warns(dns_server):
    r = _dns(dns_server, "pbx.srv.test")
    assert r.status == "warn" and "advertises port 5080, but port is 5060" in r.summary
    assert "port: 5080" in r.hint
    # the connector uses host:port, so the targets are the host's A on the site port
    assert [(t["ip"], t["port"]) for t in r.details["targets"]] == [("8.8.4.4", 5060)]
    assert [s["target"] for s in r.details["srv"]] == ["sip1.srv.test.", "sip3.srv.test.",
                                                       "sip2.srv.test."]
    assert r.details["srv_ports"] == [5080]
    r = _dns(dns_server, "pbx.srv.test", port=5080)
    assert r.status == "pass" and "SRV agrees on port 5080" in r.summary


def test_half_broken_dns_warns(dns_server):
    r = _dns(dns_server, "pbx.halfbroken.test", timeout=0.2)
    assert r.status == "warn" and "pbx.halfbroken.test AAAA (timeout)" in r.summary
    assert r.details["targets"][0]["ip"] == "8.8.4.4"


def test_naptr_to_srv_seen_by_the_check(dns_server):
    r = _dns(dns_server, "chain.test", connection_type="tls", port=5061)
    # chain.test has no A record of its own: the connector (host + port) cannot use it
    assert r.status == "fail" and "no A or AAAA" in r.summary
    assert "registrar_server: host.chain.test and port: 5063" in r.hint
    assert [n["service"] for n in r.details["naptr"]] == ["SIPS+D2T", "SIP+D2U", "SIP+D2T"]


def test_ip_literal_asks_no_dns(dns_server):
    before = len(dns_server.queries)
    r = _dns(dns_server, "8.8.4.4")
    assert r.status == "pass" and r.summary == "IP literal 8.8.4.4, no DNS"
    assert r.details["source"] == "ip-literal" and r.details["lookups"] == []
    assert len(dns_server.queries) == before
    r = _dns(dns_server, "10.9.8.7")
    assert r.status == "fail" and "cannot reach" in r.summary


def test_bad_nameserver_is_explained():
    rep = asyncio.run(run_checks(_site("pbx.public.test"), RunOptions(nameserver="dns.example"),
                                 only=["dns"]))
    r = rep.get("dns")
    assert r.status == "fail" and "--nameserver" in r.summary and "IP:PORT" in r.hint


# -- the resolver, full RFC 3263 ---------------------------------------------------------------


def test_naptr_srv_a_chain_for_udp_and_tls(dns_server):
    res = _resolve(dns_server, "chain.test")
    assert res.source == "naptr"
    assert res.targets == [Target("chain.test", "8.8.8.8", 5062, "udp"),
                           Target("chain.test", "2001:4860:4860::8888", 5062, "udp")]
    order = [(lk.qname, lk.rdtype) for lk in res.lookups]
    assert order[:2] == [("chain.test.", "NAPTR"), ("_sip._udp.alt.chain.test.", "SRV")]
    res = _resolve(dns_server, "chain.test", transport="tls")
    assert res.source == "naptr" and res.targets[0] == Target("chain.test", "8.8.8.8", 5063, "tls")


def test_srv_without_naptr_in_priority_weight_order(dns_server):
    res = _resolve(dns_server, "pbx.srv.test")
    assert res.source == "srv"
    # sip1 (10/60), sip3 (10/5, a CNAME to sip1: same address, listed once), sip2 (20/10)
    assert [t.hostport for t in res.targets] == ["8.8.8.8:5080", "9.9.9.9:5080"]
    assert res.lookup("sip3.srv.test", "A").cname == "sip1.srv.test."


def test_no_srv_falls_back_to_a_on_the_default_port(dns_server):
    assert [t.hostport for t in _resolve(dns_server, "pbx.public.test", transport="tls").targets
            ] == ["8.8.4.4:5061", "[2001:4860:4860::8844]:5061"]
    res = _resolve(dns_server, "pbx.public.test")
    assert res.source == "a/aaaa" and res.targets[0].port == 5060


def test_explicit_port_skips_naptr_and_srv(dns_server):
    before = len(dns_server.queries)
    res = _resolve(dns_server, "pbx.srv.test", port=5099, explicit_port=True)
    asked = {q[1] for q in dns_server.queries[before:]}
    assert asked == {"A", "AAAA"}
    assert res.targets == [Target("pbx.srv.test", "8.8.4.4", 5099, "udp")] and res.srv == []


def test_srv_dot_means_no_service_and_no_fallback(dns_server):
    res = _resolve(dns_server, "nosip.test")
    assert res.source == "srv" and res.targets == [] and res.srv_ports == []


def test_cname_is_followed(dns_server):
    res = _resolve(dns_server, "alias.test", port=5060, explicit_port=True)
    assert res.addresses == ["8.8.4.4", "2001:4860:4860::8844"]
    assert res.lookup("alias.test", "A").cname == "pbx.public.test."


def test_truncated_udp_answer_is_retried_over_tcp(dns_server):
    res = _resolve(dns_server, "big.test", port=5060, explicit_port=True)
    assert len(res.addresses) == 79
    assert ("big.test.", "A", "tcp") in dns_server.queries


# -- the server on its own -----------------------------------------------------------------


def test_server_rcodes_over_udp_and_tcp(dns_server):
    host, port = dns_server.address
    for qname, rcode in [("pbx.public.test", dns.rcode.NOERROR), ("nope.test", dns.rcode.NXDOMAIN),
                         ("pbx.broken.test", dns.rcode.SERVFAIL),
                         ("pbx.refused.test", dns.rcode.REFUSED)]:
        q = dns.message.make_query(qname, "A")
        assert dns.query.udp(q, host, port=port, timeout=1).rcode() == rcode
        assert dns.query.tcp(q, host, port=port, timeout=1).rcode() == rcode
    with pytest.raises(dns.exception.Timeout):
        dns.query.udp(dns.message.make_query("pbx.slow.test", "A"), host, port=port, timeout=0.2)


def test_bad_zone_is_a_lab_error():
    from sipkit.errors import LabError

    with pytest.raises(LabError, match=r"bad\.test\. A: bad record"):
        DnsServer(IP, 0, {"bad.test.": {"A": ["not-an-ip"]}})


def test_server_as_a_process(tmp_path):
    zone = tmp_path / "zone.yaml"
    zone.write_text(yaml.safe_dump({"zone": {"pbx.sipkit.test.": {"A": ["127.0.0.10"]}},
                                    "servfail": ["x.sipkit.test."]}))
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "sipkit.lab.dns", "--listen",
                             f"{IP}:{port}", "--zone", str(zone)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert "dns ready on" in proc.stdout.readline()
        res = asyncio.run(resolve_sip("pbx.sipkit.test", transport="udp", port=5060,
                                      explicit_port=True, nameserver=f"{IP}:{port}", timeout=1))
        assert res.addresses == ["127.0.0.10"]
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(5) == 0
    bad = subprocess.run([sys.executable, "-m", "sipkit.lab.dns", "--listen", f"{IP}:{port}",
                          "--zone", str(tmp_path / "missing.json")], capture_output=True,
                         text=True, timeout=20)
    assert bad.returncode == 2 and "cannot read DNS zone file" in bad.stderr
    assert "Traceback" not in bad.stderr


def _free_port() -> int:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((IP, 0))
        return s.getsockname()[1]


# -- through the CLI ---------------------------------------------------------------------------


def test_cli_check_only_dns_with_nameserver(dns_server, tmp_path):
    sipkit = Path(sys.executable).parent / "sipkit"
    site = {"agent_uuid": "3c90c3cc-0d44-4b50-8888-8dd25736052a", "phone_number": "+12084439178",
            "registrar_server": "pbx.private.test", "username_extension": "100",
            "pbx_password": PASSWORD, "allowed_ip": "8.8.4.4"}
    env = {**os.environ, "NO_COLOR": "1"}

    def run(site_file_data: dict) -> tuple[int, dict, str]:
        path = tmp_path / "site.yaml"
        path.write_text(yaml.safe_dump(site_file_data))
        proc = subprocess.run([str(sipkit), "check", "-c", str(path), "--only", "dns",
                               "--nameserver", dns_server.nameserver, "--json", "--timeout",
                               "0.5"], capture_output=True, text=True, env=env, timeout=60)
        assert PASSWORD not in proc.stdout + proc.stderr
        try:
            return proc.returncode, json.loads(proc.stdout), proc.stderr
        except ValueError:
            raise AssertionError(f"not JSON (rc={proc.returncode}):\n{proc.stdout}\n{proc.stderr}")

    rc, rep, err = run(site)
    dns_result = next(c for c in rep["checks"] if c["id"] == "dns")
    assert rc == 1, err
    assert dns_result["status"] == "fail" and "cannot reach" in dns_result["summary"]
    assert rep["options"]["nameserver"] == dns_server.nameserver

    rc, rep, err = run({**site, "registrar_server": "pbx.public.test"})
    dns_result = next(c for c in rep["checks"] if c["id"] == "dns")
    assert rc == 0, err
    assert dns_result["status"] == "pass"
    assert dns_result["details"]["targets"][0] == {"host": "pbx.public.test", "ip": "8.8.4.4",
                                                   "port": 5060, "transport": "udp"}
