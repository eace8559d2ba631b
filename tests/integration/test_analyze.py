"""`sipkit analyze` on tshark captures of the lab's real traffic: a good registration, a wrong
password, a call with RTP echo, a call whose far end sends no RTP, a truncated capture."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import time
from contextlib import contextmanager

import pytest

from sipkit.analyze import analyze_file
from tests.conftest import report_of
from tests.peers import silent_sipp_uas

pytestmark = [pytest.mark.lab,
              pytest.mark.skipif(shutil.which("tshark") is None or os.geteuid() != 0,
                                 reason="needs tshark, and root to capture on lo")]


def by_id(report) -> dict:
    return {c.id: c for c in report.checks}


@contextmanager
def capture(path, hosts):
    """tshark on lo for ``hosts``; traffic starts only once tshark says it is capturing."""
    flt = " or ".join(f"host {h}" for h in hosts)
    proc = subprocess.Popen([shutil.which("tshark"), "-i", "lo", "-f", flt, "-w", str(path)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline, line = time.monotonic() + 15, ""
        while time.monotonic() < deadline and "Capturing on" not in line:
            line = proc.stderr.readline()
            if not line and proc.poll() is not None:
                break
        assert "Capturing on" in line, f"tshark did not start: {line}"
        yield
        time.sleep(0.3)  # the last packets reach the capture buffer
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def silent_far_end(lab, tmp_path_factory):
    """A SIPp UAS that answers but never sends RTP, on the lab's .33."""
    with silent_sipp_uas(lab, 33, 8891, tmp_path_factory.mktemp("silent")) as ip:
        yield ip


def test_good_registration(lab, run_sipkit, tmp_path):
    cap = tmp_path / "good.pcapng"
    with capture(cap, [lab.pbx_ip]):
        proc = run_sipkit("check", "-c", str(lab.site_file), "--only", "register")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    got = by_id(analyze_file(str(cap)))
    assert got["capture"].status == "pass"
    assert got["registration"].status == "pass", got["registration"]
    assert got["registration"].details["succeeded"] >= 1
    assert got["auth_loop"].status == "pass"
    assert got["nat_rewrite"].status == "pass" and got["retransmissions"].status == "pass"


def test_wrong_password(lab, run_sipkit, tmp_path):
    cap = tmp_path / "bad.pcapng"
    with capture(cap, [lab.pbx_ip]):
        run_sipkit("check", "-c", str(lab.site_file), "--only", "register", "--set",
                   "pbx_password=Wrong-Tshark-7")
    proc = run_sipkit("analyze", str(cap), "--json")
    assert proc.returncode == 1
    got = {c["id"]: c for c in report_of(proc)["checks"]}
    reg = got["registration"]
    assert reg["status"] == "fail" and "403" in reg["summary"], reg
    assert "wrong password" in reg["summary"]
    assert got["auth_loop"]["status"] == "pass"  # sipkit tries exactly once
    # human output: the dialog table and the problem with its fix
    human = run_sipkit("analyze", str(cap), "-v")
    assert "403 Forbidden" in human.stdout and "fix:" in human.stdout
    assert "── REGISTER" in human.stdout and "Traceback" not in human.stderr


def test_call_with_rtp_echo(lab, run_sipkit, tmp_path):
    cap = tmp_path / "call.pcapng"
    with capture(cap, [lab.pbx_ip, lab.echo_ip]):
        proc = run_sipkit("check", "-c", str(lab.site_file), "--only", "call_outbound", "--json")
    assert report_of(proc)["status"] in ("pass", "warn"), proc.stdout
    got = by_id(analyze_file(str(cap)))
    assert got["call_setup"].status == "pass", got["call_setup"]
    assert got["one_way_audio"].status == "pass", got["one_way_audio"]
    row = next(d for d in got["capture"].details["dialogs"] if d["kind"] == "INVITE")
    assert row["final"] == "200 OK"
    assert row["rtp_to_caller"] > 30 and row["rtp_to_callee"] > 30
    assert got["auth_loop"].status == "pass"
    # A clean teardown, read by tshark rather than by us: the 407-challenged INVITE, its
    # authenticated retry, the hold and the resume re-INVITEs (check.hold_resume, on by
    # default) — no codec-locking re-INVITE the echo would drop — each answered, and the BYE
    # answered 200.
    fields = subprocess.run([shutil.which("tshark"), "-r", str(cap), "-Y", "sip", "-T", "fields",
                             "-e", "sip.CSeq", "-e", "sip.Status-Code"], capture_output=True,
                            text=True, check=True).stdout.splitlines()
    invites = {line.split("\t")[0] for line in fields if line.endswith("INVITE\t")}
    assert len(invites) == 4, fields
    answered = {line.split("\t")[0] for line in fields if line.endswith("INVITE\t200")}
    assert len(answered) == 3, fields  # all but the challenged one
    assert any(line.split("\t")[0].endswith("BYE") and line.endswith("\t200") for line in fields)


def test_call_far_end_sends_no_rtp(lab, tmp_path, silent_far_end):
    from sipkit.media.call import run_call
    from sipkit.media.model import CallParams

    cap = tmp_path / "oneway.pcapng"
    with capture(cap, [lab.pbx_ip, silent_far_end]):
        r = asyncio.run(run_call(CallParams(target=f"sip:echo@{silent_far_end}:5060",
                                            local_ip=lab.pbx_ip, seconds=1.5)))
    assert r.status == "answered"
    got = by_id(analyze_file(str(cap)))
    assert got["call_setup"].status == "pass"
    media = got["one_way_audio"]
    assert media.status == "fail" and "1 one-way" in media.summary, media
    assert "no RTP from the callee" in media.summary
    assert media.details["one_way"] == 1
    assert any(e.summary.startswith("INVITE") for e in media.evidence)  # a ladder to show


def test_truncated_capture_is_a_partial_analysis(lab, run_sipkit, tmp_path):
    cap = tmp_path / "full.pcapng"
    with capture(cap, [lab.pbx_ip]):
        for _ in range(3):
            run_sipkit("check", "-c", str(lab.site_file), "--only", "register")
    data = cap.read_bytes()
    cut = tmp_path / "cut.pcapng"
    cut.write_bytes(data[: len(data) // 2])
    proc = run_sipkit("analyze", str(cut), "--json")
    assert "Traceback" not in proc.stderr and proc.returncode == 0, proc.stdout + proc.stderr
    got = {c["id"]: c for c in report_of(proc)["checks"]}
    assert got["capture"]["status"] == "warn" and got["capture"]["details"]["truncated"]
    assert "partial analysis" in got["capture"]["summary"]
    assert got["registration"]["status"] == "pass"  # what was read is still analysed
    human = run_sipkit("analyze", str(cut))
    assert "partial analysis" in human.stdout and "Traceback" not in human.stderr


def test_unreadable_files_are_usage_errors(run_sipkit, tmp_path):
    junk = tmp_path / "junk.pcap"
    junk.write_bytes(b"\x00" * 100)
    proc = run_sipkit("analyze", str(junk))
    assert proc.returncode == 2 and "not a pcap" in proc.stderr
    proc = run_sipkit("analyze", str(tmp_path / "missing.pcap"))
    assert proc.returncode == 2 and "no such file" in proc.stderr
    proc = run_sipkit("analyze", str(tmp_path))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
