"""`sipkit check` against the real lab and against hostile peers: the right verdict each time."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml

from sipkit.report import Report
from tests.conftest import report_of, yaml_variant
from tests.peers import AuthLoop, UdpPeer, garbage, silent, trying_forever

# The lab connector server registers extension 100 for every connector (as the cloud does):
# these signalling tests count its bindings, so they start without connectors.
pytestmark = [pytest.mark.lab, pytest.mark.usefixtures("no_connectors")]
# These tests are about signalling; the call checks have their own (test_calls_lab.py).
NO_CALLS = ("--skip", "call_inbound,call_outbound")


def site_variant(lab, tmp_path: Path, tls: bool = False, **changes) -> Path:
    return yaml_variant(lab.tls_site_file if tls else lab.site_file, tmp_path, **changes)


def auth_registers(lab) -> int:
    return (lab.directory / "pbx.log").read_text(errors="replace").count("AUTH-REGISTER")


def checks(report: dict) -> dict[str, dict]:
    return {c["id"]: c for c in report["checks"]}


def test_udp_all_pass(lab, run_sipkit):
    proc = run_sipkit("check", *NO_CALLS, "-c", str(lab.site_file), "--json")
    rep = report_of(proc)
    Report.model_validate(rep)  # the JSON is the model, as-is
    by = checks(rep)
    assert proc.returncode == 0, proc.stdout
    for cid in ("config", "dns", "transport", "register"):
        assert by[cid]["status"] == "pass", by[cid]
    assert by["tls"]["status"] == "skip"
    assert by["register"]["details"]["authenticated_attempts"] == 2  # register + remove
    assert by["register"]["details"]["unregistered"] is True
    assert by["transport"]["details"]["addresses"][0]["rtt_ms"]["samples"] >= 3
    assert by["transport"]["details"]["addresses"][0]["large_udp"] == {"1400": "answered",
                                                                       "3200": "answered"}


def test_tls_all_pass(lab, run_sipkit):
    proc = run_sipkit("check", *NO_CALLS, "-c", str(lab.tls_site_file), "--json")
    by = checks(report_of(proc))
    assert proc.returncode == 0, proc.stdout
    assert by["tls"]["status"] == "pass", by["tls"]
    assert by["tls"]["details"]["cert"]["san_ip"] == [lab.pbx_ip]
    assert by["tls"]["details"]["version"] in ("TLSv1.2", "TLSv1.3")
    assert abs(by["tls"]["details"]["clock_skew_s"]) < 5
    assert by["register"]["status"] == "pass", by["register"]
    assert by["register"]["details"]["target"]["transport"] == "tls"


def test_wrong_password_exactly_one_attempt(lab, run_sipkit, tmp_path):
    before = auth_registers(lab)
    proc = run_sipkit("check", *NO_CALLS, "-c", str(site_variant(lab, tmp_path, pbx_password="wrong-pw-1")),
                      "--json")
    reg = checks(report_of(proc))["register"]
    assert proc.returncode == 1
    assert reg["status"] == "fail" and "403" in reg["summary"]
    assert "one attempt" in reg["hint"]
    time.sleep(0.2)  # let Kamailio flush its log
    assert auth_registers(lab) - before == 1  # counted at the PBX, not by sipkit


def test_unknown_extension(lab, run_sipkit, tmp_path):
    proc = run_sipkit("check", *NO_CALLS, "-c", str(site_variant(lab, tmp_path, username_extension="999")),
                      "--json")
    reg = checks(report_of(proc))["register"]
    assert reg["status"] == "fail" and "404" in reg["summary"] and "999" in reg["summary"]
    assert "create the extension" in reg["hint"]


def test_refused_port(lab, run_sipkit, tmp_path):
    proc = run_sipkit("check", *NO_CALLS, "-c", str(site_variant(lab, tmp_path, port=5999)), "--json")
    tr = checks(report_of(proc))["transport"]
    assert proc.returncode == 1
    assert tr["status"] == "fail" and "nothing listens" in tr["summary"], tr
    assert tr["details"]["addresses"][0]["verdict"] == "refused"
    assert checks(report_of(proc))["register"]["status"] == "skip"


@pytest.mark.parametrize("handler,verdict,words", [
    (silent, "no_answer", "silently dropped"),
    (garbage, "garbage", "not with SIP"),
    (trying_forever, "provisional_only", "never a final"),
])
def test_broken_peers(lab, run_sipkit, tmp_path, handler, verdict, words):
    ip = lab.ip(20)
    with UdpPeer(ip, 5060, handler) as peer:
        site = site_variant(lab, tmp_path, registrar_server=ip)
        proc = run_sipkit("check", *NO_CALLS, "-c", str(site), "--json", "--timeout", "1.5")
    tr = checks(report_of(proc))["transport"]
    assert tr["status"] == "fail" and words in tr["summary"], tr
    assert tr["details"]["addresses"][0]["verdict"] == verdict
    assert peer.received, "the peer saw nothing"


def test_401_loop_stops_after_one_attempt(lab, run_sipkit, tmp_path):
    loop = AuthLoop()
    ip = lab.ip(21)
    with UdpPeer(ip, 5060, loop):
        proc = run_sipkit("check", *NO_CALLS, "-c", str(site_variant(lab, tmp_path, registrar_server=ip)),
                          "--json")
    reg = checks(report_of(proc))["register"]
    assert reg["status"] == "fail" and "401" in reg["summary"] and "wrong password" in reg["summary"]
    assert loop.authenticated == 1
    assert reg["details"]["authenticated_attempts"] == 1


@pytest.mark.parametrize("ip_host,verdict,words", [
    (6, "name_mismatch", "certificate names other.sipkit.test"),
    (7, "expired", "expired on"),
])
def test_tls_bad_certificates(lab, run_sipkit, tmp_path, ip_host, verdict, words):
    site = site_variant(lab, tmp_path, tls=True, registrar_server=lab.ip(ip_host))
    proc = run_sipkit("check", *NO_CALLS, "-c", str(site), "--json")
    tls = checks(report_of(proc))["tls"]
    assert proc.returncode == 1
    assert tls["status"] == "fail" and words in tls["summary"], tls
    assert tls["details"]["error"] == verdict
    # --insecure: still reported, no longer failing, and marked
    proc = run_sipkit("check", *NO_CALLS, "-c", str(site), "--json", "--insecure")
    rep = report_of(proc)
    assert checks(rep)["tls"]["status"] == "warn" and rep["options"]["insecure"] is True


def test_tls_wrong_ca(lab, run_sipkit, tmp_path):
    from sipkit.lab.certs import make_ca

    other_ca, _ = make_ca(tmp_path, "some other CA")
    proc = run_sipkit("check", *NO_CALLS, "-c", str(lab.tls_site_file), "--json", "--ca-file", str(other_ca))
    tls = checks(report_of(proc))["tls"]
    assert tls["status"] == "fail" and tls["details"]["error"] == "untrusted", tls
    assert "not trusted" in tls["summary"] and "sipkit lab CA" in tls["summary"]


def test_no_secret_in_any_output(lab, run_sipkit, tmp_path):
    password = yaml.safe_load(lab.site_file.read_text())["pbx_password"]
    wrong = site_variant(lab, tmp_path, pbx_password="Wr0ng-Secret-77")
    outputs = []
    for site in (lab.site_file, lab.tls_site_file, wrong):
        for args in (("--json", "-vv"), ("-vv",), ("-v", "--color")):
            proc = run_sipkit("check", *NO_CALLS, "-c", str(site), *args)
            outputs.append(proc.stdout + proc.stderr)
    text = "\n".join(outputs)
    assert "REGISTER" in text and "Authorization" in text  # evidence was printed...
    for secret in (password, "Wr0ng-Secret-77"):
        assert secret not in text
    assert 'response="<redacted>"' in text  # ...with the digest response masked
    import re
    assert not re.search(r'response="[0-9a-f]{32,}"', text)


def test_human_report_reads_well(lab, run_sipkit, tmp_path):
    proc = run_sipkit("check", *NO_CALLS, "-c", str(site_variant(lab, tmp_path, port=5999)))
    out = proc.stdout
    assert proc.returncode == 1
    assert "transport" in out and "FAIL" in out and "fix:" in out
    assert "Result:" in out and "Traceback" not in out + proc.stderr
