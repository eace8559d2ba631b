"""The transport verdict against the real lab PBX (UDP/TCP 5060, TLS 5061): the two classic
mistakes get the fix that names them, not a firewall or SIP ALG story."""

from __future__ import annotations

import pytest

from tests.conftest import report_of
from tests.integration.test_checks_lab import NO_CALLS, checks, site_variant

pytestmark = pytest.mark.lab


def test_udp_on_port_5061_says_tls_listens_there(lab, run_sipkit, tmp_path):
    site = site_variant(lab, tmp_path, port="5061")  # connection_type: udp
    proc = run_sipkit("check", *NO_CALLS, "-c", str(site), "--json", "--timeout", "2")
    tr = checks(report_of(proc))["transport"]
    assert proc.returncode == 1 and tr["status"] == "fail", tr
    assert tr["details"]["alternatives"]["tls:5061"] == "answered"
    assert tr["details"]["alternatives"]["udp:5060"] == "answered"
    assert tr["hint"].startswith("port 5061 speaks TLS, not UDP: set connection_type: tls"), tr
    assert "ALG" not in tr["hint"] and "firewall" not in tr["hint"]


def test_tls_on_port_5060_says_set_port_5061(lab, run_sipkit, tmp_path):
    site = site_variant(lab, tmp_path, tls=True, port="5060")
    proc = run_sipkit("check", *NO_CALLS, "-c", str(site), "--json", "--timeout", "2")
    rep = report_of(proc)
    tr = checks(rep)["transport"]
    assert proc.returncode == 1 and tr["status"] == "fail", tr
    assert tr["details"]["addresses"][0]["tcp"] == "open"
    assert "silently dropped" not in tr["summary"]
    assert tr["hint"] == "TLS listens on 5061: set port: 5061", tr
    # and the human report says the same
    human = run_sipkit("check", *NO_CALLS, "-c", str(site), "--timeout", "2")
    assert "TLS listens on 5061: set port: 5061" in human.stdout
