"""The dns check against a DNS server the test controls (no traffic off this machine)."""

from __future__ import annotations

import asyncio
import os

import pytest

from sipkit.checks.base import RunOptions
from sipkit.checks.runner import run_checks
from sipkit.lab.dns import DnsServer
from sipkit.settings import Site
from tests.conftest import report_of

ZONE = {
    "pbx.good.test.": {"A": ["198.51.100.20"]},  # stands for a public address here
    "pbx.public.test.": {"A": ["8.8.4.4"]},
    "pbx.private.test.": {"A": ["192.168.1.10"]},
    "pbx.mixed.test.": {"A": ["8.8.4.4", "10.1.2.3"]},
    "pbx.srv.test.": {"A": ["8.8.4.4"]},
    "_sip._udp.pbx.srv.test.": {"SRV": ["10 60 5080 sip1.srv.test.", "20 10 5080 sip2.srv.test."]},
    "sip1.srv.test.": {"A": ["8.8.8.8"]},
    "sip2.srv.test.": {"A": ["9.9.9.9"]},
    "srvonly.test.": {"NAPTR": ['10 50 "s" "SIP+D2U" "" _sip._udp.alt.srvonly.test.']},
    "_sip._udp.alt.srvonly.test.": {"SRV": ["10 60 5060 host.srvonly.test."]},
    "host.srvonly.test.": {"A": ["8.8.8.8"]},
}


@pytest.fixture(scope="module")
def dns_server():
    ip = f"127.0.{50 + os.getpid() % 10}.1"
    with DnsServer(ip, 0, ZONE, servfail=["pbx.broken.test."], drop=["pbx.slow.test."]) as srv:
        yield srv


def _site(host: str, **kw) -> Site:
    return Site(agent_uuid="3c90c3cc-0d44-4b50-8888-8dd25736052a", phone_number="+12084439178",
                registrar_server=host, username_extension="100", pbx_password="pw-dns-test",
                allowed_ip="8.8.4.4", **kw)


def _dns(server, host, **kw):
    rep = asyncio.run(run_checks(_site(host, **kw), RunOptions(nameserver=server.nameserver,
                                                               timeout=0.5), only=["dns"]))
    return rep.get("dns")


def test_public_name_passes_with_ttl(dns_server):
    r = _dns(dns_server, "pbx.public.test")
    assert r.status == "pass", r
    assert "8.8.4.4" in r.summary and "TTL 300" in r.summary
    assert r.details["targets"] == [{"host": "pbx.public.test", "ip": "8.8.4.4", "port": 5060,
                                     "transport": "udp"}]
    assert {lk["rdtype"] for lk in r.details["lookups"]} >= {"A", "AAAA", "NAPTR", "SRV"}


def test_nxdomain(dns_server):
    r = _dns(dns_server, "nope.test")
    assert r.status == "fail" and "does not exist" in r.summary and "spelling" in r.hint


def test_servfail(dns_server):
    r = _dns(dns_server, "pbx.broken.test")
    assert r.status == "fail" and "SERVFAIL" in r.summary


def test_timeout(dns_server):
    r = _dns(dns_server, "pbx.slow.test")
    assert r.status == "fail" and "no DNS answer in time" in r.summary


def test_private_only_fails_unless_allowed(dns_server):
    r = _dns(dns_server, "pbx.private.test")
    assert r.status == "fail" and "cannot reach" in r.summary and "192.168.1.10" in r.summary
    from sipkit.settings import CheckSettings
    r = _dns(dns_server, "pbx.private.test", check=CheckSettings(allow_private_registrar=True))
    assert r.status == "pass" and "allow_private_registrar" in r.summary


def test_documentation_range_is_not_public(dns_server):
    r = _dns(dns_server, "pbx.good.test")
    assert r.status == "fail" and "documentation" in r.summary


def test_mixed_answers_warn(dns_server):
    r = _dns(dns_server, "pbx.mixed.test")
    assert r.status == "warn" and "10.1.2.3" in r.summary and "split-horizon" in r.summary


def test_srv_port_mismatch_warns_in_priority_order(dns_server):
    r = _dns(dns_server, "pbx.srv.test")
    assert r.status == "warn" and "5080" in r.summary and "port: 5080" in r.hint
    assert [s["target"] for s in r.details["srv"]] == ["sip1.srv.test.", "sip2.srv.test."]


def test_naptr_to_srv_to_a(dns_server):
    r = _dns(dns_server, "srvonly.test")
    assert r.status == "warn" and "only SRV" in r.summary
    assert r.details["targets"][0]["ip"] == "8.8.8.8"
    assert r.details["naptr_services"] == ["SIP+D2U"]


def test_ip_literal_needs_no_dns(dns_server):
    before = len(dns_server.queries)
    r = _dns(dns_server, "8.8.4.4")
    assert r.status == "pass" and "no DNS needed" in r.summary
    assert len(dns_server.queries) == before


def test_cli_with_nameserver(dns_server, run_sipkit, tmp_path):
    import yaml

    p = tmp_path / "site.yaml"
    p.write_text(yaml.safe_dump({"agent_uuid": "3c90c3cc-0d44-4b50-8888-8dd25736052a",
                                 "phone_number": "+12084439178", "registrar_server": "nope.test",
                                 "username_extension": "100", "pbx_password": "x-pw",
                                 "allowed_ip": "8.8.4.4"}))
    proc = run_sipkit("check", "-c", str(p), "--only", "dns", "--nameserver",
                      dns_server.nameserver, "--json", "--timeout", "0.5")
    rep = report_of(proc)
    assert proc.returncode == 1 and rep["checks"][1]["id"] == "dns"
    assert rep["checks"][1]["status"] == "fail"
