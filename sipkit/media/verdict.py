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
"""

from __future__ import annotations

from ..net.addresses import address_kind, parse_ip
from ..sip.errors import SipParseError
from ..sip.message import Request, Response, parse
from .model import (
    BYE_UNANSWERED,
    JITTER_HIGH,
    LOSS_HIGH,
    MOS_LOW,
    NO_AUDIO,
    ONE_WAY_AUDIO,
    PRIVATE_SDP,
    VERDICTS,
    CallResult,
    SipMessage,
    Thresholds,
)
from .mos import impairment, mos, one_way_delay

PACKET_MS = 20.0  # pjmedia's default ptime


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


def bye_unanswered(sip: list[SipMessage]) -> bool:
    """A BYE we sent that no final response answered (its CSeq never came back >= 200)."""
    sent, answered = set(), set()
    for m in sip:
        try:
            msg = parse(m.data.encode("latin-1"))
            number, method = msg.cseq
        except SipParseError:
            continue
        if method != "BYE":
            continue
        if m.direction == "out" and isinstance(msg, Request):
            sent.add(number)
        elif m.direction == "in" and isinstance(msg, Response) and msg.status >= 200:
            answered.add(number)
    return bool(sent - answered)


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
    r.verdicts = [v for v in VERDICTS if v in found]
    return r
