"""What a test call is asked to do, and what it found. Passwords go to the worker on its
standard input only (never argv, never the result)."""

from __future__ import annotations

from pydantic import BaseModel, Field


class Thresholds(BaseModel):
    """Defaults follow Microsoft Teams' network targets (research/anchors.md §4b)."""

    max_loss_pct: float = 1.0
    max_jitter_ms: float = 30.0
    min_mos: float = 3.6


class CallParams(BaseModel):
    target: str  # SIP URI to call, e.g. sip:+902124439178@127.0.0.2:5060
    transport: str = "udp"  # udp | tcp | tls
    local_ip: str = "127.0.0.1"  # SIP and RTP bind here
    from_uri: str | None = None  # identity; default sip:sipkit@local_ip
    registrar: str | None = None  # register first (sip:host:port;transport=...)
    username: str | None = None
    password: str | None = None
    proxy: str | None = None  # outbound proxy / route
    verify_tls: bool = False
    ca_file: str | None = None
    seconds: float = 3.0
    setup_timeout: float = 10.0
    test_hook: str | None = None  # tests only: "abort" makes the worker die like pjsip would


class Direction(BaseModel):
    packets: int = 0
    bytes: int = 0
    loss: int = 0
    loss_pct: float = 0.0
    jitter_ms_mean: float | None = None
    jitter_ms_max: float | None = None


class CallResult(BaseModel):
    status: str  # answered | rejected | no_answer | error
    code: int | None = None
    reason: str | None = None
    registration: int | None = None  # REGISTER final code when the call registered first
    provisional_ms: float | None = None
    answer_ms: float | None = None
    codec: str | None = None
    local_media: str | None = None
    remote_media: str | None = None
    tx: Direction = Field(default_factory=Direction)
    rx: Direction = Field(default_factory=Direction)
    rtt_ms: float | None = None
    jbuf_delay_ms: float | None = None
    seconds_total: float | None = None
    mos: float | None = None
    media_seconds: float = 0.0
    error: str | None = None
    verdicts: list[str] = Field(default_factory=list)  # one_way_audio, no_audio, private_sdp, ...
