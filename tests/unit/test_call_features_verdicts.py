"""The call checks' new verdicts on synthetic inputs (pure: no pjsua2, no sockets): received
audio analysis, the dialog's SIP (2xx retransmissions, far-end BYE, session timer), DTMF,
latching, hold, and the check-level words and severities."""

from __future__ import annotations

import math

import pytest

from sipkit.checks.base import CheckContext, RunOptions
from sipkit.checks.calls import answer_codecs, dtmf_facts, dtmf_severity, judge_audio
from sipkit.lab.farend import strip_telephone_event
from sipkit.media.audio import analyse, goertzel_ratio, read_wav
from sipkit.media.model import CallResult, Direction, SipMessage, Thresholds
from sipkit.media.verdict import dialog_facts, digits_returned, judge, latched
from sipkit.settings import Site

T = Thresholds()
RATE = 16000


def tone(hz: float, seconds: float, amp: int = 8000) -> list[int]:
    return [int(amp * math.sin(2 * math.pi * hz * i / RATE)) for i in range(int(seconds * RATE))]


def noise(seconds: float, amp: int = 8000) -> list[int]:
    import random

    rnd = random.Random(7)
    return [rnd.randint(-amp, amp) for _ in range(int(seconds * RATE))]


# -- audio ------------------------------------------------------------------------------
def test_goertzel_finds_its_tone_and_not_another():
    assert goertzel_ratio(tone(1004, 0.02), RATE, 1004) > 0.9
    assert goertzel_ratio(tone(440, 0.02), RATE, 1004) < 0.1
    assert goertzel_ratio([0] * 320, RATE, 1004) == 0.0


def test_analyse_tone_silence_noise():
    a = analyse(tone(1004, 2), RATE, 1004)
    assert a["nonsilent_share"] == 1.0 and a["tone_share"] > 0.95 and a["level_dbfs"] > -20
    s = analyse([0] * (2 * RATE), RATE, 1004)
    assert s["nonsilent_share"] == 0.0 and s["tone_share"] == 0.0
    n = analyse(noise(2), RATE, 1004)
    assert n["nonsilent_share"] == 1.0 and n["tone_share"] < 0.1


def test_analyse_excludes_spans_and_reports_after_marks():
    samples = tone(1004, 1) + [0] * RATE + tone(1004, 1)
    a = analyse(samples, RATE, 1004, start_s=0, exclude=[(1.0, 2.0)], marks={"resumed": 2.0})
    assert a["tone_share"] == pytest.approx(2 / 3, abs=0.02)
    assert a["tone_share_judged"] > 0.95 and a["tone_share_after_resumed"] > 0.95


def test_read_wav_of_a_recorder_still_open(tmp_path):
    """pjmedia fills the RIFF and data lengths in at close: a data length of 0 means "to the
    end of what is on disk"."""
    import struct

    data = struct.pack("<4h", 1, -2, 3, -4)
    fmt = struct.pack("<HHIIHH", 1, 1, 8000, 16000, 2, 16)
    raw = b"RIFF" + b"\0" * 4 + b"WAVE" + b"fmt " + struct.pack("<I", 16) + fmt + \
        b"data" + b"\0" * 4 + data
    path = tmp_path / "open.wav"
    path.write_bytes(raw)
    assert read_wav(str(path)) == ([1, -2, 3, -4], 8000)
    path.write_bytes(b"nope")
    with pytest.raises(ValueError):
        read_wav(str(path))


# -- the dialog's SIP ---------------------------------------------------------------------
def msg(direction: str, ts: float, text: str) -> SipMessage:
    return SipMessage(direction=direction, ts=ts, transport="udp", local=("192.0.2.1", 5060),
                      remote=("198.51.100.1", 5060), data=text.replace("\n", "\r\n"))


def response(status: str, cseq: str, *extra: str) -> str:
    return "\n".join([f"SIP/2.0 {status}", "Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1",
                      "From: <sip:a@x>;tag=1", "To: <sip:b@y>;tag=2", "Call-ID: c1",
                      f"CSeq: {cseq}", *extra, "Content-Length: 0", "", ""])


def request(method: str, cseq: int, *extra: str) -> str:
    return "\n".join([f"{method} sip:a@192.0.2.1 SIP/2.0",
                      "Via: SIP/2.0/UDP 198.51.100.1;branch=z9hG4bK2", "From: <sip:b@y>;tag=2",
                      "To: <sip:a@x>;tag=1", "Call-ID: c1", f"CSeq: {cseq} {method}", *extra,
                      "Content-Length: 0", "", ""])


