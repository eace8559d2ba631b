"""Test calls with media against real SIPp UASes on loopback: hosts .50–.53 of the session's
lab prefix (tests/conftest.py), so concurrent test sessions do not collide.

- ECHO (.51): SIPp with ``-rtp_echo``, the research lab's ``uas_rr.xml`` (SIPp's uas +
  ``[last_Record-Route:]``) extended with a digest REGISTER branch (verifyauth) and a far-end
  BYE for ``sip:bye@`` and a 484 for ``sip:reject@``;
- SILENT (.52): the same scenario without ``-rtp_echo``: answers, never sends RTP;
- NOBODY (.53): nothing listens; LOCAL (.50) is where the calls come from.

The calls run concurrently, each in its own worker process (which is the point of the worker
design: one pjsua2 Endpoint per process), once per module; the tests assert on the results.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import re
import shutil
import signal
import subprocess
import time

import pytest

from sipkit.lab.manager import wait_sip
from sipkit.media.call import run_call
from sipkit.media.model import CallParams
from tests.conftest import _prefix

pytestmark = [
    pytest.mark.skipif(shutil.which("sipp") is None,
                       reason="needs SIPp (Debian package sip-tester)"),
    pytest.mark.skipif(importlib.util.find_spec("pjsua2") is None,
                       reason="needs pjsua2 (pip install pjsua2-python)"),
]

LOCAL, ECHO, SILENT, NOBODY = (f"{_prefix()}.{host}" for host in (50, 51, 52, 53))
PASSWORD = "Media-Reg-Secret-7"

SCENARIO = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="sipkit media test UAS">
  <Global variables="pw"/>
  <recv request="REGISTER" optional="true" next="register"/>
  <recv request="INVITE" crlf="true" rrs="true">
    <action>
      <ereg regexp="INVITE sip:bye@" search_in="msg" check_it="false" assign_to="byetxt"/>
      <ereg regexp=".*" search_in="hdr" header="From:" check_it="true" assign_to="caller"/>
      <strcmp assign_to="cmp" variable="byetxt" value="INVITE sip:bye@"/>
      <test assign_to="bye" variable="cmp" compare="equal" value="0"/>
      <ereg regexp="INVITE sip:reject@" search_in="msg" check_it="false" assign_to="rejtxt"/>
      <strcmp assign_to="rcmp" variable="rejtxt" value="INVITE sip:reject@"/>
      <test assign_to="reject" variable="rcmp" compare="equal" value="0"/>
      <ereg regexp="INVITE sip:nobye@" search_in="msg" check_it="false" assign_to="nbtxt"/>
      <strcmp assign_to="nbcmp" variable="nbtxt" value="INVITE sip:nobye@"/>
      <test assign_to="nobye" variable="nbcmp" compare="equal" value="0"/>
    </action>
  </recv>
  <nop test="reject" next="rejectit"/>
  <send><![CDATA[
      SIP/2.0 180 Ringing
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      [last_Record-Route:]
      Contact: <sip:[local_ip]:[local_port];transport=[transport]>
      Content-Length: 0
  ]]></send>
  <send retrans="500"><![CDATA[
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      [last_Record-Route:]
      Contact: <sip:[local_ip]:[local_port];transport=[transport]>
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=user1 53655765 2353687637 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP 0
      a=rtpmap:0 PCMU/8000
  ]]></send>
  <recv request="ACK" crlf="true"/>
  <nop test="bye" next="farbye"/>
  <recv request="BYE"/>
  <nop test="nobye" next="end"/>
  <send><![CDATA[
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0
  ]]></send>
  <nop next="end"/>

  <label id="farbye"/>
  <pause milliseconds="800"/>
  <send retrans="500"><![CDATA[
      BYE [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:bye@[local_ip]>;tag=[pid]SIPpTag01[call_number]
      To:[$caller]
      [last_Call-ID:]
      CSeq: 2 BYE
      [routes]
      Max-Forwards: 70
      Content-Length: 0
  ]]></send>
  <recv response="200"/>
  <nop next="end"/>

  <label id="rejectit"/>
  <send><![CDATA[
      SIP/2.0 484 Address Incomplete
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag03[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0
  ]]></send>
  <recv request="ACK"/>
  <nop next="end"/>

  <label id="register"/>
  <send><![CDATA[
      SIP/2.0 401 Unauthorized
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag02[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      WWW-Authenticate: Digest realm="sipkit.test", nonce="[pid]n[call_number]", algorithm=MD5
      Content-Length: 0
  ]]></send>
  <recv request="REGISTER">
    <action><verifyauth assign_to="authok" username="100" password="[$pw]"/></action>
  </recv>
  <nop test="authok" next="regok"/>
  <send><![CDATA[
      SIP/2.0 403 Forbidden
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag02[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0
  ]]></send>
  <nop next="end"/>
  <label id="regok"/>
  <send><![CDATA[
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag02[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      [last_Contact:];expires=60
      Content-Length: 0
  ]]></send>
  <recv request="REGISTER" timeout="5000" ontimeout="end"/>
  <send><![CDATA[
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag02[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0
  ]]></send>
  <label id="end"/>
</scenario>
"""


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has stopped
    except OSError:
        return False


