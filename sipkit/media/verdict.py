"""From an answered call's raw numbers to a MOS and verdicts (pure, no pjsua2).

Verdicts (``sipkit.media.model``), for answered calls only:

- ``no_audio``: no RTP sent and none received.
- ``one_way_audio``: RTP one way only; ``one_way_missing`` is "rx" (we send, nothing comes
  back: the far end's RTP does not reach us) or "tx" (we never sent).
- ``private_sdp_c_while_public_signalling``: the far end's SDP puts its media on a private,
  CGNAT, loopback or otherwise non-routable address while we reached it on a public one
  (a far end behind NAT that does not know its external address).
- ``loss_high``: loss above ``max_loss_pct`` in either direction we can measure (what we
  receive; what we send only when the far end sends RTCP receiver reports).
- ``jitter_high``: mean interarrival jitter (RFC 3550 §6.4.1) above ``max_jitter_ms``.
- ``mos_low``: the E-model MOS of what we hear below ``min_mos``.
- ``bye_unanswered``: our BYE got no final answer while the worker hung up and un-registered
  (RFC 3261 §15.1.2: the far end must answer it). Media was fine, but the far end may keep the
  call, and a channel, up until its session timer.
- ``ack_not_received``: the far end sent its 2xx to our INVITE more than once. A UAS
  retransmits the 2xx until the ACK arrives (RFC 3261 §13.3.1.4), so ours never did: the ACK
  goes where the 2xx's Contact / Record-Route point, and that is not reachable from here.
- ``far_end_bye_near_32s``: the far end hung up 28–36 s after its 2xx: the 64·T1 timer of a UAS
  that never got the ACK (§13.3.1.4 again: it must then end the session with a BYE).
- ``session_refresh_failed``: a session refresh (re-INVITE or UPDATE, RFC 4028 §7/§8) got an
  error, from either side: the far end will end the call when the session expires.
- ``audio_silent`` / ``audio_not_our_signal``: with a test tone, the RTP that came back held
  silence, or sound that is not the tone (sipkit.media.audio; judged after hold and DTMF gaps).
- ``rtp_source_differs_from_sdp``: the far end's RTP came from another address or port than
  its SDP names: the call works only because this side latches on to the source (symmetric
  RTP); a peer that does not would send its audio into the void.
- ``dtmf_not_negotiated``: the answer has no telephone-event (RFC 4733): key presses cannot
  travel as events; ``dialog.allow`` tells whether SIP INFO is left, else in-band only.
- ``dtmf_not_returned``: the echo returned our tone but not our RFC 4733 digits.
- ``hold_resume_failed``: the hold or resume re-INVITE was refused, or media did not resume.
"""

from __future__ import annotations

from ..net.addresses import address_kind, parse_ip
from ..sip.errors import SipParseError
from ..sip.message import Request, Response, parse
from .model import (
    ACK_LOST,
    AUDIO_NOT_SIGNAL,
    AUDIO_SILENT,
    BYE_AT_32S,
    BYE_UNANSWERED,
    DTMF_NOT_NEGOTIATED,
    DTMF_NOT_RETURNED,
    HOLD_FAILED,
    JITTER_HIGH,
    LOSS_HIGH,
    MEDIA_LATCHED,
    MOS_LOW,
    NO_AUDIO,
    ONE_WAY_AUDIO,
    PRIVATE_SDP,
    SESSION_REFRESH_FAILED,
    VERDICTS,
    CallResult,
    SipMessage,
    Thresholds,
)
from .mos import impairment, mos, one_way_delay

PACKET_MS = 20.0  # pjmedia's default ptime
T1_TIMEOUT_S = (28.0, 36.0)  # 64·T1 = 32 s after the 2xx (RFC 3261 §13.3.1.4), with slack
MIN_NONSILENT = 0.2  # of the judged windows (sipkit.media.audio)
MIN_TONE = 0.5


def host_of(hostport: str | None) -> str | None:
    """'1.2.3.4:5' -> '1.2.3.4', '[::1]:5' -> '::1'."""
    if not hostport:
        return None
    if hostport.startswith("["):
        return hostport[1:].partition("]")[0]
    return hostport.rsplit(":", 1)[0] if hostport.count(":") == 1 else hostport


def private_sdp(remote_media: str | None, signalling_ip: str | None) -> bool:
    media_ip = host_of(remote_media)
    if not media_ip or not signalling_ip or parse_ip(signalling_ip) is None:
        return False
    public_signalling = address_kind(signalling_ip) is None
    return public_signalling and parse_ip(media_ip) is not None and \
        address_kind(media_ip) is not None