def test_dialog_facts_of_a_lost_ack_and_the_32s_bye():
    ok = response("200 OK", "2 INVITE", "Allow: INVITE, ACK, BYE, INFO",
                  "Contact: <sip:pbx@10.1.2.3:5060>", "Session-Expires: 1800;refresher=uac")
    sip = [msg("in", 100.0, ok), msg("out", 100.01, request("ACK", 2)),
           msg("in", 100.5, ok), msg("in", 101.5, ok), msg("in", 103.5, ok),
           msg("in", 132.0, request("BYE", 1)), msg("out", 132.01, response("200 OK", "1 BYE"))]
    d = dialog_facts(sip)
    assert d["ok_count"] == 4 and d["far_bye_after_s"] == 32.0
    assert d["session_expires"] == 1800 and d["refresher"] == "uac"
    assert "INFO" in d["allow"] and d["in_dialog"] == []
    r = judge(answered(sip=sip), T)
    assert {"ack_not_received", "far_end_bye_near_32s"} <= set(r.verdicts)
    res = judge_audio(ctx(), r, "call")
    assert res.status == "fail" and "sent its 200 OK 4 times" in res.summary
    assert "the 200 OK's Contact <sip:pbx@10.1.2.3:5060>" in res.summary
    assert d["contact"] == "<sip:pbx@10.1.2.3:5060>" and d["record_route"] == []
    assert "32 s timeout" in res.summary and "Contact" in res.hint


def test_session_refreshes_handled_and_refused():
    ok = response("200 OK", "1 INVITE", "Session-Expires: 90;refresher=uas")
    handled = [msg("in", 10.0, ok), msg("in", 55.0, request("UPDATE", 5, "Session-Expires: 90")),
               msg("out", 55.01, response("200 OK", "5 UPDATE"))]
    d = dialog_facts(handled)
    assert d["in_dialog"] == [{"by": "far end", "method": "UPDATE", "at_s": 45.0, "status": 200,
                               "purpose": "refresh"}]
    assert d["refresher"] == "uas" and "session_refresh_failed" not in \
        judge(answered(sip=handled), T).verdicts
    refused = [msg("in", 10.0, ok), msg("out", 55.0, request("INVITE", 3, "x: 90")),
               msg("in", 55.01, response("481 Call Does Not Exist", "3 INVITE"))]
    r = judge(answered(sip=refused), T)
    assert r.dialog["in_dialog"][0]["by"] == "us" and "session_refresh_failed" in r.verdicts
    res = judge_audio(ctx(), r, "call")
    assert res.status == "fail" and "INVITE by us → 481" in res.summary


def with_sdp(text: str, direction: str) -> str:
    body = f"v=0\nm=audio 4000 RTP/AVP 0\na={direction}\n"
    return text.replace("Content-Length: 0\n\n", f"Content-Length: {len(body) + 3}\n\n" + body)


def test_a_hold_re_invite_is_no_session_refresh_and_its_2xx_no_retransmission():
    """pjsua puts Session-Expires in every re-INVITE once timers run: the SDP tells a hold
    and its resume from a refresh."""
    ok = response("200 OK", "1 INVITE")
    se = "Session-Expires: 1800"
    sip = [msg("in", 0.0, ok), msg("out", 30.0, with_sdp(request("INVITE", 2, se), "sendonly")),
           msg("in", 30.01, response("200 OK", "2 INVITE")),
           msg("out", 31.0, with_sdp(request("INVITE", 3, se), "sendrecv")),
           msg("in", 31.01, response("488 Not Acceptable Here", "3 INVITE")),
           msg("out", 40.0, request("UPDATE", 4, se)),
           msg("in", 40.01, response("200 OK", "4 UPDATE"))]
    r = judge(answered(sip=sip), T)
    assert r.dialog["ok_count"] == 1
    assert [(x["status"], x["purpose"]) for x in r.dialog["in_dialog"]] == \
        [(200, "hold"), (488, "resume"), (200, "refresh")]
    assert "session_refresh_failed" not in r.verdicts and "ack_not_received" not in r.verdicts


