"""What a test call is asked to do (``CallParams``) and what it found (``CallResult``).

The password is a ``SecretStr`` here; it is revealed only into the worker's stdin
(``sipkit.media.call.worker_input``) and never appears in a result, a log or an error.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from ..net.addresses import parse_ip
from ..sip.errors import SipParseError
from ..sip.uri import SipUri

Status = Literal["answered", "rejected", "no_answer", "error"]

# Verdicts a CallResult can carry (``CallResult.verdicts``), worst first.
NO_AUDIO = "no_audio"  # answered, no RTP either way
ONE_WAY_AUDIO = "one_way_audio"  # RTP one way only; ``one_way_missing`` says which
PRIVATE_SDP = "private_sdp_c_while_public_signalling"
LOSS_HIGH = "loss_high"
JITTER_HIGH = "jitter_high"
MOS_LOW = "mos_low"
BYE_UNANSWERED = "bye_unanswered"  # our BYE got no final answer: the far end may keep the call
# What the call checks add (sipkit.media.verdict says when each applies)
ACK_LOST = "ack_not_received"  # the far end kept retransmitting its 2xx: our ACK never got there
BYE_AT_32S = "far_end_bye_near_32s"  # the far end hung up ~64·T1 after its 2xx
SESSION_REFRESH_FAILED = "session_refresh_failed"  # an RFC 4028 refresh was refused
AUDIO_SILENT = "audio_silent"  # RTP arrives but carries silence
AUDIO_NOT_SIGNAL = "audio_not_our_signal"  # RTP carries sound, but not the tone we sent
MEDIA_LATCHED = "rtp_source_differs_from_sdp"  # RTP comes from elsewhere than the SDP says
DTMF_NOT_NEGOTIATED = "dtmf_not_negotiated"  # no telephone-event in the answer
DTMF_NOT_RETURNED = "dtmf_not_returned"  # the echo returns audio, not the RFC 4733 digits
HOLD_FAILED = "hold_resume_failed"  # a hold or resume re-INVITE failed or media did not resume
VERDICTS = (NO_AUDIO, ONE_WAY_AUDIO, ACK_LOST, BYE_AT_32S, SESSION_REFRESH_FAILED, AUDIO_SILENT,
            AUDIO_NOT_SIGNAL, HOLD_FAILED, DTMF_NOT_NEGOTIATED, DTMF_NOT_RETURNED, PRIVATE_SDP,
            MEDIA_LATCHED, LOSS_HIGH, JITTER_HIGH, MOS_LOW, BYE_UNANSWERED)


class Thresholds(BaseModel):
    """When an answered call's audio counts as bad. Defaults (Microsoft Teams' network
    targets, research/anchors.md §4b): loss < 1 %, jitter < 30 ms, MOS ≥ 3.6."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_loss_pct: float = Field(default=1.0, ge=0, le=100)
    max_jitter_ms: float = Field(default=30.0, ge=0)
    min_mos: float = Field(default=3.6, ge=1, le=4.5)


def _sip_uri(value: str, what: str) -> str:
    try:
        uri = SipUri.parse(value)
    except SipParseError:
        raise ValueError(f"{what} must be a SIP URI like sip:user@host:port") from None
    if uri.scheme == "tel":
        raise ValueError(f"{what} must be a sip: or sips: URI")
    return value


class CallParams(BaseModel):
    """One test call. URIs are SIP URIs; ``transport`` is added to them when they lack it
    (an account bound to TLS must not send an ACK over UDP: lab.md §1, the ACK assertion)."""

    model_config = ConfigDict(extra="forbid")

    target: str  # whom to call, e.g. sip:+902124439178@203.0.113.5:5060
    transport: Literal["udp", "tcp", "tls"] = "udp"
    local_ip: str = "127.0.0.1"  # SIP and RTP bind here, and SDP advertises it
    from_uri: str | None = None  # our identity; default sip:sipkit@local_ip
    registrar: str | None = None  # register first (realm "*": answer any challenge)
    username: str | None = None
    password: SecretStr | None = None
    proxy: str | None = None  # outbound proxy (sent as a loose route, ;lr)
    verify_tls: bool = True
    ca_file: str | None = None
    seconds: float = Field(default=3.0, gt=0, le=600)  # media time after the answer
    setup_timeout: float = Field(default=10.0, gt=0, le=120)  # to the final answer
    codecs: list[str] = Field(default_factory=list)  # preference, e.g. ["PCMA", "PCMU"]
    # Answer mode: register, then wait up to wait_timeout for one incoming call and answer it
    # (``target`` is then our own address of record, for the record).
    answer: bool = False
    wait_timeout: float = Field(default=20.0, gt=0, le=120)
    thresholds: Thresholds = Field(default_factory=Thresholds)
    # What the call does besides sending silence (all off by default: a plain call)
    tone_hz: float | None = Field(default=None, gt=100, lt=3400)  # send it, analyse the return
    dtmf: str | None = Field(default=None, pattern=r"^[0-9*#A-D]{1,16}$")  # digits to send
    hold: bool = False  # re-INVITE to sendonly at 80 % of ``seconds``, back at 90 %
    # tests only: "abort" | "abort_after_answer" (die like a pjsip assertion), "hang",
    # "tx_drop_pct=N" (pjmedia drops N % of what we send: simulated loss)
    test_hook: str | None = Field(default=None, repr=False)

    @field_validator("target", "registrar", "proxy", "from_uri")
    @classmethod
    def _uris(cls, v: str | None, info) -> str | None:
        return None if v is None else _sip_uri(v, info.field_name)

    @field_validator("local_ip")
    @classmethod
    def _ip(cls, v: str) -> str:
        if parse_ip(v) is None:
            raise ValueError("must be an IP address of this machine")
        return v

    @field_validator("codecs")
    @classmethod
    def _codecs(cls, v: list[str]) -> list[str]:
        if not all(c and c.replace("/", "").replace("-", "").isalnum() for c in v):
            raise ValueError("codec names look like PCMU, PCMA, G722, opus")
        return v