def start_uas(workdir, ip: str, echo: bool, scenario: str = SCENARIO) -> int:
    """SIPp in the background (-bg: it exits 99 and prints PID=[N]); returns N when ready."""
    scen = workdir / "uas_media.xml"
    scen.write_text(scenario)
    argv = ["sipp", "-sf", str(scen), "-i", ip, "-p", "5060", "-mi", ip, "-mp", "6000",
            "-aa", "-ci", ip, "-cp", "8888", "-bg", "-nostdin"]
    if 'variables="pw"' in scenario:  # the REGISTER branch's password
        argv += ["-set", "pw", PASSWORD]
    if echo:
        argv.insert(argv.index("-aa"), "-rtp_echo")
    proc = subprocess.run(argv, capture_output=True, text=True, cwd=workdir, timeout=10)
    m = re.search(r"PID=\[(\d+)\]", proc.stdout + proc.stderr)
    assert m, f"sipp did not start (rc={proc.returncode}): {proc.stdout}{proc.stderr}"
    pid = int(m.group(1))
    if wait_sip(ip, 5060, 10.0, alive=lambda: _alive(pid)):
        return pid
    stop(pid)
    raise AssertionError(f"sipp on {ip} did not answer OPTIONS")


def stop(pid: int) -> None:
    os.kill(pid, signal.SIGTERM)
    end = time.monotonic() + 3
    while _alive(pid) and time.monotonic() < end:
        time.sleep(0.05)
    if _alive(pid):
        os.kill(pid, signal.SIGKILL)


def _workers() -> list[int]:
    """Our own worker processes still running."""
    me, found = os.getpid(), []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmd = f.read()
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except OSError:
            continue
        if ppid == me and b"sipkit.media.worker" in cmd and _alive(int(entry)):
            found.append(int(entry))
    return found


def P(target: str, **kw) -> CallParams:
    return CallParams(target=target, local_ip=LOCAL, **{"seconds": 1.5, "setup_timeout": 4,
                                                        **kw})


CALLS = {
    "two_way": (P(f"sip:echo@{ECHO}:5060", seconds=2.5, codecs=["PCMU", "PCMA"]), None),
    "one_way": (P(f"sip:echo@{SILENT}:5060"), None),
    "loss": (P(f"sip:echo@{ECHO}:5060", seconds=2, test_hook="tx_drop_pct=20"), None),
    "far_end_bye": (P(f"sip:bye@{ECHO}:5060", seconds=3), None),
    "registered": (P(f"sip:echo@{ECHO}:5060", registrar=f"sip:{ECHO}:5060", username="100",
                     password=PASSWORD, seconds=1), None),
    "wrong_password": (P(f"sip:echo@{ECHO}:5060", registrar=f"sip:{ECHO}:5060",
                         username="100", password="Wrong-" + PASSWORD), None),
    "crash": (P(f"sip:echo@{ECHO}:5060", password=PASSWORD, test_hook="abort"), None),
    "crash_mid_call": (P(f"sip:echo@{ECHO}:5060", test_hook="abort_after_answer"), None),
    "hang": (P(f"sip:echo@{ECHO}:5060", test_hook="hang"), 1.0),
    "refused": (P(f"sip:x@{NOBODY}:5060", transport="tcp"), None),
    "rejected": (P(f"sip:reject@{ECHO}:5060"), None),
    "bye_ignored": (P(f"sip:nobye@{ECHO}:5060", seconds=1), None),
    "bad_codec": (P(f"sip:echo@{ECHO}:5060", codecs=["NOPE"]), None),
}


