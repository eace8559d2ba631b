"""The fleet fast path for UDP OPTIONS: one shared socket for thousands of probes a second.

Same SIP code as everywhere (``sip.builder`` builds a template once, ``sip.message.parse``
reads every answer); what differs is the I/O: one unconnected socket with large buffers,
answers matched to probes by Via branch, RFC 3261 timer E retransmissions from ``call_later``.
The price: an ICMP port-unreachable is not tied to a probe on an unconnected socket, so a
refused port reads as a timeout here (the exporter's per-probe path tells them apart).
"""

from __future__ import annotations

import asyncio
import secrets
import socket
import time

from .. import __version__
from ..sip.builder import build_request
from ..sip.errors import SipParseError
from ..sip.message import Response, parse, peek_response

BUFFER = 8 * 1024 * 1024


class UdpFleet:
    def __init__(self, local_ip: str = "0.0.0.0"):
        self.local_ip = local_ip
        self.pending: dict[str, tuple[asyncio.Future, float]] = {}
        self.sock: socket.socket | None = None
        self.sent = self.retransmits = self.garbage = 0
        self._template: bytes | None = None
        self._prefix = secrets.token_hex(6)
        self._counter = 0

    async def start(self) -> UdpFleet:
        loop = asyncio.get_running_loop()
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        for opt in (socket.SO_RCVBUF, socket.SO_SNDBUF):
            try:
                sock.setsockopt(socket.SOL_SOCKET, opt, BUFFER)
            except OSError:
                pass
        sock.bind((self.local_ip, 0))
        sock.setblocking(False)
        self.sock = sock
        # Our own reader drains the socket to EAGAIN on every wake-up; asyncio's datagram
        # transport reads one datagram per loop iteration, which caps the rate.
        loop.add_reader(sock.fileno(), self._drain)
        lip, lport = sock.getsockname()[:2]
        # Built once with the real builder; per probe only the branch and Call-ID change.
        req = build_request("OPTIONS", "sip:TARGETHOST", from_uri=f"sip:sipkit@{lip}",
                            to_uri="sip:TARGETHOST", call_id="CALLIDCALLIDCALLIDCALLID",
                            cseq=1, via_host=lip, via_port=lport, transport="UDP",
                            branch="z9hG4bKBRANCHBRANCHBRANCH", from_tag="sipkitfleet",
                            user_agent=f"sipkit/{__version__}")
        self._template = req.to_bytes()
        return self

    def close(self) -> None:
        if self.sock is not None:
            asyncio.get_running_loop().remove_reader(self.sock.fileno())
            self.sock.close()
            self.sock = None

    def _drain(self) -> None:
        recv = self.sock.recv
        for _ in range(1024):  # bounded, so one busy socket cannot starve the loop
            try:
                data = recv(65535)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:  # an ICMP error queued on the socket: not tied to a probe
                continue
            self._answer(data)

    def _answer(self, data: bytes) -> None:
        head = peek_response(data)
        if head is None:  # unusual: let the full parser decide
            try:
                msg = parse(data)
                via = msg.top_via
            except SipParseError:
                self.garbage += 1
                return
            if not isinstance(msg, Response) or via is None:
                return
            head = (msg.status, msg.reason, via.branch or "")
        status, reason, branch = head
        if status < 200:
            return
        entry = self.pending.pop(branch, None)
        if entry is not None and not entry[0].done():
            entry[0].set_result((status, reason, time.monotonic() - entry[1]))

    async def options(self, ip: str, port: int, timeout: float = 2.0, t1: float = 0.5,
                      t2: float = 4.0) -> tuple[tuple[int, str] | None, float | None, int]:
        """((status, reason) or None on timeout, RTT seconds, sends)."""
        loop = asyncio.get_running_loop()
        self._counter += 1
        token = f"{self._prefix}{self._counter:x}"  # unique per fleet; cheaper than urandom
        branch = "z9hG4bK" + token
        host = f"{ip}:{port}".encode()
        data = (self._template.replace(b"z9hG4bKBRANCHBRANCHBRANCH", branch.encode())
                .replace(b"CALLIDCALLIDCALLIDCALLID", token.encode())
                .replace(b"TARGETHOST", host))
        fut = loop.create_future()
        started = time.monotonic()
        self.pending[branch] = (fut, started)
        sends = 0
        handle = None
        deadline = started + timeout

        def tick(interval: float) -> None:
            # One timer per probe does both jobs: RFC 3261 §17.1.2.2 timer E (T1, doubling,
            # capped at T2) and the overall timeout.
            nonlocal sends, handle
            if fut.done():
                return
            now = time.monotonic()
            if now >= deadline:
                fut.set_result(None)
                return
            try:
                self.sock.sendto(data, (ip, port))
            except (BlockingIOError, InterruptedError):
                pass  # send buffer full: timer E sends it again
            except OSError:
                pass
            sends += 1
            self.sent += 1
            if sends > 1:
                self.retransmits += 1
            handle = loop.call_later(min(interval, deadline - now), tick, min(2 * interval, t2))

        tick(t1)
        try:
            got = await fut
        finally:
            self.pending.pop(branch, None)
            if handle is not None:
                handle.cancel()
        if got is None:
            return None, None, sends
        return (got[0], got[1]), got[2], sends
