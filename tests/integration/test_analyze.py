"""Evidence for support: `check --pcap` read back by tshark and by `sipkit analyze`, and
`sipkit analyze` on tshark captures of the lab's real traffic."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import time
from contextlib import contextmanager

import pytest
import yaml

from sipkit.analyze import analyze_file
from sipkit.media.call import run_call
from sipkit.media.model import CallParams
from tests.conftest import report_of
from tests.integration.test_calls_lab import silent_uas  # noqa: F401 (fixture)
from tests.integration.test_checks_lab import NO_CALLS, checks

pytestmark = pytest.mark.lab
TSHARK = shutil.which("tshark")
needs_tshark = pytest.mark.skipif(TSHARK is None or os.geteuid() != 0,
                                  reason="needs tshark and root to capture on lo")


def by_id(report) -> dict:
    return {c.id: c for c in report.checks}


def test_check_pcap_read_back_by_tshark_and_analyze(lab, run_sipkit, tmp_path):
    pcap = tmp_path / "check.pcap"
    proc = run_sipkit("check", "-c", str(lab.site_file), *NO_CALLS, "--json", "--pcap", str(pcap))
    rep = report_of(proc)
    sent = sum(1 for c in rep["checks"] for e in c["evidence"] if e["kind"] == "sip")
    assert rep["options"]["pcap"]["packets"] == sent > 5
    if TSHARK:
        out = subprocess.run([TSHARK, "-r", str(pcap), "-Y", "sip", "-T", "fields", "-e",
                              "frame.number"], capture_output=True, text=True).stdout
        assert len(out.split()) == sent
    password = yaml.safe_load(lab.site_file.read_text())["pbx_password"]
    assert password.encode() not in pcap.read_bytes()
    analysis = by_id(analyze_file(str(pcap)))
    assert checks(rep)["register"]["status"] == "pass"
    assert analysis["registrations"].status == "pass"
    assert analysis["capture"].details["sip_messages"] == sent


def test_check_pcap_wrong_password_same_outcome(lab, run_sipkit, tmp_path):
    pcap = tmp_path / "bad.pcap"
    proc = run_sipkit("check", "-c", str(lab.site_file), "--only", "register", "--json",
                      "--set", "pbx_password=Wrong-Pcap-1", "--pcap", str(pcap))
    assert checks(report_of(proc))["register"]["status"] == "fail"
    assert b"Wrong-Pcap-1" not in pcap.read_bytes()
    proc = run_sipkit("analyze", str(pcap), "--json")
    got = {c["id"]: c for c in report_of(proc)["checks"]}
    assert proc.returncode == 1
    assert got["registrations"]["status"] == "fail" and "403" in got["registrations"]["summary"]


@contextmanager
def capture(path, lab, extra_hosts=()):
    hosts = [lab.pbx_ip, lab.echo_ip, *extra_hosts]
    flt = " or ".join(f"host {h}" for h in hosts)
    proc = subprocess.Popen([TSHARK, "-i", "lo", "-f", flt, "-w", str(path), "-q"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 15
    line = ""
    while time.monotonic() < deadline and "Capturing on" not in line:
        line = proc.stderr.readline()
    assert "Capturing on" in line, "tshark did not start"
    try:
        yield
    finally:
        time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        proc.wait(10)


@needs_tshark
def test_analyze_tshark_good_and_wrong_registration(lab, run_sipkit, tmp_path):
    good, bad = tmp_path / "good.pcapng", tmp_path / "bad.pcapng"
    with capture(good, lab):
        run_sipkit("check", "-c", str(lab.site_file), "--only", "register")
    with capture(bad, lab):
        run_sipkit("check", "-c", str(lab.site_file), "--only", "register", "--set",
                   "pbx_password=Wrong-Tshark-2")
    assert by_id(analyze_file(str(good)))["registrations"].status == "pass"
    r = by_id(analyze_file(str(bad)))["registrations"]
    assert r.status == "fail" and "403" in r.summary


@needs_tshark
def test_analyze_tshark_call_with_rtp_echo(lab, tmp_path):
    cap = tmp_path / "call.pcapng"
    with capture(cap, lab):
        r = asyncio.run(run_call(CallParams(target=f"sip:echo@{lab.echo_ip}:5060",
                                            local_ip=lab.pbx_ip, seconds=1.5)))
    assert r.status == "answered"
    got = by_id(analyze_file(str(cap)))
    assert got["calls"].status == "pass"
    assert got["media"].status == "pass", got["media"]
    row = next(d for d in got["capture"].details["dialogs"] if d["kind"] == "INVITE")
    assert row["rtp_to_caller"] > 30 and row["rtp_to_callee"] > 30


@needs_tshark
def test_analyze_tshark_one_way_audio(lab, tmp_path, silent_uas):  # noqa: F811
    cap = tmp_path / "oneway.pcapng"
    with capture(cap, lab, [silent_uas]):
        r = asyncio.run(run_call(CallParams(target=f"sip:echo@{silent_uas}:5060",
                                            local_ip=lab.pbx_ip, seconds=1.5)))
    assert r.status == "answered"
    media = by_id(analyze_file(str(cap)))["media"]
    assert media.status == "fail" and "one-way" in media.summary, media
    assert "no RTP from the callee" in media.summary


def test_truncated_and_corrupt_captures(lab, run_sipkit, tmp_path):
    pcap = tmp_path / "full.pcap"
    run_sipkit("check", "-c", str(lab.site_file), *NO_CALLS, "--pcap", str(pcap))
    data = pcap.read_bytes()
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(data[: len(data) // 2])
    proc = run_sipkit("analyze", str(cut), "--json")
    got = {c["id"]: c for c in report_of(proc)["checks"]}
    assert got["capture"]["status"] == "warn" and "partial" not in proc.stderr
    assert got["capture"]["details"]["truncated"] is True
    assert "Traceback" not in proc.stderr
    junk = tmp_path / "junk.pcap"
    junk.write_bytes(b"\x00" * 100)
    proc = run_sipkit("analyze", str(junk))
    assert proc.returncode == 2 and "not a pcap" in proc.stderr and "Traceback" not in proc.stderr
    proc = run_sipkit("analyze", str(tmp_path / "missing.pcap"))
    assert proc.returncode == 2 and "no such file" in proc.stderr
