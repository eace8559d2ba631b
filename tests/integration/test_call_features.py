"""What an AI agent's calls need, against real pjsua2 far ends (sipkit.lab.farend) on hosts
.70–.82 of the session's lab prefix: DTMF both ways, the codec audit, audio that really
arrives, media address truth, hold/resume, a long call whose ACK an nft rule drops, and
simultaneous calls against a far end with a channel limit.

The far ends start once per module; the calls run concurrently (one worker process each) and
the tests assert on their results. The nft table is named for this helper ("calls") and
the pid, and is removed at the end, also on failure.
"""

from __future__ import annotations

import asyncio
import glob
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import pytest

from sipkit.checks.base import CheckContext, RunOptions
from sipkit.checks.calls import codec_audit, concurrent_calls, judge_audio
from sipkit.lab.manager import wait_sip
from sipkit.media.call import run_call
from sipkit.media.model import CallParams
from sipkit.settings import Site
from tests.conftest import _prefix

pytestmark = [
    pytest.mark.skipif(importlib.util.find_spec("pjsua2") is None,
                       reason="needs pjsua2 (pip install pjsua2-python)"),
]

PREFIX = _prefix()
LOCAL = f"{PREFIX}.70"
HOSTS = {  # name: (host, farend arguments)
    "digits": (71, ["--codecs", "PCMU", "--echo-digits"]),
    "sender": (72, ["--codecs", "PCMU", "--send-digits", "456"]),
    "no_te": (73, ["--codecs", "PCMU", "--no-telephone-event"]),
    "pcma": (74, ["--codecs", "PCMA"]),
    "g722": (75, ["--codecs", "G722"]),
    "silence": (76, ["--codecs", "PCMU", "--media", "silence"]),
    "latch": (77, ["--codecs", "PCMU", "--sdp-ip", f"{PREFIX}.78"]),
    "limit": (79, ["--codecs", "PCMU", "--max-calls", "2"]),
    "echo": (80, ["--codecs", "PCMU"]),
    "no_ack": (81, ["--codecs", "PCMU"]),
}
LONG_CALL_S = 40
NFT_TABLE = f"sipkit_calls_{os.getpid()}"


def ip(name: str) -> str:
    return f"{PREFIX}.{HOSTS[name][0]}"


def target(name: str) -> str:
    return f"sip:echo@{ip(name)}:5060"


def P(name: str, **kw) -> CallParams:
    base = {"seconds": 3, "setup_timeout": 5, "tone_hz": 1004.0, "dtmf": "159#"}
    return CallParams(target=target(name), local_ip=LOCAL, **{**base, **kw})


def site(**check) -> Site:
    return Site.model_validate({
        "agent_uuid": "3c90c3cc-0d44-4b50-8888-8dd25736052a", "phone_number": "+902124439178",
        "registrar_server": ip("echo"), "username_extension": "100",
        "pbx_password": "Calls-Test-Secret-9", "allowed_ip": LOCAL,
        "check": {"call_seconds": 2, **check}})


def ctx_for(s: Site) -> CheckContext:
    return CheckContext.for_site(s, RunOptions())


def _alive(proc: subprocess.Popen) -> bool:
    return proc.poll() is None


def start_farend(tmp, name: str) -> tuple[subprocess.Popen, str]:
    args = HOSTS[name][1]
    report = str(tmp / f"{name}.jsonl")
    with open(tmp / f"{name}.err", "wb") as err:  # the child keeps its own descriptor
        proc = subprocess.Popen([sys.executable, "-m", "sipkit.lab.farend", "--ip", ip(name),
                                 "--report", report, *args], stdout=subprocess.DEVNULL,
                                stderr=err, start_new_session=True)
    return proc, report


def events(report: str, kind: str) -> list[dict]:
    try:
        with open(report) as f:
            return [e for e in map(json.loads, f) if e["event"] == kind]
    except OSError:
        return []


def nft(*args: str, check: bool = True):
    return subprocess.run(["nft", *args], capture_output=True, text=True, check=check)


def drop_acks_to(addr: str) -> None:
    """Drop every UDP datagram to addr:5060 whose payload starts with "ACK ": the far end then
    never sees our ACK (its 2xx retransmissions and the 32 s BYE follow)."""
    nft("add", "table", "ip", NFT_TABLE)
    nft("add", "chain", "ip", NFT_TABLE, "out",
        "{ type filter hook output priority 0 ; policy accept ; }")
    nft("add", "rule", "ip", NFT_TABLE, "out", "ip", "daddr", addr, "udp", "dport", "5060",
        "@th,64,32", "0x41434b20", "counter", "drop")