def test_a_bye_long_after_the_answer_is_not_the_ack_timeout():
    sip = [msg("in", 0.0, response("200 OK", "1 INVITE")), msg("in", 50.0, request("BYE", 9))]
    r = judge(answered(sip=sip), T)
    assert r.dialog["far_bye_after_s"] == 50.0 and "far_end_bye_near_32s" not in r.verdicts


def test_answer_codecs_in_the_far_ends_order():
    sdp = ("v=0\no=- 1 1 IN IP4 192.0.2.9\ns=-\nc=IN IP4 192.0.2.9\nt=0 0\n"
           "m=audio 4000 RTP/AVP 8 0 101\na=rtpmap:101 telephone-event/8000\n")
    head = response("200 OK", "1 INVITE", "Content-Type: application/sdp").replace(
        "Content-Length: 0", f"Content-Length: {len(sdp.replace(chr(10), chr(13) + chr(10)))}")
    r = answered(sip=[msg("in", 0.0, head + sdp)])
    assert answer_codecs(r) == ["PCMA/8000", "PCMU/8000"]  # telephone-event left out


# -- DTMF, latching, hold -------------------------------------------------------------------
def answered(**kw) -> CallResult:
    base = {"status": "answered", "code": 200, "codec": "PCMU/8000", "jbuf_delay_ms": 20,
            "remote_media": "192.0.2.9:4000", "rtp_source": "192.0.2.9:4000",
            "tx": Direction(packets=150, loss=None, loss_pct=None),
            "rx": Direction(packets=150, loss=0, loss_pct=0.0, jitter_ms_mean=1.0),
            "media_seconds": 3.0}
    return CallResult(**{**base, **kw})


def site(**check) -> Site:
    return Site.model_validate({
        "agent_uuid": "3c90c3cc-0d44-4b50-8888-8dd25736052a", "phone_number": "+902124439178",
        "registrar_server": "192.0.2.1", "username_extension": "100", "pbx_password": "pw-x",
        "allowed_ip": "192.0.2.2", "check": check})


def ctx(**check) -> CheckContext:
    return CheckContext.for_site(site(**check), RunOptions())


GOOD_AUDIO = {"windows": 100, "nonsilent_share": 1.0, "tone_share": 0.9,
              "tone_share_judged": 0.95, "tone_hz": 1004.0}


def test_digits_returned_in_order_whatever_comes_between():
    got = [{"digit": d} for d in "41x5x9#"]
    assert digits_returned({"sent": "159#", "received": got})
    assert not digits_returned({"sent": "159#", "received": [{"digit": "1"}]})
    assert not digits_returned({"sent": "", "received": got})


def test_dtmf_modes_and_severity():
    rfc = answered(dtmf={"sent": "159#", "method": "rfc4733", "telephone_event": True,
                         "received": [{"digit": d, "method": "rfc4733"} for d in "159#"]},
                   audio=GOOD_AUDIO)
    r = judge(rfc, T)
    assert r.verdicts == [] and dtmf_facts(r)["mode"] == "rfc4733" and dtmf_facts(r)["returned"]
    res = judge_audio(ctx(), r, "call", dtmf_role="inbound")
    assert res.status == "pass" and "DTMF 159# sent as RFC 4733, returned" in res.summary
    # not returned while our tone is: the path drops the events
    lost = judge(rfc.model_copy(update={"dtmf": {**rfc.dtmf, "received": []}}), T)
    assert lost.verdicts == ["dtmf_not_returned"]
    assert judge_audio(ctx(), lost, "call").status == "warn"
    # no telephone-event: SIP INFO when the far end allows it, else in-band only
    info = judge(answered(dtmf={"sent": "159#", "method": "sip_info", "telephone_event": False,
                                "info_codes": [200]},
                          sip=[msg("in", 0, response("200 OK", "1 INVITE", "Allow: INVITE, INFO"))]),
                 T)
    assert "dtmf_not_negotiated" in info.verdicts and dtmf_facts(info)["mode"] == "sip_info"
    inband = judge(answered(dtmf={"sent": "159#", "method": None, "telephone_event": False},
                            sip=[msg("in", 0, response("200 OK", "1 INVITE", "Allow: INVITE"))]),
                   T)
    assert dtmf_facts(inband)["mode"] == "inband_only"
    res = judge_audio(ctx(), inband, "call", dtmf_role="inbound")
    assert res.status == "fail" and "in-band tones only" in res.summary
    assert "the agent cannot hear key presses" in res.summary
    assert judge_audio(ctx(), inband, "call", dtmf_role="outbound").status == "warn"
    assert judge_audio(ctx(dtmf="required"), inband, "call", dtmf_role="outbound").status == "fail"
    assert judge_audio(ctx(dtmf="optional"), inband, "call", dtmf_role="inbound").status == "warn"


