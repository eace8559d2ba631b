"""The reflector's own SIP sockets (UDP and TCP on its public address).

*Mirror*: the agent sends a REGISTER and an INVITE whose Request-URI names a mirror id
(``sip:sipkit-mirror-<id>@...``); the exact bytes that arrive are kept for the agent to fetch,
so it can diff what left its LAN with what reached the internet. Nothing is answered: a mirror
sends no packet at all, so it cannot amplify anything.

*Binding*: the agent opens a UDP flow with an OPTIONS naming a binding id; the reflector
answers it (one 200) and later sends OPTIONS back on that flow after growing idle times, one
packet per step, until one gets no answer or the budget ends: the longest idle the site's NAT
kept is the last step answered.

Only messages naming a live id, from the address that asked for it, are looked at further.
"""

from __future__ import annotations

import asyncio
import base64
import re
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from ..net.addresses import canonical_ip, hostport
from ..sip.builder import build_request, new_call_id, response_to
from ..sip.errors import SipParseError
from ..sip.message import MAX_MESSAGE, Response, StreamParser, parse
from .policy import RateLimiter
from .tokens import TokenEntry

ID_RE = re.compile(rb"sipkit-(mirror|bind)-([0-9a-f]{16})")
ANSWER_WAIT_S = 3.0  # how long a binding probe waits for the agent's 200 (not idle time)
MAX_SESSIONS_PER_TOKEN = 8


@dataclass
class Session:
    id: str
    kind: str  # "mirror" | "bind"
    entry: TokenEntry
    caller_ip: str
    expires: float
    messages: list[dict] = field(default_factory=list)  # mirror: what arrived
    flow: tuple[str, int] | None = None  # bind: the agent's public (ip, port)
    answers: dict[str, asyncio.Event] = field(default_factory=dict)  # bind: Call-ID -> answered
    running: bool = False

    def from_caller(self, ip: str) -> bool:
        ip = canonical_ip(ip)
        return ip == self.caller_ip or self.entry.may_probe(ip)


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, side: SipSide):
        self.side = side
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr) -> None:
        self.side.arrived(data, (addr[0], addr[1]), "udp")

    def error_received(self, exc: Exception) -> None:  # an ICMP after a binding probe
        pass


