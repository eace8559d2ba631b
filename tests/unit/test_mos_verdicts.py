"""Audio verdicts and MOS on a call's raw numbers (sipkit.media.verdict), and what goes to
the worker (sipkit.media.call.worker_input): pure, no pjsua2, no sockets."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from sipkit.media.call import signalling_ip_of, worker_input
from sipkit.media.model import CallParams, CallResult, Direction, SipMessage, Thresholds
from sipkit.media.verdict import host_of, judge, private_sdp

T = Thresholds()


def answered(tx=150, rx=150, rx_loss=0, **kw) -> CallResult:
    total = rx + rx_loss
    base = {"status": "answered", "code": 200, "codec": "PCMU/8000",
            "remote_media": "8.8.4.4:40000", "signalling_ip": "8.8.8.8",  # public, no traffic
            "jbuf_delay_ms": 20,
            "tx": Direction(packets=tx, loss=None, loss_pct=None),
            "rx": Direction(packets=rx, loss=rx_loss,
                            loss_pct=round(100 * rx_loss / total, 2) if total else 0.0,
                            jitter_ms_mean=1.0 if rx else None)}
    return CallResult(**{**base, **kw})


def test_clean_call_has_no_verdict_and_a_high_mos():
    r = judge(answered(), T)
    assert r.verdicts == [] and r.mos == pytest.approx(4.39, abs=0.01)
    assert r.mos_inputs["codec"] == "PCMU" and r.mos_inputs["delay_from_rtcp"] is False
    assert r.two_way_audio


def test_judge_does_not_change_its_input():
    raw = answered(rx=0)
    judge(raw, T)
    assert raw.verdicts == [] and raw.mos is None


def test_one_way_audio_nothing_comes_back():
    r = judge(answered(rx=0), T)
    assert r.verdicts == ["one_way_audio"] and r.one_way_missing == "rx" and r.mos is None
    assert not r.two_way_audio


def test_one_way_audio_we_never_sent():
    r = judge(answered(tx=0), T)
    assert r.verdicts == ["one_way_audio"] and r.one_way_missing == "tx" and r.mos is not None


def test_no_audio():
    r = judge(answered(tx=0, rx=0), T)
    assert r.verdicts == ["no_audio"] and r.one_way_missing is None and r.mos is None


def test_loss_lowers_mos_and_crosses_thresholds():
    r = judge(answered(rx=135, rx_loss=15), T)  # 10 %
    assert r.verdicts == ["loss_high", "mos_low"] and r.mos < 3.6
    lenient = Thresholds(max_loss_pct=20, min_mos=1.0)
    assert judge(r, lenient).verdicts == []  # judged afresh, not accumulated


def test_loss_just_under_the_threshold_passes():
    r = judge(answered(rx=1000, rx_loss=9), T)  # 0.89 %
    assert "loss_high" not in r.verdicts and r.mos > 4.0


def test_tx_loss_counts_only_when_rtcp_reported_it():
    r = answered(rtcp_reports=3)
    r.tx = Direction(packets=150, loss=5, loss_pct=3.2)
    assert judge(r, T).verdicts == ["loss_high"]


def test_jitter_threshold():
    r = answered()
    r.rx.jitter_ms_mean = 45.0
    assert judge(r, T).verdicts == ["jitter_high"]
    assert judge(r, Thresholds(max_jitter_ms=50)).verdicts == []


def test_rtt_feeds_the_delay():
    near = judge(answered(), T)
    far = judge(answered(rtt_ms=600), T)
    assert far.mos < near.mos and far.mos_inputs["one_way_delay_ms"] == 300 + 20 + 20
    assert far.mos_inputs["delay_from_rtcp"] is True


@pytest.mark.parametrize("sdp,sig,flagged", [
    ("192.168.1.20:4000", "9.9.9.9", True),  # PBX behind NAT, no external address
    ("192.168.1.20:4000", "198.51.100.20", False),  # documentation address: not public
    ("10.0.0.5:4000", "8.8.8.8", True),
    ("100.64.1.1:4000", "8.8.8.8", True),  # carrier-grade NAT
    ("127.0.0.1:4000", "8.8.8.8", True),
    ("8.8.4.4:4000", "8.8.8.8", False),  # public both
    ("192.168.1.20:4000", "192.168.1.1", False),  # a LAN call: private both, fine
    ("192.168.1.20:4000", None, False),  # signalling address unknown
    (None, "8.8.8.8", False),
    ("[fd00::5]:4000", "2001:4860:4860::8888", True),
])
def test_private_sdp_while_public_signalling(sdp, sig, flagged):
    assert private_sdp(sdp, sig) is flagged
    r = judge(answered(remote_media=sdp, signalling_ip=sig), T)
    assert ("private_sdp_c_while_public_signalling" in r.verdicts) is flagged


def _msg(direction: str, first: str, cseq: str) -> SipMessage:
    data = (f"{first}\r\nVia: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK{cseq[:3]}\r\n"
            f"Call-ID: c1\r\nCSeq: {cseq}\r\nContent-Length: 0\r\n\r\n")
    return SipMessage(direction=direction, ts=1.0, transport="udp", local=("192.0.2.1", 5060),
                      remote=("8.8.8.8", 5060), data=data)


@pytest.mark.parametrize("answers, flagged", [
    ([], True),  # sent (twice: a retransmission), never answered
    ([("in", "SIP/2.0 100 Trying", "5 BYE")], True),  # a provisional is not an answer
    ([("in", "SIP/2.0 200 OK", "4 INVITE")], True),  # another transaction's answer
    ([("in", "SIP/2.0 200 OK", "5 BYE")], False),
    ([("in", "SIP/2.0 481 Call/Transaction Does Not Exist", "5 BYE")], False),  # answered
])
def test_bye_unanswered(answers, flagged):
    bye = _msg("out", "BYE sip:200@8.8.8.8 SIP/2.0", "5 BYE")
    sip = [_msg("out", "INVITE sip:200@8.8.8.8 SIP/2.0", "4 INVITE"), bye, bye,
           *(_msg(*a) for a in answers), _msg("in", "garbage", "x")]
    r = judge(answered(sip=sip), T)
    assert ("bye_unanswered" in r.verdicts) is flagged
    assert r.mos is not None  # media is judged as before


def test_not_answered_is_left_alone():
    r = CallResult(status="rejected", code=486, reason="Busy Here")
    assert judge(r, T) == r


def test_host_of():
    assert host_of("1.2.3.4:5") == "1.2.3.4" and host_of("[::1]:5") == "::1"
    assert host_of(None) is None and host_of("::1") == "::1"


# -- parameters ------------------------------------------------------------------------

def test_password_only_in_the_worker_input():
    p = CallParams(target="sip:echo@127.0.0.1", registrar="sip:127.0.0.1", username="100",
                   password="Pw-In-Stdin-Only-1")
    assert "Pw-In-Stdin-Only-1" not in repr(p) + str(p) + p.model_dump_json()
    data = json.loads(worker_input(p))
    assert data["password"] == "Pw-In-Stdin-Only-1" and "thresholds" not in data


@pytest.mark.parametrize("transport,target,expect", [
    ("udp", "sip:a@1.2.3.4", "sip:a@1.2.3.4"),
    ("tls", "sip:a@1.2.3.4:5061", "sip:a@1.2.3.4:5061;transport=tls"),
    ("tcp", "sip:a@1.2.3.4", "sip:a@1.2.3.4;transport=tcp"),
    ("tls", "sip:a@1.2.3.4;transport=tls", "sip:a@1.2.3.4;transport=tls"),
    ("tls", "sips:a@1.2.3.4", "sips:a@1.2.3.4"),
])
def test_transport_is_made_explicit(transport, target, expect):
    # an account bound to TLS sending an ACK over UDP is pjsip's "Unable to send ACK!" abort
    data = json.loads(worker_input(CallParams(target=target, transport=transport)))
    assert data["target"] == expect


def test_proxy_becomes_a_loose_route():
    data = json.loads(worker_input(CallParams(target="sip:a@example.com", transport="tcp",
                                              proxy="sip:192.0.2.1:5060")))
    assert data["proxy"] == "sip:192.0.2.1:5060;transport=tcp;lr"


def test_signalling_ip():
    assert signalling_ip_of(CallParams(target="sip:a@198.51.100.1:5060")) == "198.51.100.1"
    assert signalling_ip_of(CallParams(target="sip:a@pbx.example.com",
                                       proxy="sip:[2001:db8::1];lr")) == "2001:db8::1"
    assert signalling_ip_of(CallParams(target="sip:a@pbx.example.com")) is None


@pytest.mark.parametrize("kw,field", [
    ({"target": "echo@1.2.3.4"}, "target"),
    ({"target": "tel:+123"}, "target"),
    ({"target": "sip:a@1.2.3.4", "local_ip": "localhost"}, "local_ip"),
    ({"target": "sip:a@1.2.3.4", "transport": "sctp"}, "transport"),
    ({"target": "sip:a@1.2.3.4", "seconds": 0}, "seconds"),
    ({"target": "sip:a@1.2.3.4", "codecs": ["PC MU"]}, "codecs"),
    ({"target": "sip:a@1.2.3.4", "registrar": "pbx"}, "registrar"),
    ({"target": "sip:a@1.2.3.4", "thresholds": {"min_mos": 5}}, "min_mos"),
])
def test_bad_params_name_the_field(kw, field):
    with pytest.raises(ValidationError) as exc:
        CallParams(**kw)
    assert field in str(exc.value)


def test_defaults_documented():
    t = Thresholds()
    assert (t.max_loss_pct, t.max_jitter_ms, t.min_mos) == (1.0, 30.0, 3.6)
    p = CallParams(target="sip:a@1.2.3.4")
    assert p.verify_tls is True and p.transport == "udp" and p.thresholds == t
