"""From transport payloads to dialogs: SIP grouped by Call-ID, RTP matched to SDP addresses.

A ``Tracker`` is fed ``Datagram``s in capture order. SIP over UDP is parsed per datagram, SIP
over TCP through one ``StreamParser`` per flow direction (several messages per segment, messages
across segments). Every Call-ID becomes a ``Dialog`` whose facts (finals, challenges, copies of
each transaction, SDP media, RTP per direction, NAT hints) are kept small; a dialog silent for
``IDLE_SECONDS`` of capture time (no SIP, no RTP) is *finished*: classified into findings by
``classify`` and dropped. Memory is therefore bounded by what is live at once, and capped by
MAX_DIALOGS / MAX_MEDIA / MAX_STREAMS besides.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from ..net.addresses import address_kind, parse_ip
from ..net.addresses import hostport as hp
from ..net.outcome import Outcome
from ..redact import redact_text
from ..report import Evidence
from ..sip.errors import SipParseError
from ..sip.message import Request, Response, StreamParser, parse
from ..sip.sdp import parse_sdp
from ..sip.uri import parse_name_addr
from .reader import Datagram

MAX_DIALOGS = 20000  # live at once; the oldest is finished early beyond that
MAX_MEDIA = 100000  # SDP media endpoints remembered for matching RTP
MAX_STREAMS = 4096  # TCP flow directions with a SIP stream parser
MAX_KEYS = 128  # transactions counted per dialog
MAX_LADDER = 12  # messages kept per dialog for the ladder of an example
IDLE_SECONDS = 64.0  # 64*T1 (RFC 3261 Timer B/F): no transaction outlives it
SIP_START = (b"SIP/2.0 ", b"INVITE ", b"ACK ", b"BYE ", b"CANCEL ", b"OPTIONS ", b"REGISTER ",
             b"PRACK ", b"SUBSCRIBE ", b"NOTIFY ", b"PUBLISH ", b"INFO ", b"REFER ",
             b"MESSAGE ", b"UPDATE ")
NOT_PUBLIC = ("private", "carrier-grade NAT")
_URI_PASSWORD = re.compile(r"(sips?:[^:@;>\s]+:)[^@;>\s]+@", re.I)  # RFC 3261 user:password@
_MASKED = r"\1<redacted>@"


@dataclass
class Dialog:
    call_id: str
    kind: str  # the method that opened it: REGISTER, INVITE, OPTIONS...
    first: float
    last: float
    src: str  # "ip:port" of the first message's sender (the caller / the registering UA)
    dst: str
    transport: str
    caller_tag: str | None = None
    from_user: str = ""
    to_user: str = ""
    aor: str = ""
    packets: int = 0
    finals: list[tuple[int, str]] = field(default_factory=list)
    provisionals: int = 0
    requests: dict[tuple, int] = field(default_factory=dict)  # (src, branch, method) -> copies
    responses: dict[tuple, int] = field(default_factory=dict)  # (branch, status, method) -> copies
    auth_branches: set = field(default_factory=set)
    auth_requests: int = 0
    challenges: int = 0
    rejected_auth: int = 0  # authenticated requests answered 401/407/403 (not stale)
    cancelled: bool = False
    answered_at: float | None = None
    answered_cseq: int = 0
    reinvite_failed: tuple[int, str] | None = None  # a later INVITE (re-INVITE) refused
    acked: bool = False
    open_at_end: bool = False  # still live when the capture ended
    idle_at_end: float = 0.0  # seconds between its last packet and the capture's end
    hold: bool = False  # an SDP said sendonly/recvonly/inactive: one-way is expected
    media: dict[str, tuple[str, int]] = field(default_factory=dict)  # side -> (ip, port)
    rtp: dict[str, int] = field(default_factory=lambda: {"to_caller": 0, "to_callee": 0})
    private_sdp: list[str] = field(default_factory=list)
    nat: list[str] = field(default_factory=list)
    ladder: list[tuple] = field(default_factory=list)  # (ts, src, dst, transport, first line)

    @property
    def final(self) -> tuple[int, str] | None:
        return self.finals[-1] if self.finals else None

    def cut_short(self, within: float) -> bool:
        """The capture ended less than ``within`` seconds after this dialog's last (or, for
        ``within`` = 32, Timer B/F, its first) packet: its outcome is unknown, not a failure."""
        return self.open_at_end and self.idle_at_end < within

    @property
    def answered(self) -> bool:
        return self.answered_at is not None

    @property
    def outcome(self) -> str:
        """The dialog's first transaction in the checks' and probes' vocabulary
        (sipkit.net.outcome): what a capture can tell of it."""
        if self.finals:
            return Outcome.ANSWERED.value
        return (Outcome.PROVISIONAL_ONLY if self.provisionals else Outcome.NO_ANSWER).value

    @property
    def max_request_copies(self) -> int:
        return max(self.requests.values(), default=0)

    def row(self, problem: str | None) -> dict:
        f = self.final
        return {"call_id": self.call_id, "kind": self.kind, "from": self.from_user,
                "to": self.to_user, "src": self.src, "dst": self.dst,
                "transport": self.transport, "final": f"{f[0]} {f[1]}" if f else None,
                "outcome": self.outcome,
                "packets": self.packets, "challenges": self.challenges,
                "authenticated_requests": self.auth_requests,
                "max_sends": self.max_request_copies,
                "rtp_to_caller": self.rtp["to_caller"], "rtp_to_callee": self.rtp["to_callee"],
                "seconds": round(self.last - self.first, 3), "problem": problem}

    def evidence(self) -> list[Evidence]:
        """The dialog's first messages as ladder rows, seen from the caller ("out" = sent by
        the side that opened the dialog). First lines only: whole messages of every live
        dialog would not keep memory bounded."""
        out = []
        for ts, src, dst, transport, line in self.ladder:
            to_caller = dst == self.src and src != self.src
            # towards the caller: "in"; anything else (from the caller, or a leg further on
            # such as proxy → callee) is drawn from its sender
            out.append(Evidence(kind="sip", summary=line, at_ms=round((ts - self.first) * 1000, 1),
                                direction="in" if to_caller else "out",
                                local=dst if to_caller else src,
                                peer=src if to_caller else dst, transport=transport))
        return out


class Tracker:
    """Feed it datagrams; ``finished`` is called with each dialog once it is over."""

    def __init__(self, finished: Callable[[Dialog], None]):
        self.finished = finished
        self.dialogs: OrderedDict[str, Dialog] = OrderedDict()  # least recently active first
        self.media: OrderedDict[tuple[str, int], tuple[str, str]] = OrderedDict()
        self.streams: OrderedDict[tuple, StreamParser | None] = OrderedDict()
        self.sip_messages = self.rtp_packets = self.unmatched_rtp = 0
        self.tls_flows = self.parse_errors = self.sdp_seen = 0
        self.first_error: str | None = None
        self.internal_errors = 0
        self.now = 0.0  # time of the last packet fed

    # -- input ----------------------------------------------------------------------------
    def feed(self, d: Datagram) -> None:
        self.now = max(self.now, d.ts)
        try:
            if d.proto == "tcp":
                self._tcp(d)
            elif d.payload.startswith(SIP_START):
                self._sip(parse(d.payload), d)
            elif len(d.payload) >= 12 and d.payload[0] & 0xC0 == 0x80:
                self._rtp(d)
        except (SipParseError, ValueError, IndexError, KeyError, UnicodeError) as exc:
            self._error(exc)
        except Exception as exc:  # noqa: BLE001 - one odd packet must not end the analysis;
            self.internal_errors += 1  # counted and shown in the capture check, not hidden
            self._error(exc)
        self._expire(d.ts)

    def _error(self, exc: Exception) -> None:
        self.parse_errors += 1
        if self.first_error is None:
            self.first_error = f"{type(exc).__name__}: {str(exc)[:120]}"

    def _tcp(self, d: Datagram) -> None:
        key = (d.src, d.sport, d.dst, d.dport)
        if key not in self.streams:
            if d.payload[:2] in (b"\x16\x03", b"\x17\x03"):
                self.tls_flows += 1
                self._stream(key, None)  # encrypted: nothing to read
                return
            if not d.payload.lstrip(b"\r\n").startswith(SIP_START):
                return  # not SIP, or we joined mid-message: wait for a message start
            self._stream(key, StreamParser())
        parser = self.streams[key]
        self.streams.move_to_end(key)
        if parser is None:
            return
        try:
            for msg in parser.feed(d.payload):
                self._sip(msg, d)
        except SipParseError as exc:
            self._error(exc)
            del self.streams[key]  # resynchronise on the next segment that starts a message

    def _stream(self, key: tuple, parser: StreamParser | None) -> None:
        self.streams[key] = parser
        if len(self.streams) > MAX_STREAMS:
            self.streams.popitem(last=False)

    def _dialog(self, msg: Request | Response, d: Datagram) -> Dialog:
        call_id = msg.call_id or "?"
        dlg = self.dialogs.get(call_id)
        if dlg is not None:
            self.dialogs.move_to_end(call_id)
            return dlg
        kind = msg.method if isinstance(msg, Request) else msg.cseq[1]
        dlg = Dialog(call_id, kind, d.ts, d.ts, hp(d.src, d.sport), hp(d.dst, d.dport), d.proto)
        try:
            frm = parse_name_addr(msg.headers.get("From") or "")
            to = parse_name_addr(msg.headers.get("To") or "")
            dlg.from_user, dlg.to_user = frm.uri.user or "", to.uri.user or ""
            dlg.caller_tag = frm.params.get("tag")
            dlg.aor = f"{to.uri.user or ''}@{to.uri.host}"
            if isinstance(msg, Response):  # we joined late: the request's sender is the caller
                dlg.src, dlg.dst = dlg.dst, dlg.src
        except SipParseError:
            pass
        self.dialogs[call_id] = dlg
        if len(self.dialogs) > MAX_DIALOGS:
            self.finished(self.dialogs.popitem(last=False)[1])
        return dlg

    def _sip(self, msg: Request | Response, d: Datagram) -> None:
        self.sip_messages += 1
        dlg = self._dialog(msg, d)
        dlg.last = d.ts
        dlg.packets += 1
        if len(dlg.ladder) < MAX_LADDER:
            if isinstance(msg, Request):
                line = f"{msg.method} {_URI_PASSWORD.sub(_MASKED, msg.uri)} SIP/2.0"
            else:
                line = f"SIP/2.0 {msg.status} {msg.reason}"
            line = redact_text(line)
            dlg.ladder.append((d.ts, hp(d.src, d.sport), hp(d.dst, d.dport), d.proto, line[:100]))
        try:
            via = msg.top_via
        except SipParseError:
            via = None
        branch = (via.branch if via else None) or ""
        method = msg.cseq[1]
        if isinstance(msg, Request):
            self._request(dlg, msg, d, via, branch)
        else:
            self._response(dlg, msg, via, branch, method, msg.cseq[0])
        ctype = (msg.headers.get("Content-Type") or "").lower()
        if msg.body and ctype.startswith("application/sdp"):
            self._sdp(dlg, msg, d)

    def _request(self, dlg: Dialog, msg: Request, d: Datagram, via, branch: str) -> None:
        key = (hp(d.src, d.sport), branch, msg.method)
        copies = dlg.requests.get(key, 0) + 1
        if copies > 1 or len(dlg.requests) < MAX_KEYS:
            dlg.requests[key] = copies
        if copies == 1 and ("Authorization" in msg.headers
                            or "Proxy-Authorization" in msg.headers):
            dlg.auth_requests += 1
            if len(dlg.auth_branches) < MAX_KEYS:
                dlg.auth_branches.add(branch)
        if msg.method == "CANCEL":
            dlg.cancelled = True
        elif msg.method == "ACK" and dlg.answered:
            dlg.acked = True
        if via is not None and copies == 1 and len(dlg.nat) < 3:
            self._nat_request(dlg, via, d)

    def _nat_request(self, dlg: Dialog, via, d: Datagram) -> None:
        """RFC 3581: a sent-by that is not where the packet came from means a NAT (or an ALG
        that rewrote one but not the other) between the sender and the capture point."""
        sent_by = parse_ip(via.host)
        if sent_by is None:
            return  # a host name: nothing to compare
        src = parse_ip(d.src)
        if sent_by != src:
            dlg.nat.append(f"Via sent-by {hp(via.host, via.port or 5060)} but the packet came "
                           f"from {hp(d.src, d.sport)}")
        elif d.proto == "udp" and via.transport == "UDP" and (via.port or 5060) != d.sport:
            dlg.nat.append(f"Via sent-by port {via.port or 5060} but the packet came from port "
                           f"{d.sport} (port translation)")

    def _response(self, dlg: Dialog, msg: Response, via, branch: str, method: str,
                  number: int = 0) -> None:
        status = msg.status
        key = (branch, status, method)
        copies = dlg.responses.get(key, 0) + 1
        if copies > 1 or len(dlg.responses) < MAX_KEYS:
            dlg.responses[key] = copies
        if copies > 1:
            return  # a retransmitted response says nothing new
        if via is not None and via.received and len(dlg.nat) < 3:
            sent_by, seen = parse_ip(via.host), parse_ip(via.received)
            if seen is not None and sent_by != seen:
                port = via.rport if isinstance(via.rport, int) and not isinstance(via.rport,
                                                                                  bool) else None
                dlg.nat.append(f"the server saw the sender of {hp(via.host, via.port or 5060)} "
                               f"as {hp(via.received, port) if port else via.received} "
                               "(Via received/rport)")
        if status < 200:
            if method == dlg.kind:
                dlg.provisionals += 1
            return
        if status in (401, 407, 403) and branch in dlg.auth_branches:
            stale = "stale=true" in (msg.headers.get("WWW-Authenticate")
                                     or msg.headers.get("Proxy-Authenticate") or "").lower()
            if not stale:
                dlg.rejected_auth += 1
        if method != dlg.kind:
            return
        if status in (401, 407):
            dlg.challenges += 1
        dlg.finals.append((status, msg.reason))
        if len(dlg.finals) > 8:
            del dlg.finals[0]
        if dlg.kind == "INVITE" and 200 <= status < 300 and dlg.answered_at is None:
            dlg.answered_at, dlg.answered_cseq = dlg.last, number
        elif dlg.answered_at is not None and number > dlg.answered_cseq:
            # A re-INVITE (session refresh, hold, codec change) in an answered call: a higher
            # CSeq tells it from another fork's answer to the first INVITE. Challenges and
            # 491 glare are retried by design; a later success clears an earlier refusal.
            if status < 300:
                dlg.reinvite_failed = None
            elif status not in (401, 407, 491):
                dlg.reinvite_failed = (status, msg.reason)

    def _sdp(self, dlg: Dialog, msg: Request | Response, d: Datagram) -> None:
        try:
            sdp = parse_sdp(msg.body)
        except SipParseError:
            return
        audio = sdp.audio()
        if audio is None:
            return
        self.sdp_seen += 1
        conn = audio.connection or sdp.connection
        if audio.direction != "sendrecv" or audio.port == 0:
            dlg.hold = True
        if not conn or audio.port == 0:
            return
        # Who wrote this SDP: a request from the caller's side (its From tag), or a response
        # to the callee's request, is the caller's; the rest is the callee's.
        try:
            from_tag = parse_name_addr(msg.headers.get("From") or "").params.get("tag")
        except SipParseError:
            from_tag = None
        by_caller = (from_tag == dlg.caller_tag) != isinstance(msg, Response)
        side = "caller" if by_caller else "callee"
        dlg.media[side] = (conn, audio.port)
        self.media[(conn, audio.port)] = (dlg.call_id, side)
        self.media.move_to_end((conn, audio.port))
        if len(self.media) > MAX_MEDIA:
            self.media.popitem(last=False)
        if address_kind(conn) in NOT_PUBLIC and len(dlg.private_sdp) < 2 and (
                address_kind(d.src) is None or address_kind(d.dst) is None):
            dlg.private_sdp.append(f"the {side}'s SDP says c={conn} (private) while its "
                                   f"signalling goes {hp(d.src, d.sport)} → {hp(d.dst, d.dport)}"
                                   " over public addresses")

    def _rtp(self, d: Datagram) -> None:
        if 72 <= d.payload[1] & 0x7F <= 76:
            return  # RTCP (PT 200-204) shares the first bits with RTP
        self.rtp_packets += 1
        hit = self.media.get((d.dst, d.dport))
        to = hit[1] if hit else None
        if hit is None:  # symmetric RTP: sent from where the sender receives
            hit = self.media.get((d.src, d.sport))
            to = {"caller": "callee", "callee": "caller"}[hit[1]] if hit else None
        dlg = self.dialogs.get(hit[0]) if hit else None
        if dlg is None:
            self.unmatched_rtp += 1
            return
        dlg.rtp["to_" + to] += 1
        dlg.last = d.ts
        self.dialogs.move_to_end(dlg.call_id)

    def _expire(self, now: float) -> None:
        while self.dialogs:
            oldest = next(iter(self.dialogs.values()))
            if now - oldest.last < IDLE_SECONDS:
                return
            self.finished(self.dialogs.popitem(last=False)[1])

    def close(self) -> None:
        """The capture ended: finish what is still live."""
        while self.dialogs:
            dlg = self.dialogs.popitem(last=False)[1]
            dlg.open_at_end = True
            dlg.idle_at_end = self.now - dlg.last
            self.finished(dlg)