class SipSide:
    def __init__(self, ip: str, port: int, limits, log):
        self.ip, self.port, self.limits, self.log = ip, port, limits, log
        self.sessions: dict[str, Session] = {}
        self._noise = RateLimiter(1, window=1.0)
        self.suppressed = 0  # unknown arrivals not logged since the last one that was
        self._udp: _Udp | None = None
        self._tcp: asyncio.base_events.Server | None = None

    @property
    def address(self) -> str:
        return hostport(self.ip, self.port)

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        _, self._udp = await loop.create_datagram_endpoint(lambda: _Udp(self),
                                                           local_addr=(self.ip, self.port))
        self._tcp = await asyncio.start_server(self._tcp_client, self.ip, self.port)

    async def stop(self) -> None:
        if self._udp and self._udp.transport:
            self._udp.transport.close()
        if self._tcp is not None:
            self._tcp.close()

    # -- sessions ---------------------------------------------------------------------
    def open(self, kind: str, entry: TokenEntry, caller_ip: str) -> Session | None:
        now = time.monotonic()
        for sid in [s for s, v in self.sessions.items() if v.expires < now and not v.running]:
            del self.sessions[sid]
        if sum(1 for s in self.sessions.values() if s.entry.name == entry.name) \
                >= MAX_SESSIONS_PER_TOKEN:
            return None
        sess = Session(secrets.token_hex(8), kind, entry, canonical_ip(caller_ip),
                       now + self.limits.session_s)
        self.sessions[sess.id] = sess
        return sess

    def get(self, sid: str, kind: str, entry: TokenEntry) -> Session | None:
        sess = self.sessions.get(sid)
        if sess is None or sess.kind != kind or sess.entry.name != entry.name:
            return None
        return sess

    # -- arrivals ---------------------------------------------------------------------
    def arrived(self, data: bytes, src: tuple[str, int], transport: str,
                too_large: bool = False) -> None:
        m = ID_RE.search(data[:4096])
        sess = self.sessions.get(m.group(2).decode()) if m else None
        known = sess is not None and sess.kind == m.group(1).decode() \
            and sess.expires >= time.monotonic() and sess.from_caller(src[0])
        if not known:
            # Not ours, or not from the address that asked: silence. A public port 5060 gets
            # scanner noise all day, so such arrivals are logged at most once a second.
            if self._noise.allow("noise"):
                self.log.sip(transport, hostport(*src), len(data), None, data, too_large,
                             suppressed=self.suppressed)
                self.suppressed = 0
            else:
                self.suppressed += 1
            return
        self.log.sip(transport, hostport(*src), len(data), sess.id, data, too_large)
        if sess.kind == "mirror":
            self._mirror(sess, data, src, transport, too_large)
        elif transport == "udp" and not too_large:
            self._binding_packet(sess, data, src)

    def _mirror(self, sess: Session, data: bytes, src, transport: str, too_large: bool) -> None:
        if len(sess.messages) >= self.limits.mirror_messages:
            return
        row: dict[str, Any] = {"transport": transport, "source": hostport(*src),
                               "size": len(data), "at": time.time()}
        if too_large or len(data) > self.limits.max_mirror_bytes:
            row["refused"] = f"over {self.limits.max_mirror_bytes} bytes"
        else:
            row["data_b64"] = base64.b64encode(data).decode()
        sess.messages.append(row)

    def _binding_packet(self, sess: Session, data: bytes, src) -> None:
        try:
            msg = parse(data)
        except SipParseError:
            return
        if isinstance(msg, Response):
            event = sess.answers.get(msg.call_id or "")
            if event is not None and (sess.flow is None or tuple(src) == sess.flow):
                event.set()
            return
        if msg.method == "OPTIONS" and sess.flow in (None, tuple(src)) and not sess.running:
            # The agent's hello opens the flow; a retransmitted hello (our 200 was lost) is
            # answered again, one answer per request, so nothing is amplified.
            sess.flow = (src[0], src[1])
            self._send(response_to(msg, 200, "OK", "sipkit-reflector").to_bytes(), sess.flow)

    def _send(self, data: bytes, dest: tuple[str, int]) -> None:
        if self._udp and self._udp.transport:
            self._udp.transport.sendto(data, dest)

    async def _tcp_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        peer = writer.get_extra_info("peername")
        src = (peer[0], peer[1])
        # Frame up to the SIP layer's own limit, so a message over max_mirror_bytes is still
        # seen whole (and refused as too large, not mistaken for garbage).
        parser = StreamParser()
        received = 0
        try:
            while received <= MAX_MESSAGE:
                data = await asyncio.wait_for(reader.read(65536), self.limits.session_s)
                if not data:
                    break
                received += len(data)
                parser.add(data)
                for raw, msg in parser.drain():
                    too_large = len(raw) > self.limits.max_mirror_bytes or (
                        msg is None and received > MAX_MESSAGE)
                    self.arrived(raw, src, "tcp", too_large=too_large)
                    if msg is None:
                        return  # framing is lost: close
        except (TimeoutError, ConnectionError, OSError):
            pass
        finally:
            writer.close()

    # -- the binding test -----------------------------------------------------------
    async def run_binding(self, sess: Session, idles: list[float], budget: float) -> dict:
        """Send one OPTIONS back on the agent's flow after each idle time (measured from the
        last packet seen on it) until one is not answered or the budget is spent."""
        assert sess.flow is not None
        sess.running = True
        steps: list[dict] = []
        spent = 0.0
        try:
            for idle in idles:
                if spent + idle + ANSWER_WAIT_S > budget:
                    steps.append({"idle_s": idle, "skipped": "over the budget"})
                    break
                await asyncio.sleep(idle)
                call_id = new_call_id(self.ip)
                event = asyncio.Event()
                sess.answers[call_id] = event
                # The id rides in From: the agent's answer copies From (RFC 3261 §8.2.6.2).
                req = build_request(
                    "OPTIONS", f"sip:{hostport(*sess.flow)}",
                    from_uri=f"sip:sipkit-bind-{sess.id}@{self.address}",
                    to_uri=f"sip:{hostport(*sess.flow)}", call_id=call_id, cseq=1,
                    via_host=self.ip, via_port=self.port, transport="UDP",
                    user_agent="sipkit-reflector")
                t0 = time.monotonic()
                self._send(req.to_bytes(), sess.flow)
                try:
                    await asyncio.wait_for(event.wait(), ANSWER_WAIT_S)
                    answered = True
                except TimeoutError:
                    answered = False
                waited = time.monotonic() - t0
                spent += idle + waited
                steps.append({"idle_s": idle, "answered": answered,
                              "rtt_ms": round(waited * 1000, 1) if answered else None})
                if not answered:
                    break
        finally:
            sess.running = False
            sess.expires = time.monotonic() + self.limits.session_s
        kept = [s["idle_s"] for s in steps if s.get("answered")]
        lost = [s["idle_s"] for s in steps if s.get("answered") is False]
        return {"flow": hostport(*sess.flow), "steps": steps,
                "longest_kept_s": max(kept) if kept else None,
                "first_lost_s": lost[0] if lost else None, "packets_sent": len(kept) + len(lost)}