@pytest.fixture(scope="module")
def calls(tmp_path_factory):
    echo_dir, silent_dir = tmp_path_factory.mktemp("echo"), tmp_path_factory.mktemp("silent")
    pids = [start_uas(echo_dir, ECHO, echo=True)]
    try:
        pids.append(start_uas(silent_dir, SILENT, echo=False))

        ended = {}  # wall clock when each run_call returned, to compare with the SIP's ts

        async def one(name, params, timeout):
            t0 = time.monotonic()
            result = await run_call(params, timeout)
            ended[name] = time.time()
            return result, time.monotonic() - t0

        async def all_calls():
            results = await asyncio.gather(*(one(n, p, t) for n, (p, t) in CALLS.items()))
            return dict(zip(CALLS, results))

        t0 = time.monotonic()
        results = asyncio.run(all_calls())
        results["_ended"] = ended
        results["_wall"] = time.monotonic() - t0
        results["_leftover_workers"] = _workers()
        yield results
    finally:
        for pid in pids:
            stop(pid)


def test_two_way_audio_with_mos_and_no_loss(calls):
    r, took = calls["two_way"]
    assert r.status == "answered" and r.code == 200, r
    assert r.verdicts == [] and r.two_way_audio
    assert r.codec == "PCMU/8000"
    assert r.remote_media == f"{ECHO}:6000" and r.rtp_source == f"{ECHO}:6000"
    assert r.local_media.startswith(f"{LOCAL}:")  # bound where we asked, not 0.0.0.0/eth0
    assert r.signalling_ip == ECHO
    assert 0 <= r.provisional_ms <= r.answer_ms < 1000
    assert r.tx.packets >= 100 and r.rx.packets >= 100  # 2.5 s of 20 ms packets = 125
    assert r.rx.loss == 0 and r.rx.loss_pct == 0.0
    assert r.rx.jitter_ms_mean is not None and r.rx.jitter_ms_mean < 30
    assert r.tx.loss is None and r.rtt_ms is None  # SIPp sends no RTCP: unknown, not 0
    assert r.mos is not None and r.mos >= 4.3 and r.mos_inputs["loss_pct"] == 0
    assert r.ended_by == "local" and 2.4 <= r.media_seconds < 3.5
    assert took < 2.5 + 3


def test_one_way_audio_when_the_far_end_sends_nothing(calls):
    r, _ = calls["one_way"]
    assert r.status == "answered" and r.tx.packets > 50 and r.rx.packets == 0
    assert r.verdicts == ["one_way_audio"] and r.one_way_missing == "rx"
    assert r.mos is None and r.rtp_source is None


def test_packet_loss_is_measured_and_judged(calls):
    r, _ = calls["loss"]  # pjmedia drops 20 % of what we send; the echo cannot return it
    assert r.status == "answered" and 5 <= r.rx.loss_pct <= 40, r.rx
    assert r.rx.loss > 0 and r.rx.packets > 40
    assert "loss_high" in r.verdicts and "mos_low" in r.verdicts and r.mos < 3.6


def _answered_at(r) -> float:
    """Wall clock of the 2xx to our INVITE, from the call's SIP log."""
    return next(m.ts for m in r.sip if m.direction == "in" and m.data.startswith("SIP/2.0 2")
                and re.search(r"^CSeq:\s*\d+\s+INVITE", m.data, re.M | re.I))


