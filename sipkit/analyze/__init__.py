"""`sipkit analyze CAPTURE`: diagnose a SIP capture with the same verdict model as `check`.

SIP over UDP and TCP (IP fragments reassembled, several messages per segment, messages across
segments) is parsed with the same ``sip/`` parser, grouped by Call-ID into registrations and
calls, and RTP is matched to the SDP media addresses per direction. Each diagnosis is a
CheckResult; problems come first. Memory is bounded: at most MAX_DIALOGS dialogs are tracked
in detail, the oldest are folded into the totals.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass, field

from ..net.addresses import address_kind
from ..report import CheckResult, Report
from ..sip.errors import SipParseError
from ..sip.message import Request, Response, StreamParser, parse
from ..sip.sdp import parse_sdp
from .reader import Datagram, ReadStats, datagrams

MAX_DIALOGS = 20000
MAX_MEDIA = 100000  # SDP media endpoints remembered for matching RTP
MAX_EXAMPLES = 200
SIP_START = (b"SIP/2.0 ", b"INVITE ", b"ACK ", b"BYE ", b"CANCEL ", b"OPTIONS ", b"REGISTER ",
             b"PRACK ", b"SUBSCRIBE ", b"NOTIFY ", b"PUBLISH ", b"INFO ", b"REFER ",
             b"MESSAGE ", b"UPDATE ")

MEANING = {
    400: "malformed request", 401: "authentication required", 403: "forbidden (wrong password "
    "or policy)", 404: "unknown user or number", 405: "method not allowed", 407: "proxy "
    "authentication required", 408: "request timeout", 480: "temporarily unavailable",
    481: "no such call/transaction", 482: "loop detected", 483: "too many hops",
    484: "address incomplete (number format)", 486: "busy", 487: "request terminated (cancelled)",
    488: "not acceptable here (codecs/SDP)", 500: "server error", 502: "bad gateway",
    503: "service unavailable (overload, no route, trunk down)", 504: "server timeout",
    603: "declined", 604: "does not exist anywhere", 606: "not acceptable (codecs/SDP)",
}


@dataclass
class Dialog:
    call_id: str
    kind: str
    first: float
    last: float
    src: str
    dst: str
    from_user: str = ""
    to_user: str = ""
    finals: list[tuple[int, str]] = field(default_factory=list)
    provisionals: int = 0
    sends: dict[tuple, int] = field(default_factory=dict)  # (branch, method) -> times seen
    auth_requests: int = 0
    challenges: int = 0
    cancelled: bool = False
    answered: bool = False
    media: dict[str, tuple[str, int]] = field(default_factory=dict)  # side -> (ip, port)
    rtp: dict[str, int] = field(default_factory=lambda: {"to_caller": 0, "to_callee": 0})
    private_sdp: list[str] = field(default_factory=list)
    nat: list[str] = field(default_factory=list)

    @property
    def final(self) -> tuple[int, str] | None:
        return self.finals[-1] if self.finals else None

    @property
    def max_sends(self) -> int:
        return max(self.sends.values(), default=0)

    def row(self) -> dict:
        f = self.final
        return {"call_id": self.call_id, "kind": self.kind, "from": self.from_user,
                "to": self.to_user, "src": self.src, "dst": self.dst,
                "final": f"{f[0]} {f[1]}" if f else None, "challenges": self.challenges,
                "authenticated_requests": self.auth_requests, "max_sends": self.max_sends,
                "rtp_to_caller": self.rtp["to_caller"], "rtp_to_callee": self.rtp["to_callee"],
                "seconds": round(self.last - self.first, 3)}


class Analysis:
    def __init__(self) -> None:
        self.dialogs: OrderedDict[str, Dialog] = OrderedDict()
        self.done: list[Dialog] = []  # examples kept for the report
        self.totals: dict[str, int] = {}
        self.findings: dict[str, list[str]] = {}
        self.media_index: OrderedDict[tuple[str, int], tuple[str, str]] = OrderedDict()
        self.sip_messages = self.rtp_packets = self.unmatched_rtp = self.tls_flows = 0
        self.parse_errors = 0
        self.streams: OrderedDict[tuple, StreamParser] = OrderedDict()

    # -- input ----------------------------------------------------------------------------
    def feed(self, d: Datagram) -> None:
        if d.proto == "tcp":
            return self._tcp(d)
        if d.payload.startswith(SIP_START):
            try:
                self._sip(parse(d.payload), d)
            except SipParseError:
                self.parse_errors += 1
        elif d.payload.strip(b"\r\n") == b"":
            return  # keep-alive
        elif len(d.payload) >= 12 and d.payload[0] & 0xC0 == 0x80:
            self._rtp(d)

    def _tcp(self, d: Datagram) -> None:
        key = (d.src, d.sport, d.dst, d.dport)
        parser = self.streams.get(key)
        if parser is None:
            if d.payload[:2] == b"\x16\x03":
                self.tls_flows += 1
                self.streams[key] = None  # encrypted: nothing to read
                return
            if not d.payload.lstrip(b"\r\n").startswith(SIP_START):
                return
            parser = self.streams[key] = StreamParser()
            if len(self.streams) > 4096:
                self.streams.popitem(last=False)
        if parser is None:
            return
        try:
            for msg in parser.feed(d.payload):
                self._sip(msg, d)
        except SipParseError:
            self.parse_errors += 1
            self.streams[key] = None

    def _sip(self, msg: Request | Response, d: Datagram) -> None:
        self.sip_messages += 1
        call_id = msg.call_id or "?"
        dlg = self.dialogs.get(call_id)
        if dlg is None:
            kind = msg.method if isinstance(msg, Request) else msg.cseq[1]
            dlg = Dialog(call_id, kind, d.ts, d.ts, f"{d.src}:{d.sport}", f"{d.dst}:{d.dport}")
            try:
                from ..sip.uri import parse_name_addr

                dlg.from_user = parse_name_addr(msg.headers.get("From") or "").uri.user or ""
                dlg.to_user = parse_name_addr(msg.headers.get("To") or "").uri.user or ""
            except SipParseError:
                pass
            self.dialogs[call_id] = dlg
            if len(self.dialogs) > MAX_DIALOGS:
                self._finish(self.dialogs.popitem(last=False)[1])
        dlg.last = d.ts
        try:
            via = msg.top_via
        except SipParseError:
            via = None
        if isinstance(msg, Request):
            key = (via.branch if via else "", msg.method)
            dlg.sends[key] = dlg.sends.get(key, 0) + 1
            if dlg.sends[key] == 1 and ("Authorization" in msg.headers
                                        or "Proxy-Authorization" in msg.headers):
                dlg.auth_requests += 1
            if msg.method == "CANCEL":
                dlg.cancelled = True
            if via is not None and via.host != d.src and address_kind(via.host) \
                    and not address_kind(d.src) and len(dlg.nat) < 3:
                dlg.nat.append(f"Via says {via.host}, packet came from {d.src}")
        else:
            status = msg.status
            if status < 200:
                dlg.provisionals += 1
            elif msg.cseq[1] == dlg.kind:
                if status in (401, 407):
                    dlg.challenges += 1
                dlg.finals.append((status, msg.reason))
                if dlg.kind == "INVITE" and 200 <= status < 300:
                    dlg.answered = True
        if msg.body and (msg.headers.get("Content-Type") or "").startswith("application/sdp"):
            self._sdp(dlg, msg, d)

    def _sdp(self, dlg: Dialog, msg, d: Datagram) -> None:
        try:
            audio = parse_sdp(msg.body).audio()
        except SipParseError:
            return
        if audio is None or not audio.connection:
            return
        side = "caller" if isinstance(msg, Request) else "callee"
        dlg.media[side] = (audio.connection, audio.port)
        self.media_index[(audio.connection, audio.port)] = (dlg.call_id, side)
        self.media_index.move_to_end((audio.connection, audio.port))
        if len(self.media_index) > MAX_MEDIA:
            self.media_index.popitem(last=False)
        if address_kind(audio.connection) in ("private", "carrier-grade NAT") \
                and address_kind(d.src) is None:
            dlg.private_sdp.append(f"{side} SDP c={audio.connection} while signalling comes "
                                   f"from {d.src}")

    def _rtp(self, d: Datagram) -> None:
        self.rtp_packets += 1
        hit = self.media_index.get((d.dst, d.dport))
        if hit is None:
            self.unmatched_rtp += 1
            return
        dlg = self.dialogs.get(hit[0])
        if dlg is not None:
            dlg.rtp["to_" + hit[1]] += 1

    # -- output ---------------------------------------------------------------------------
    def _note(self, key: str, example: str) -> None:
        self.totals[key] = self.totals.get(key, 0) + 1
        examples = self.findings.setdefault(key, [])
        if len(examples) < 5:
            examples.append(example)

    def _finish(self, dlg: Dialog) -> None:
        if len(self.done) < MAX_EXAMPLES:
            self.done.append(dlg)
        self._note(f"kind:{dlg.kind}", dlg.call_id)
        f = dlg.final
        who = f"{dlg.from_user or '?'}→{dlg.to_user or '?'} ({dlg.call_id[:16]})"
        if dlg.kind == "REGISTER":
            if dlg.challenges >= 2 and dlg.auth_requests >= 2 and (not f or f[0] in (401, 407)):
                self._note("auth_loop", f"{who}: {dlg.auth_requests} authenticated REGISTERs, "
                                        f"{dlg.challenges} challenges")
            elif f is None:
                self._note("register_no_answer", who)
            elif 200 <= f[0] < 300:
                self._note("register_ok", who)
            elif f[0] not in (401, 407) or dlg.auth_requests:
                self._note("register_failed", f"{who}: {f[0]} {f[1]}")
        elif dlg.kind == "INVITE":
            if f is None:
                self._note("invite_no_final", f"{who}: {dlg.provisionals} provisional(s), "
                                              "no final answer")
            elif dlg.answered:
                self._note("call_answered", who)
                if self.rtp_packets:
                    to_caller, to_callee = dlg.rtp["to_caller"], dlg.rtp["to_callee"]
                    if to_caller == 0 and to_callee == 0:
                        self._note("no_audio", who)
                    elif to_caller == 0 or to_callee == 0:
                        silent = "callee" if to_caller == 0 else "caller"
                        self._note("one_way_audio", f"{who}: no RTP from the {silent} "
                                                    f"({to_caller} to caller, {to_callee} to "
                                                    "callee)")
            elif f[0] == 487 and dlg.cancelled:
                self._note("call_cancelled", who)
            elif f[0] not in (401, 407) or dlg.auth_requests:
                self._note("call_failed", f"{who}: {f[0]} {f[1]} — "
                                          f"{MEANING.get(f[0], 'refused')}")
        if dlg.max_sends >= 4:
            self._note("retransmissions", f"{who}: a {dlg.kind} sent {dlg.max_sends} times")
        for text in dlg.private_sdp:
            self._note("private_sdp", f"{who}: {text}")
        for text in dlg.nat:
            self._note("nat", f"{who}: {text}")

    def report(self, path: str, stats: ReadStats, seconds: float) -> Report:
        for dlg in list(self.dialogs.values()):
            self._finish(dlg)
        self.dialogs.clear()
        t = self.totals
        checks: list[CheckResult] = []

        def add(cid: str, status: str, summary: str, hint: str | None = None, **details):
            checks.append(CheckResult(id=cid, status=status, summary=summary, hint=hint,
                                      details=details))

        cap = (f"{stats.packets} packets, {self.sip_messages} SIP messages, "
               f"{sum(v for k, v in t.items() if k.startswith('kind:'))} dialogs, "
               f"{self.rtp_packets} RTP packets")
        cap_details = {"packets": stats.packets, "sip_messages": self.sip_messages,
                       "rtp_packets": self.rtp_packets, "ip_fragments": stats.ip_fragments,
                       "reassembled": stats.reassembled, "tls_flows": self.tls_flows,
                       "parse_errors": self.parse_errors, "truncated": stats.truncated,
                       "dialogs": [d.row() for d in self.done]}
        if stats.truncated:
            add("capture", "warn", f"the capture ends early or is corrupt "
                f"({stats.error or 'truncated'}): analysis of the first {cap}",
                "capture again, and stop tcpdump/tshark cleanly (Ctrl-C) before copying",
                **cap_details)
        elif self.sip_messages == 0:
            add("capture", "warn", f"no SIP found in {stats.packets} packets"
                + (f" ({self.tls_flows} TLS flows, encrypted)" if self.tls_flows else ""),
                "capture on the PBX's SIP port; TLS cannot be read: capture with sipkit "
                "check --pcap, or decrypt on the PBX", **cap_details)
        else:
            add("capture", "pass", cap, **cap_details)

        def ex(key: str) -> list[str]:
            return self.findings.get(key, [])

        if any(k in t for k in ("auth_loop", "register_failed", "register_no_answer",
                                "register_ok")):
            bad = t.get("auth_loop", 0) + t.get("register_failed", 0) + \
                t.get("register_no_answer", 0)
            if t.get("auth_loop"):
                add("registrations", "fail", f"authentication loop: {t['auth_loop']} "
                    "registration(s) sent credentials again and again — " + ex("auth_loop")[0],
                    "wrong password, realm or auth username: the client retries into a "
                    "lockout; fix the credentials, and stop the client retrying",
                    examples=ex("auth_loop"), ok=t.get("register_ok", 0))
            elif bad:
                first = (ex("register_failed") or ex("register_no_answer"))[0]
                add("registrations", "fail", f"{bad} registration(s) failed, "
                    f"{t.get('register_ok', 0)} succeeded — {first}",
                    "403 means wrong password or forbidden source; 404 an unknown extension; "
                    "no answer a firewall", examples=ex("register_failed") +
                    ex("register_no_answer"), ok=t.get("register_ok", 0))
            else:
                add("registrations", "pass", f"{t['register_ok']} registration(s) succeeded",
                    examples=ex("register_ok"))
        if any(k in t for k in ("invite_no_final", "call_failed", "call_answered",
                                "call_cancelled")):
            if t.get("invite_no_final"):
                add("calls", "fail", f"{t['invite_no_final']} INVITE(s) never got a final "
                    f"answer — {ex('invite_no_final')[0]}",
                    "the far end or a firewall swallows the answer: check the path back to "
                    "the caller (NAT, ALG) and the callee's reachability",
                    examples=ex("invite_no_final"))
            elif t.get("call_failed"):
                add("calls", "fail", f"{t['call_failed']} call(s) refused — "
                    f"{ex('call_failed')[0]}", "see the status meaning; 484/404 point at the "
                    "number format, 488/606 at codecs", examples=ex("call_failed"))
            else:
                add("calls", "pass", f"{t.get('call_answered', 0)} call(s) answered"
                    + (f", {t['call_cancelled']} cancelled" if t.get("call_cancelled") else ""),
                    examples=ex("call_answered"))
        if t.get("call_answered"):
            if not self.rtp_packets:
                add("media", "skip", "no RTP in the capture (filtered to signalling?)")
            elif t.get("no_audio") or t.get("one_way_audio"):
                first = (ex("one_way_audio") or ex("no_audio"))[0]
                add("media", "fail", f"{t.get('one_way_audio', 0)} one-way and "
                    f"{t.get('no_audio', 0)} no-audio call(s) — {first}",
                    "RTP from one side does not arrive: firewall on the RTP ports, NAT "
                    "without a public media address, or a SIP ALG rewriting SDP",
                    examples=ex("one_way_audio") + ex("no_audio"))
            else:
                add("media", "pass", f"RTP both ways in {t['call_answered']} answered call(s)")
        if t.get("retransmissions"):
            add("retransmissions", "warn", f"{t['retransmissions']} transaction(s) "
                f"retransmitted 4+ times — {ex('retransmissions')[0]}",
                "the answers are lost or late: packet loss, a firewall dropping one "
                "direction, or an overloaded server", examples=ex("retransmissions"))
        if t.get("private_sdp"):
            add("sdp", "warn", f"private media address in SDP — {ex('private_sdp')[0]}",
                "set the PBX's external (public) address for media, or fix the NAT/ALG",
                examples=ex("private_sdp"))
        if t.get("nat"):
            add("nat", "warn", f"NAT between the sender and the capture point — {ex('nat')[0]}",
                "make sure the server answers to the source address (rport) and that "
                "Contact/SDP carry public addresses", examples=ex("nat"))
        order = {"fail": 0, "error": 1, "warn": 2, "pass": 3, "skip": 4}
        checks.sort(key=lambda c: (c.id != "capture", order[c.status]))
        rep = Report(target={"capture": path}, checks=checks)
        return rep.finish(seconds * 1000)


def analyze_file(path: str) -> Report:
    t0 = time.monotonic()
    stats = ReadStats()
    analysis = Analysis()
    for d in datagrams(path, stats):
        analysis.feed(d)
    return analysis.report(path, stats, time.monotonic() - t0)