def _parsed(sip: list[SipMessage]):
    """(message, parsed, CSeq number, CSeq method) of each message that parses."""
    for m in sip:
        try:
            msg = parse(m.data.encode("latin-1"))
            number, method = msg.cseq
        except SipParseError:
            continue
        yield m, msg, number, method


def bye_unanswered(sip: list[SipMessage]) -> bool:
    """A BYE we sent that no final response answered (its CSeq never came back >= 200)."""
    sent, answered = set(), set()
    for m, msg, number, method in _parsed(sip):
        if method != "BYE":
            continue
        if m.direction == "out" and isinstance(msg, Request):
            sent.add(number)
        elif m.direction == "in" and isinstance(msg, Response) and msg.status >= 200:
            answered.add(number)
    return bool(sent - answered)


def _purpose(msg: Request, was_held: bool) -> str:
    """What an in-dialog re-INVITE or UPDATE is for: "hold" (its SDP says sendonly or
    inactive, RFC 3264 §8.4), "resume" (the next offer with SDP from the side that held),
    "refresh" (RFC 4028 §7.4/§8.1: it carries Session-Expires), else "offer"."""
    body = msg.body.decode("latin-1", "replace") if msg.body else ""
    if "a=sendonly" in body or "a=inactive" in body:
        return "hold"
    if was_held and body:
        return "resume"
    if msg.headers.get("Session-Expires") or msg.headers.get("x"):
        return "refresh"
    return "offer"


def dialog_facts(sip: list[SipMessage]) -> dict:
    """What the call's SIP says about the dialog: how often the 2xx to our INVITE came, who
    sent a BYE when (seconds after the first 2xx), the session timer the far end agreed to
    (RFC 4028 §9: Session-Expires in the 2xx), and each in-dialog re-INVITE or UPDATE (hold,
    resume, session refresh) with its final answer."""
    first_2xx = None  # (CSeq number, wall time)
    out: dict = {"ok_count": 0, "far_bye_after_s": None, "contact": None, "record_route": [],
                 "allow": None, "session_expires": None,
                 "refresher": None, "in_dialog": []}
    requests: dict[tuple[str, int, str], dict] = {}  # (direction, cseq, method) -> request
    held: dict[str, bool] = {}  # by whom: its last offer put the call on hold
    for m, msg, number, method in _parsed(sip):
        if isinstance(msg, Response) and method == "INVITE" and m.direction == "in" \
                and 200 <= msg.status < 300:
            if first_2xx is None:
                first_2xx = (number, m.ts)
                # where our ACK and later requests go (RFC 3261 §12.1.2): the route set, then
                # the Contact
                out["contact"] = msg.headers.get("Contact") or msg.headers.get("m")
                out["record_route"] = msg.headers.get_all("Record-Route")[:5]
                allow = msg.headers.get("Allow")
                out["allow"] = [a.strip().upper() for a in allow.split(",")] if allow else None
                se = msg.headers.get("Session-Expires") or msg.headers.get("x") or ""
                value, _, rest = se.partition(";")
                if value.strip().isdigit():
                    out["session_expires"] = int(value)
                    out["refresher"] = "uas" if "refresher=uas" in rest else \
                        "uac" if "refresher=uac" in rest else None
            if number == first_2xx[0]:
                out["ok_count"] += 1
                continue
        if first_2xx is None:
            continue
        at = round(m.ts - first_2xx[1], 2)
        if isinstance(msg, Request) and method == "BYE" and m.direction == "in" \
                and out["far_bye_after_s"] is None:
            out["far_bye_after_s"] = at
        elif isinstance(msg, Request) and method in ("INVITE", "UPDATE") \
                and number != first_2xx[0]:
            by = "far end" if m.direction == "in" else "us"
            key = (m.direction, number, method)
            if key not in requests:
                requests[key] = {"by": by, "method": method, "at_s": at, "status": None,
                                 "purpose": _purpose(msg, held.get(by, False))}
                held[by] = requests[key]["purpose"] == "hold"
        elif isinstance(msg, Response) and msg.status >= 200:
            asked = "out" if m.direction == "in" else "in"
            refresh = requests.get((asked, number, method))
            if refresh is not None and refresh["status"] is None:
                refresh["status"] = msg.status
    out["in_dialog"] = list(requests.values())[:20]
    return out