def test_far_end_hangup_keeps_the_stats(calls):
    r, _ = calls["far_end_bye"]
    configured = CALLS["far_end_bye"][0].seconds
    assert r.status == "answered" and r.code == 200 and r.ended_by == "remote"
    # The far end hangs up 0.8 s after its answer: the call ends then instead of running the
    # configured 3 s. A full-length call returns at least `configured` after the answer, so
    # run_call returning sooner (media, BYE, teardown, result included) proves it; timed from
    # the answer, a loaded machine's start-up (interpreter and pjsua2) does not count.
    after_answer = calls["_ended"]["far_end_bye"] - _answered_at(r)
    assert r.media_seconds < configured / 2 and after_answer < configured, \
        (r.media_seconds, after_answer)
    assert r.tx.packets > 20 and r.rx.packets > 20 and r.verdicts == []


def test_registered_call_and_no_password_anywhere(calls):
    r, _ = calls["registered"]
    assert r.registration == 200 and r.status == "answered" and r.two_way_audio
    for name in ("registered", "wrong_password", "crash"):
        assert PASSWORD not in calls[name][0].model_dump_json()
        assert all(PASSWORD not in m.data for m in calls[name][0].sip)
    assert "sip" not in r.model_dump()  # reports carry the SIP as redacted evidence only
    # the call's SIP, up to the un-REGISTER the worker sends after its result
    first = [m.data.split("\r\n", 1)[0] for m in r.sip]
    assert first[0].startswith("REGISTER ") and first[1].startswith("SIP/2.0 401")
    assert any(x.startswith("BYE ") for x in first)
    assert "Expires: 0" in r.sip[-2].data and first[-1] == "SIP/2.0 200 OK"
    assert {m.remote for m in r.sip} == {(ECHO, 5060)} and {m.transport for m in r.sip} == {"udp"}


def test_wrong_password_is_a_registration_failure(calls):
    r, _ = calls["wrong_password"]
    assert r.status == "error" and r.registration == 403
    assert "403" in r.error and r.tx.packets == 0


def test_worker_crash_is_a_result_not_an_exception(calls):
    for name in ("crash", "crash_mid_call"):
        r, _ = calls[name]
        assert r.status == "error" and "SIGABRT" in r.error, r
    # what the call said before it died is kept: the evidence of a crash mid-call
    directions = [(m.direction, m.data.split("\r\n", 1)[0]) for m in calls["crash_mid_call"][0].sip]
    assert directions[0][0] == "out" and directions[0][1].startswith("INVITE ")
    assert ("in", "SIP/2.0 200 OK") in directions


def test_hung_worker_is_killed_at_the_timeout(calls):
    r, took = calls["hang"]
    assert r.status == "error" and "did not finish" in r.error and took < 2.5


def test_refused_tcp_is_no_answer_from_the_peer(calls):
    r, took = calls["refused"]  # ;transport=tcp was added to the target for us
    assert r.status == "no_answer" and not r.response_received and took < 3
    assert r.tx.packets == 0 and r.verdicts == []


def test_rejection_is_the_peers_answer(calls):
    r, _ = calls["rejected"]
    assert r.status == "rejected" and (r.code, r.reason) == (484, "Address Incomplete")
    assert r.response_received and r.signalling_peer.startswith(f"{ECHO}:")
    assert r.provisional_ms is None and r.answer_ms is None


def test_unknown_codec_is_an_error_naming_the_available_ones(calls):
    r, _ = calls["bad_codec"]
    assert r.status == "error" and "NOPE" in r.error and "PCMU" in r.error


def test_calls_ran_concurrently_and_left_no_worker(calls):
    assert calls["_leftover_workers"] == []
    # relative, so a loaded machine slows both sides: one after another, the wall would be
    # the sum of the calls' own durations
    took = [v[1] for k, v in calls.items() if not k.startswith("_")]
    assert calls["_wall"] < 0.6 * sum(took), (calls["_wall"], took)


def test_a_bye_nobody_answers_is_a_verdict(calls):
    r, _ = calls["bye_ignored"]
    assert r.status == "answered" and r.two_way_audio, r
    assert r.verdicts == ["bye_unanswered"], r.verdicts
    byes = [m for m in r.sip if m.data.startswith("BYE ")]
    assert byes and all(m.direction == "out" for m in byes)
    assert "bye_unanswered" not in calls["two_way"][0].verdicts