def remove_table() -> None:
    nft("delete", "table", "ip", NFT_TABLE, check=False)


@pytest.fixture(scope="module")
def farends(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("farends")
    procs = {}
    try:
        for name in HOSTS:
            procs[name] = start_farend(tmp, name)
        for name, (proc, _) in procs.items():
            if not wait_sip(ip(name), 5060, 15.0, alive=lambda p=proc: _alive(p)):
                err = (tmp / f"{name}.err").read_text(errors="replace")[-500:]
                raise AssertionError(f"far end {name} did not answer OPTIONS: {err}")
        yield {name: report for name, (_, report) in procs.items()}
    finally:
        for proc, _ in procs.values():
            if _alive(proc):
                proc.send_signal(signal.SIGTERM)
        for proc, _ in procs.values():
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


CALLS = {
    "digits": P("digits"),
    "sender": P("sender", dtmf=None),
    "no_te": P("no_te"),
    "silence": P("silence"),
    "latch": P("latch", seconds=2.5),
    "hold": P("echo", hold=True, seconds=3, dtmf=None),  # this far end does not echo digits
}


@pytest.fixture(scope="module")
def calls(farends):
    can_nft = shutil.which("nft") is not None and os.geteuid() == 0
    s = site(concurrent_calls=3, codec_audit=True)

    async def all_calls():
        jobs = {name: run_call(p) for name, p in CALLS.items()}
        if can_nft:
            drop_acks_to(ip("no_ack"))
            jobs["no_ack"] = run_call(P("no_ack", dtmf=None, seconds=LONG_CALL_S,
                                        tone_hz=None))
        ctx = ctx_for(s)
        jobs["audit_pcma"] = codec_audit(ctx, P("pcma"), ip("pcma"))
        jobs["audit_g722"] = codec_audit(ctx_for(s), P("g722"), ip("g722"))
        jobs["three"] = concurrent_calls(ctx_for(s), P("echo", seconds=2), ip("echo"), 3)
        jobs["limited"] = concurrent_calls(ctx_for(s), P("limit", seconds=2), ip("limit"), 3)
        t0 = time.monotonic()
        done = await asyncio.gather(*jobs.values())
        return dict(zip(jobs, done)), time.monotonic() - t0

    recordings = set(glob.glob(os.path.join(tempfile.gettempdir(), "sipkit-call-*")))
    try:
        results, wall = asyncio.run(all_calls())
        if can_nft:
            results["_nft"] = nft("list", "table", "ip", NFT_TABLE).stdout
    finally:
        remove_table()
    results["_wall"] = wall
    results["_can_nft"] = can_nft
    results["_recordings_left"] = set(glob.glob(os.path.join(tempfile.gettempdir(),
                                                             "sipkit-call-*"))) - recordings
    yield results


def test_digits_sent_reach_the_far_end_and_come_back(calls, farends):
    r = calls["digits"]
    assert r.status == "answered" and r.dtmf["telephone_event"], r
    assert r.dtmf["method"] == "rfc4733" and r.dtmf["sent"] == "159#"
    got = [e["digit"] for e in events(farends["digits"], "digit")]
    assert "".join(got).startswith("159#"), got  # the far end's own record
    assert all(e["method"] == "rfc4733" for e in events(farends["digits"], "digit"))
    back = "".join(d["digit"] for d in r.dtmf["received"])
    assert back == "159#" and "dtmf_not_returned" not in r.verdicts, r.dtmf
    assert "dtmf_not_negotiated" not in r.verdicts


def test_digits_from_the_far_end_are_received(calls):
    r = calls["sender"]
    assert r.status == "answered"
    assert [(d["digit"], d["method"]) for d in r.dtmf["received"]] == \
        [("4", "rfc4733"), ("5", "rfc4733"), ("6", "rfc4733")], r.dtmf


def test_no_telephone_event_gives_the_dtmf_verdict(calls, farends):
    r = calls["no_te"]
    assert r.status == "answered" and not r.dtmf["telephone_event"], r.dtmf
    assert "dtmf_not_negotiated" in r.verdicts
    # pjsua's far end allows INFO: the digits went that way and it saw them as SIP INFO
    assert r.dtmf["method"] == "sip_info" and r.dtmf["info_codes"][:1] == [200], r.dtmf
    assert {e["method"] for e in events(farends["no_te"], "digit")} == {"sip_info"}
    # the verdict: FAIL on the inbound call by default, WARN when the site says optional
    res = judge_audio(ctx_for(site()), r, "call", dtmf_role="inbound")
    assert res.status == "fail" and "DTMF not negotiated" in res.summary, res.summary
    assert "SIP INFO" in res.summary and "rfc4733" in res.hint
    assert res.details["dtmf"]["mode"] == "sip_info"
    res = judge_audio(ctx_for(site(dtmf="optional")), r, "call", dtmf_role="inbound")
    assert res.status == "warn"
    assert judge_audio(ctx_for(site()), r, "call", dtmf_role="outbound").status == "warn"


def test_codec_audit_shows_pcma_only_and_g722_only_far_ends(calls):
    for name, codec in (("audit_pcma", "PCMA"), ("audit_g722", "G722")):
        f = calls[name]
        assert f["status"] == "pass", f
        rows = {x["codec"]: x for x in f["details"]["codecs"]}
        assert f["details"]["accepted"] == [codec], rows
        assert rows["opus"]["result"] == "not in this media engine"
        refused = [c for c, x in rows.items() if x["result"] == "refused"]
        assert sorted(refused) == sorted({"PCMU", "PCMA", "G722"} - {codec})
        assert all(rows[c]["code"] == 488 for c in refused), rows
        assert f"accepted alone: {codec}" in f["summary"]


def test_an_echo_of_silence_gives_the_audio_verdict(calls):
    r = calls["silence"]
    assert r.status == "answered" and r.rx.packets > 50  # RTP flows...
    assert r.audio["nonsilent_share"] < 0.2 and "audio_silent" in r.verdicts, r.audio
    res = judge_audio(ctx_for(site()), r, "call")
    assert res.status == "fail" and "silence" in res.summary
    good = calls["digits"]
    assert good.audio["tone_share_judged"] > 0.8 and "audio_silent" not in good.verdicts


def test_sdp_address_other_than_rtp_source_is_the_latching_warn(calls):
    r = calls["latch"]
    assert r.status == "answered" and r.two_way_audio, r
    assert r.remote_media.startswith(f"{PREFIX}.78:") and r.rtp_source.startswith(ip("latch"))
    assert "rtp_source_differs_from_sdp" in r.verdicts
    res = judge_audio(ctx_for(site()), r, "call")
    assert res.status == "warn" and "latches" in res.summary, res.summary
    assert "rtp_source_differs_from_sdp" not in calls["digits"].verdicts


def test_hold_and_resume(calls):
    r = calls["hold"]
    h = r.hold
    assert h["hold_ok"] and h["hold_code"] == 200 and h["hold_state"] == "local_hold", h
    assert h["resume_ok"] and h["resume_code"] == 200 and h["resume_state"] == "active"
    assert h["rx_end"] > h["rx_at_resume"] + 5  # media resumed
    assert "hold_resume_failed" not in r.verdicts and r.verdicts == [], r.verdicts
    res = judge_audio(ctx_for(site()), r, "call")
    assert res.status == "pass" and "hold/resume OK" in res.summary


def test_lost_ack_gives_the_long_call_verdict(calls):
    if not calls["_can_nft"]:
        pytest.skip("needs nft and root to drop the ACK")
    r = calls["no_ack"]
    assert r.status == "answered", r
    assert "drop" in calls["_nft"] and "packets 0 " not in calls["_nft"]  # the rule hit
    d = r.dialog
    assert d["ok_count"] >= 3 and "ack_not_received" in r.verdicts, d
    # the far end (pjsip) gives up ~32 s after its 2xx and sends BYE: within the 40 s
    assert r.ended_by == "remote" and 28 <= d["far_bye_after_s"] <= 36, d
    assert "far_end_bye_near_32s" in r.verdicts
    assert r.media_seconds < LONG_CALL_S
    res = judge_audio(ctx_for(site()), r, "call")
    assert res.status == "fail" and "never got our ACK" in res.summary and "Contact" in res.hint
    assert "the 200 OK's Contact <sip:" in res.summary and ip("no_ack") in res.summary
    # a healthy call: one 2xx
    assert calls["digits"].dialog["ok_count"] == 1


def test_three_simultaneous_calls_pass_and_a_two_channel_far_end_shows_its_limit(calls):
    f = calls["three"]
    assert f["status"] == "pass" and f["details"]["connected"] == 3, f
    assert all(c["mos"] and c["mos"] > 4 for c in f["details"]["calls"])
    f = calls["limited"]
    assert f["status"] == "fail" and f["details"]["connected"] == 2, f
    assert "486" in f["summary"] and "channel limit of 2" in f["summary"]
    assert "at least 3" in f["hint"]


def test_no_recording_is_left_behind(calls):
    assert calls["_recordings_left"] == set()


def test_no_secret_in_results(calls):
    for name in ("three", "limited", "audit_pcma"):
        assert "Calls-Test-Secret-9" not in json.dumps(calls[name], default=str)


def test_cancelling_a_call_hangs_up_cleanly(farends):
    """The Ctrl-C hook: cancelling run_call's task makes the worker send its BYE (SIGTERM),
    so the far end keeps no half call."""
    report = farends["echo"]
    before = len(events(report, "call"))

    async def cancel_mid_call():
        task = asyncio.ensure_future(run_call(P("echo", seconds=20, dtmf=None)))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # until the far end confirms the call
            await asyncio.sleep(0.1)
            if any(e["state"] == "CONFIRMED" for e in events(report, "call")[before:]):
                break
        assert not task.done(), events(report, "call")[before:]  # the call must still be up
        t0 = time.monotonic()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return time.monotonic() - t0

    took = asyncio.run(cancel_mid_call())
    assert took < 4, took
    deadline = time.monotonic() + 5
    states = []
    while time.monotonic() < deadline:
        states = [e["state"] for e in events(report, "call")[before:]]
        if "DISCONNECTED" in states:
            break
        time.sleep(0.1)
    assert "CONFIRMED" in states and "DISCONNECTED" in states, states


def pcmu_sdp(version: int) -> str:
    """A PCMU-only SDP (no telephone-event) for the SIPp far ends below."""
    return f"""
      v=0
      o=farend 1 {version} IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP 0
      a=rtpmap:0 PCMU/8000"""


def sipp_reply(status: str, *headers: str, sdp: str = "", tag: str = "") -> str:
    """A SIPp <send> of a response to the last request (its Via, From, To, Call-ID, CSeq)."""
    body = ("Content-Type: application/sdp\n      Content-Length: [len]\n" + sdp if sdp
            else "Content-Length: 0")
    extra = "".join(f"      {h}\n" for h in headers)
    retrans = ' retrans="500"' if sdp else ""
    return f"""  <send{retrans}><![CDATA[
      SIP/2.0 {status}
      [last_Via:]
      [last_From:]
      [last_To:]{tag}
      [last_Call-ID:]
      [last_CSeq:]
{extra}      {body}
  ]]></send>
"""


ALLOW = "Allow: INVITE, ACK, BYE, CANCEL"
INBAND_ONLY_UAS = f"""<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="in-band DTMF only: no telephone-event, INFO refused">
  <recv request="INVITE" crlf="true"/>
{sipp_reply("200 OK", "Contact: <sip:[local_ip]:[local_port]>", ALLOW, sdp=pcmu_sdp(1),
            tag=";tag=[pid]inband[call_number]")}  <recv request="ACK" crlf="true"/>
  <label id="incall"/>
  <recv request="INFO" optional="true" next="info"/>
  <recv request="BYE"/>
{sipp_reply("200 OK")}  <nop next="end"/>
  <label id="info"/>
{sipp_reply("405 Method Not Allowed", ALLOW)}  <nop next="incall"/>
  <label id="end"/>
</scenario>
"""


needs_sipp = pytest.mark.skipif(shutil.which("sipp") is None,
                                reason="needs SIPp (Debian package sip-tester)")


def call_sipp(tmp_path, host: int, scenario: str, **kw):
    """One call to a SIPp far end (with RTP echo) running ``scenario`` on .``host``."""
    from tests.integration.test_media import start_uas, stop

    addr = f"{PREFIX}.{host}"
    pid = start_uas(tmp_path, addr, echo=True, scenario=scenario)
    try:
        return asyncio.run(run_call(CallParams(target=f"sip:echo@{addr}:5060", local_ip=LOCAL,
                                               **kw)))
    finally:
        stop(pid)


@needs_sipp
def test_inband_only_far_end_is_told_apart(tmp_path):
    r = call_sipp(tmp_path, 82, INBAND_ONLY_UAS, seconds=2, dtmf="159#", tone_hz=1004.0)
    assert r.status == "answered" and not r.dtmf["telephone_event"], r
    # the digits went out as SIP INFO (no telephone-event to carry them), which it refused
    assert r.dtmf["method"] == "sip_info" and r.dtmf["info_codes"], r.dtmf
    # 405 from the scenario; SIPp's -aa may answer an INFO that comes while it sends the 405
    assert 405 in r.dtmf["info_codes"], r.dtmf
    res = judge_audio(ctx_for(site()), r, "call", dtmf_role="inbound")
    assert res.details["dtmf"]["mode"] == "inband_only" and res.status == "fail"
    assert "in-band tones only" in res.summary and "405" in res.summary


@pytest.mark.lab
def test_call_check_json_through_the_lab_pbx(lab, run_sipkit, tmp_path):
    """The default call check through Kamailio to the lab echo: DTMF returned, the tone back,
    hold/resume; with the opt-ins, 3 simultaneous calls and the codec audit (the lab's SIPp
    answers a lone G722 offer with G.711 only: refused, "not in its answer")."""
    from tests.conftest import report_of
    from tests.integration.test_checks_lab import auth_registers, checks, site_variant

    def registers_of(path) -> tuple[int, dict]:
        before = auth_registers(lab)
        proc = run_sipkit("check", "-c", str(path), "--only", "call_outbound", "--json")
        time.sleep(0.2)  # let Kamailio flush its log
        return auth_registers(lab) - before, proc

    plain, _ = registers_of(lab.site_file)
    path = site_variant(lab, tmp_path, **{"check.concurrent_calls": 3,
                                          "check.codec_audit": True})
    with_extras, proc = registers_of(path)
    c = checks(report_of(proc))["call_outbound"]
    assert c["status"] == "pass", c
    d = c["details"]
    assert d["dtmf"]["mode"] == "rfc4733" and d["dtmf"]["returned"], d["dtmf"]
    assert d["call"]["audio"]["tone_share_judged"] > 0.8
    assert d["call"]["hold"]["hold_ok"] and d["call"]["hold"]["resume_ok"]
    assert d["far_end_codecs"][:2] == ["PCMU/8000", "PCMA/8000"]
    assert d["concurrent"]["connected"] == 3
    rows = {x["codec"]: x for x in d["codec_audit"]["codecs"]}
    assert d["codec_audit"]["accepted"] == ["PCMU", "PCMA"], rows
    assert rows["G722"]["result"] == "refused" and "G722 (200, not in its answer)" in c["summary"]
    assert "DTMF 159# sent as RFC 4733, returned" in c["summary"]
    assert with_extras == plain  # the extra calls do not REGISTER (a PBX authenticates INVITEs)


SESSION_TIMER_UAS = f"""<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="session timer: Session-Expires 90 refresher=uas, a refresh re-INVITE at 1 s">
  <recv request="INVITE" crlf="true" rrs="true">
    <action>
      <ereg regexp=".*" search_in="hdr" header="From:" check_it="true" assign_to="caller"/>
    </action>
  </recv>
{sipp_reply("200 OK", "Contact: <sip:[local_ip]:[local_port]>", ALLOW + ", UPDATE",
            "Supported: timer", "Require: timer", "Session-Expires: 90;refresher=uas",
            sdp=pcmu_sdp(1), tag=";tag=[pid]st[call_number]")}  <recv request="ACK" crlf="true"/>
  <pause milliseconds="1000"/>
  <send retrans="500"><![CDATA[
      INVITE [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:echo@[local_ip]>;tag=[pid]st[call_number]
      To:[$caller]
      [last_Call-ID:]
      CSeq: 2 INVITE
      Contact: <sip:[local_ip]:[local_port]>
      [routes]
      Max-Forwards: 70
      Supported: timer
      Session-Expires: 90;refresher=uas
      Content-Type: application/sdp
      Content-Length: [len]
{pcmu_sdp(2)}
  ]]></send>
  <recv response="200"/>
  <send><![CDATA[
      ACK [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:echo@[local_ip]>;tag=[pid]st[call_number]
      To:[$caller]
      [last_Call-ID:]
      CSeq: 2 ACK
      [routes]
      Max-Forwards: 70
      Content-Length: 0
  ]]></send>
  <recv request="BYE"/>
{sipp_reply("200 OK")}</scenario>
"""


@needs_sipp
def test_a_session_timer_refresh_from_the_far_end_is_handled(tmp_path):
    r = call_sipp(tmp_path, 83, SESSION_TIMER_UAS, seconds=2.5)
    assert r.status == "answered" and r.two_way_audio, r
    d = r.dialog
    assert (d["session_expires"], d["refresher"]) == (90, "uas"), d
    assert d["in_dialog"] == [{"by": "far end", "method": "INVITE", "status": 200,
                               "purpose": "refresh", "at_s": d["in_dialog"][0]["at_s"]}]
    assert 0.8 < d["in_dialog"][0]["at_s"] < 2.0
    assert "session_refresh_failed" not in r.verdicts and d["ok_count"] == 1