class Direction(BaseModel):
    """RTP one way. For what we send, loss and jitter come from the far end's RTCP receiver
    reports; without them they are None (unknown), not zero."""

    packets: int = 0
    bytes: int = 0
    loss: int | None = 0
    loss_pct: float | None = 0.0
    jitter_ms_mean: float | None = None
    jitter_ms_max: float | None = None


class SipMessage(BaseModel):
    """One SIP message the call sent or received, from pjsua's message log: the call's part of
    the ladder and of ``--pcap``. Kept out of dumps (``exclude``): reports carry it as
    redacted evidence only."""

    direction: Literal["out", "in"]
    ts: float  # wall clock
    transport: Literal["udp", "tcp", "tls"]
    local: tuple[str, int]
    remote: tuple[str, int]
    data: str  # the bytes, latin-1

    def tap_args(self) -> tuple:
        """The arguments of a transport tap (sipkit.net.transport)."""
        return (self.direction, self.data.encode("latin-1"), self.local, self.remote,
                self.transport, self.ts)


class CallResult(BaseModel):
    status: Status
    code: int | None = None  # the INVITE's final status (pjsip's own 408/503 when no peer answered)
    reason: str | None = None
    response_received: bool = False  # any SIP response to the INVITE came from the network
    registration: int | None = None  # REGISTER final code when the call registered first
    registration_reason: str | None = None
    provisional_ms: float | None = None  # INVITE -> first 1xx
    answer_ms: float | None = None  # INVITE -> 2xx
    codec: str | None = None  # e.g. PCMU/8000
    local_media: str | None = None  # our RTP address (ip:port)
    remote_media: str | None = None  # the far end's RTP address from its SDP (c= and m=)
    rtp_source: str | None = None  # where the far end's RTP actually came from
    signalling_peer: str | None = None  # ip:port the INVITE's responses came from
    signalling_ip: str | None = None  # the address we sent SIP to, when known
    tx: Direction = Field(default_factory=Direction)  # we send
    rx: Direction = Field(default_factory=Direction)  # we receive
    rtcp_reports: int = 0  # RTCP receiver reports from the far end
    rtt_ms: float | None = None  # from RTCP (RFC 3550 §6.4.1 LSR/DLSR); None without it
    jbuf_delay_ms: float | None = None
    media_seconds: float = 0.0
    ended_by: Literal["local", "remote"] | None = None
    seconds_total: float | None = None
    mos: float | None = None  # E-model estimate of what we hear (sipkit.media.mos)
    mos_inputs: dict | None = None  # one-way delay, loss and codec that went into it
    one_way_missing: Literal["rx", "tx"] | None = None  # with one_way_audio
    verdicts: list[str] = Field(default_factory=list)  # see VERDICTS
    # With CallParams.dtmf: sent, method ("rfc4733" | "sip_info" | None), error,
    # telephone_event (negotiated), received [{digit, method, ms}], info_codes
    dtmf: dict | None = None
    # With CallParams.tone_hz: sipkit.media.audio.analyse of what came back
    audio: dict | None = None
    # With CallParams.hold: hold_ok/_code/_state, resume_ok/..., rx_at_hold/_resume, rx_end
    hold: dict | None = None
    # From the call's SIP (sipkit.media.verdict.dialog_facts): 2xx retransmissions, who hung
    # up when, session timer (RFC 4028) and its refreshes, the far end's Allow
    dialog: dict | None = None
    # packets each way so far, every half second of media: [{t_s, tx: {packets}, rx: {...}}]
    timeline: list[dict] = Field(default_factory=list)
    error: str | None = None
    sip: list[SipMessage] = Field(default_factory=list, exclude=True)

    @property
    def two_way_audio(self) -> bool:
        return self.status == "answered" and self.tx.packets > 0 and self.rx.packets > 0