def digits_returned(dtmf: dict) -> bool:
    """Our digits came back in order (an echo), whatever else arrived between them."""
    got = iter(d["digit"] for d in dtmf.get("received") or [])
    return bool(dtmf.get("sent")) and all(any(g == c for g in got) for c in dtmf["sent"])


def _audio_verdict(audio: dict | None) -> str | None:
    if not audio or audio.get("error") or not audio.get("windows"):
        return None
    if audio["nonsilent_share"] < MIN_NONSILENT:
        return AUDIO_SILENT
    share = audio.get("tone_share_judged", audio.get("tone_share"))
    if share is not None and share < MIN_TONE:
        return AUDIO_NOT_SIGNAL
    return None


def _hold_failed(hold: dict | None) -> bool:
    if not hold:
        return False
    resumed = hold.get("rx_end", 0) > hold.get("rx_at_resume", 0)
    return not (hold.get("hold_ok") and hold.get("resume_ok") and resumed)


def latched(remote_media: str | None, rtp_source: str | None) -> bool:
    """The far end's RTP came from another address:port than its SDP names."""
    return bool(remote_media and rtp_source) and remote_media != rtp_source


def judge(result: CallResult, thresholds: Thresholds) -> CallResult:
    """A copy of ``result`` with ``mos``, ``mos_inputs``, ``one_way_missing`` and the
    verdicts computed afresh (so a stored result can be judged again with other
    thresholds). Calls that were not answered come back unchanged."""
    if result.status != "answered":
        return result
    r = result.model_copy(deep=True)
    r.mos = r.mos_inputs = r.one_way_missing = None
    found: set[str] = set()
    tx, rx = r.tx.packets, r.rx.packets
    if tx == 0 and rx == 0:
        found.add(NO_AUDIO)
    elif rx == 0 or tx == 0:
        found.add(ONE_WAY_AUDIO)
        r.one_way_missing = "rx" if rx == 0 else "tx"
    if rx:
        delay = one_way_delay(r.rtt_ms, r.jbuf_delay_ms, PACKET_MS)
        loss = r.rx.loss_pct or 0.0
        name, imp = impairment(r.codec)
        r.mos = mos(delay, loss, r.codec)
        r.mos_inputs = {"one_way_delay_ms": round(delay, 1), "loss_pct": loss, "codec": name,
                        "ie": imp.ie, "bpl": imp.bpl, "codec_source": imp.source,
                        "delay_from_rtcp": r.rtt_ms is not None}
        if r.mos < thresholds.min_mos:
            found.add(MOS_LOW)
    losses = [d.loss_pct for d in (r.rx, r.tx) if d.packets and d.loss_pct is not None]
    if any(pct > thresholds.max_loss_pct for pct in losses):
        found.add(LOSS_HIGH)
    jitters = [d.jitter_ms_mean for d in (r.rx, r.tx) if d.jitter_ms_mean is not None]
    if any(j > thresholds.max_jitter_ms for j in jitters):
        found.add(JITTER_HIGH)
    if private_sdp(r.remote_media, r.signalling_ip):
        found.add(PRIVATE_SDP)
    if bye_unanswered(r.sip):
        found.add(BYE_UNANSWERED)
    if r.sip:
        r.dialog = dialog_facts(r.sip)
    d = r.dialog or {}
    if d.get("ok_count", 0) > 1:
        found.add(ACK_LOST)
    bye_at = d.get("far_bye_after_s")
    if bye_at is not None and T1_TIMEOUT_S[0] <= bye_at <= T1_TIMEOUT_S[1]:
        found.add(BYE_AT_32S)
    if any((x["status"] or 0) >= 300 and x["purpose"] == "refresh"
           for x in d.get("in_dialog", [])):
        found.add(SESSION_REFRESH_FAILED)
    if rx and (v := _audio_verdict(r.audio)):
        found.add(v)
    if latched(r.remote_media, r.rtp_source):
        found.add(MEDIA_LATCHED)
    if r.dtmf is not None:
        if not r.dtmf.get("telephone_event"):
            found.add(DTMF_NOT_NEGOTIATED)
        elif r.dtmf.get("method") == "rfc4733" and not digits_returned(r.dtmf) \
                and r.audio and _audio_verdict(r.audio) is None:
            found.add(DTMF_NOT_RETURNED)
    if _hold_failed(r.hold):
        found.add(HOLD_FAILED)
    r.verdicts = [v for v in VERDICTS if v in found]
    return r