def test_dtmf_severity_table():
    assert dtmf_severity(site(), "inbound") == "fail"
    assert dtmf_severity(site(), "outbound") == "warn"
    assert dtmf_severity(site(dtmf="required"), "outbound") == "fail"
    assert dtmf_severity(site(dtmf="optional"), "inbound") == "warn"
    assert dtmf_severity(None, "inbound") == "fail"  # a probe: no site, the default policy


def test_audio_verdicts():
    silent = judge(answered(audio={**GOOD_AUDIO, "nonsilent_share": 0.02,
                                   "tone_share_judged": 0.0}), T)
    assert silent.verdicts == ["audio_silent"]
    res = judge_audio(ctx(), silent, "call")
    assert res.status == "fail" and "silence" in res.summary and "transcoder" in res.hint
    other = judge(answered(audio={**GOOD_AUDIO, "tone_share_judged": 0.05}), T)
    assert other.verdicts == ["audio_not_our_signal"]
    assert judge_audio(ctx(), other, "call").status == "warn"
    # no RTP at all: one-way audio decides, not the audio analysis
    none = judge(answered(rx=Direction(), audio={**GOOD_AUDIO, "nonsilent_share": 0.0}), T)
    assert none.verdicts == ["one_way_audio"]


def test_latching_warn_whatever_the_address_kinds():
    assert latched("10.0.0.5:4000", "203.0.113.7:31000")
    assert latched("192.0.2.9:4000", "192.0.2.9:4002")  # same host, other port
    assert not latched("192.0.2.9:4000", "192.0.2.9:4000") and not latched("1.2.3.4:5", None)
    r = judge(answered(remote_media="10.0.0.5:4000", rtp_source="10.0.0.6:4000"), T)
    assert r.verdicts == ["rtp_source_differs_from_sdp"]  # private both: still said
    res = judge_audio(ctx(), r, "call")
    assert res.status == "warn" and "latches" in res.summary and "10.0.0.6:4000" in res.summary


def test_hold_verdicts():
    ok = {"hold_ok": True, "hold_code": 200, "resume_ok": True, "resume_code": 200,
          "rx_at_resume": 10, "rx_end": 30}
    r = judge(answered(hold=ok), T)
    assert r.verdicts == [] and "hold/resume OK" in judge_audio(ctx(), r, "call").summary
    refused = judge(answered(hold={**ok, "hold_ok": False, "hold_code": 488}), T)
    assert refused.verdicts == ["hold_resume_failed"]
    res = judge_audio(ctx(), refused, "call")
    assert res.status == "warn" and "the hold re-INVITE got 488" in res.summary
    stuck = judge(answered(hold={**ok, "rx_end": 10}), T)
    assert "media did not resume" in judge_audio(ctx(), stuck, "call").summary


def test_extra_findings_decide_with_the_call():
    r = judge(answered(), T)
    limit = {"key": "concurrent", "status": "fail", "summary": "only 2 of 3", "hint": "raise",
             "details": {"connected": 2}}
    res = judge_audio(ctx(), r, "call", extra_findings=[limit])
    assert res.status == "fail" and "only 2 of 3" in res.summary and res.hint == "raise"
    assert res.details["concurrent"] == {"connected": 2}
    good = {**limit, "status": "pass", "summary": "3 simultaneous calls connected"}
    assert judge_audio(ctx(), r, "call", extra_findings=[good]).status == "pass"


def test_strip_telephone_event():
    sdp = ("v=0\r\nm=audio 4000 RTP/AVP 0 8 101 121\r\na=rtpmap:0 PCMU/8000\r\n"
           "a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\n"
           "a=rtpmap:121 telephone-event/16000\r\na=sendrecv\r\n")
    out = strip_telephone_event(sdp)
    assert "m=audio 4000 RTP/AVP 0 8\r\n" in out and "telephone-event" not in out
    assert "fmtp:101" not in out and "a=sendrecv" in out
    assert strip_telephone_event("v=0\r\nm=audio 1 RTP/AVP 0\r\n") == "v=0\r\nm=audio 1 RTP/AVP 0\r\n"
