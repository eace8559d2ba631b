"""The fleet fast path for UDP OPTIONS: one shared socket for thousands of probes a second.

Same SIP code as everywhere (``sip.builder`` builds a template once, ``sip.message.parse``
reads every answer); what differs is the I/O: one unconnected socket with large buffers,
answers matched to probes by Via branch, RFC 3261 timer E retransmissions from ``call_later``.

ICMP errors: an unconnected socket is told nothing of them unless ``IP_RECVERR`` is set
(ip(7)); with it, Linux queues each error with the datagram that caused it, so a refused port
or an unreachable host is matched to its probe by the Via branch inside and reported at once,
as the per-probe path does, instead of after the whole timeout.
"""

from __future__ import annotations

import asyncio
import errno
import re
import secrets
import socket
import struct
import time

from .. import __version__
from ..net.addresses import hostport, uri_host
from ..sip.builder import build_request
from ..sip.errors import SipParseError
from ..sip.message import Response, parse, peek_response

BUFFER = 8 * 1024 * 1024
# Linux values; Python names them from 3.12 on
RECVERR = {socket.AF_INET: (socket.IPPROTO_IP, getattr(socket, "IP_RECVERR", 11)),
           socket.AF_INET6: (socket.IPPROTO_IPV6, getattr(socket, "IPV6_RECVERR", 25))}
ICMP_WORDS = {errno.ECONNREFUSED: "refused", errno.EHOSTUNREACH: "host unreachable",
              errno.ENETUNREACH: "network unreachable"}
_BRANCH = re.compile(rb"branch=(z9hG4bK[0-9a-f]+)")


class UdpFleet:
    def __init__(self, local_ip: str = "0.0.0.0"):
        """One socket bound to ``local_ip``; "::" (or any IPv6 address) probes IPv6 targets."""
        self.local_ip = local_ip
        self.family = socket.AF_INET6 if ":" in local_ip else socket.AF_INET
        self.pending: dict[str, tuple[asyncio.Future, float]] = {}
        self.sock: socket.socket | None = None
        self.sent = self.retransmits = self.garbage = self.icmp_errors = 0
        self.recverr = False
        self._template: bytes | None = None
        self._prefix = secrets.token_hex(6)
        self._counter = 0

    async def start(self) -> UdpFleet:
        loop = asyncio.get_running_loop()
        sock = socket.socket(self.family, socket.SOCK_DGRAM)
        for opt in (socket.SO_RCVBUF, socket.SO_SNDBUF):
            try:
                sock.setsockopt(socket.SOL_SOCKET, opt, BUFFER)
            except OSError:
                pass
        try:
            sock.setsockopt(*RECVERR[self.family], 1)
            self.recverr = True
        except OSError:
            pass  # not Linux: refusals read as timeouts
        sock.bind((self.local_ip, 0))
        sock.setblocking(False)
        self.sock = sock
        # Our own reader drains the socket to EAGAIN on every wake-up; asyncio's datagram
        # transport reads one datagram per loop iteration, which caps the rate.
        loop.add_reader(sock.fileno(), self._drain)
        lip, lport = sock.getsockname()[:2]
        # Built once with the real builder; per probe only the branch and Call-ID change.
        req = build_request("OPTIONS", "sip:TARGETHOST", from_uri=f"sip:sipkit@{uri_host(lip)}",
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
        for i in range(1024):  # bounded, so one busy socket cannot starve the loop
            try:
                data = recv(65535)
            except (BlockingIOError, InterruptedError):
                if i == 0 and self.recverr:
                    self._errors()  # woken with nothing to read: an error is queued
                return
            except OSError:  # an ICMP error: with IP_RECVERR its datagram is queued too
                if self.recverr:
                    self._errors()
                continue
            self._answer(data)

    def _errors(self) -> None:
        """Drain the error queue: each entry is (our datagram, sock_extended_err)."""
        for _ in range(1024):
            try:
                data, ancillary, _flags, _addr = self.sock.recvmsg(2048, 512,
                                                                   socket.MSG_ERRQUEUE)
            except OSError:  # EAGAIN: empty
                return
            self.icmp_errors += 1
            code = next((struct.unpack_from("=I", blob)[0] for level, kind, blob in ancillary
                         if (level, kind) == RECVERR[self.family] and len(blob) >= 4), None)
            m = _BRANCH.search(data)
            entry = self.pending.pop(m.group(1).decode(), None) if m and code else None
            if entry is not None and not entry[0].done():
                entry[0].set_result(ICMP_WORDS.get(code) or errno.errorcode.get(code, str(code)))

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

    def _send(self, data: bytes, addr: tuple) -> None:
        for _ in range(2):
            try:
                self.sock.sendto(data, addr)
            except OSError as exc:
                # With IP_RECVERR the next send reports a pending ICMP error of another
                # probe, and that send did not happen: send again. Anything else (buffer
                # full, no route) is left to timer E.
                if exc.errno in ICMP_WORDS:
                    continue
            return

    async def options(self, ip: str, port: int, timeout: float = 2.0, t1: float = 0.5,
                      t2: float = 4.0) -> tuple[tuple[int, str] | str | None, float | None, int]:
        """((status, reason), or an ICMP error such as "refused", or None on timeout;
        RTT seconds; sends)."""
        loop = asyncio.get_running_loop()
        self._counter += 1
        token = f"{self._prefix}{self._counter:x}"  # unique per fleet; cheaper than urandom
        branch = "z9hG4bK" + token
        host = hostport(ip, port).encode()
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
            self._send(data, (ip, port))
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
        if got is None or isinstance(got, str):
            return got, None, sends
        return (got[0], got[1]), got[2], sends
