"""`sipkit check --pcap`: the file tshark reads back, every SIP message decoded, no secret
inside, and `sipkit analyze` of it reporting what the check reported."""

from __future__ import annotations

import shutil
import subprocess

import pytest
import yaml

from sipkit.analyze import analyze_file
from tests.conftest import report_of

pytestmark = pytest.mark.lab
TSHARK = shutil.which("tshark")
NO_CALLS = ("--skip", "call_inbound,call_outbound")


def _sip_evidence(rep: dict) -> int:
    return sum(1 for c in rep["checks"] for e in c["evidence"] if e["kind"] == "sip")


def _tshark_sip(pcap, *extra) -> list[str]:
    out = subprocess.run([TSHARK, "-r", str(pcap), *extra, "-Y", "sip", "-T", "fields",
                          "-e", "sip.Method", "-e", "sip.Status-Code"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return [x for x in out.stdout.split("\n") if x.strip()]


@pytest.mark.parametrize("tls", [False, True], ids=["udp", "tls"])
def test_check_pcap_read_back_by_tshark_and_analyze(lab, run_sipkit, tmp_path, tls,
                                                    no_connectors):
    site = lab.tls_site_file if tls else lab.site_file
    pcap = tmp_path / "check.pcap"
    proc = run_sipkit("check", "-c", str(site), *NO_CALLS, "--json", "--pcap", str(pcap))
    rep = report_of(proc)
    sent = _sip_evidence(rep)
    assert rep["options"]["pcap"]["packets"] == sent > 5
    if TSHARK:
        lines = _tshark_sip(pcap, "-d", "tcp.port==5061,sip")
        assert len(lines) == sent  # every message decoded (TLS written as clear SIP over TCP)
        assert sum(1 for x in lines if x.startswith("REGISTER")) >= 2
    raw = pcap.read_bytes()
    password = yaml.safe_load(site.read_text())["pbx_password"]
    assert password.encode() not in raw
    assert b"Authorization: Digest" in raw and b'response="<redacted>"' in raw
    got = {c.id: c for c in analyze_file(str(pcap)).checks}
    checks = {c["id"]: c for c in rep["checks"]}
    assert checks["register"]["status"] == "pass"
    assert got["registration"].status == "pass" and got["auth_loop"].status == "pass"
    assert got["capture"].details["sip_messages"] == sent
    assert got["capture"].status == "pass" and "requests" not in got


def test_check_pcap_wrong_password_same_outcome(lab, run_sipkit, tmp_path):
    pcap = tmp_path / "bad.pcap"
    proc = run_sipkit("check", "-c", str(lab.site_file), "--only", "register", "--json",
                      "--set", "pbx_password=Wrong-Pcap-1", "--pcap", str(pcap))
    rep = report_of(proc)
    assert {c["id"]: c for c in rep["checks"]}["register"]["status"] == "fail"
    assert b"Wrong-Pcap-1" not in pcap.read_bytes()
    proc = run_sipkit("analyze", str(pcap), "--json")
    assert proc.returncode == 1 and b"Wrong-Pcap-1" not in proc.stdout.encode()
    got = {c["id"]: c for c in report_of(proc)["checks"]}
    assert got["registration"]["status"] == "fail" and "403" in got["registration"]["summary"]


@pytest.mark.parametrize("tls", [False, True], ids=["udp", "tls"])
def test_check_pcap_holds_the_test_call(lab, run_sipkit, tmp_path, tls):
    """The call runs in pjsua2's process; its SIP (from pjsua's message log) joins the ladder
    and the pcap: REGISTER, the challenged INVITE, the answer, BYE, the un-REGISTER."""
    site = lab.tls_site_file if tls else lab.site_file
    pcap = tmp_path / "call.pcap"
    proc = run_sipkit("check", "-c", str(site), "--only", "call_outbound", "--json",
                      "--pcap", str(pcap))
    rep = report_of(proc)
    call = {c["id"]: c for c in rep["checks"]}["call_outbound"]
    assert call["status"] == "pass", call["summary"]
    rows = [e for e in call["evidence"] if e["kind"] == "sip"]
    firsts = [e["summary"].split(" ", 2)[:2] for e in rows]
    assert ["INVITE", f"sip:05321234567@{lab.pbx_ip}:{5061 if tls else 5060}"] in [
        [f[0], f[1].split(";")[0]] for f in firsts]
    assert ["SIP/2.0", "407"] in firsts and ["SIP/2.0", "180"] in firsts
    assert [r["at_ms"] for r in rows] == sorted(r["at_ms"] for r in rows)
    assert all(r["transport"] == ("tls" if tls else "udp") and r["peer"] for r in rows)
    assert rep["options"]["pcap"]["packets"] == _sip_evidence(rep)
    if TSHARK:
        lines = _tshark_sip(pcap, "-d", "tcp.port==5061,sip")
        assert len(lines) == _sip_evidence(rep)
        assert lines.count("BYE\t") == 1 and "INVITE\t" in lines and "\t180" in lines
    raw = pcap.read_bytes()
    assert yaml.safe_load(site.read_text())["pbx_password"].encode() not in raw
    assert b'response="<redacted>"' in raw and b"Proxy-Authorization: Digest" in raw
    got = {c.id: c for c in analyze_file(str(pcap)).checks}
    assert got["call_setup"].status == "pass" and got["call_setup"].details["answered"] == 1
    assert got["registration"].status == "pass" and got["auth_loop"].status == "pass"
