"""The fleet fast path for UDP OPTIONS: one shared socket for thousands of probes a second.

Same SIP code as everywhere (``sip.builder`` builds a template once, ``sip.message.parse``
reads every answer); what differs is the I/O: one unconnected socket with large buffers,
answers matched to probes by Via branch, RFC 3261 timer E retransmissions (the rule of
``sip.transaction.next_interval``: doubling to T2, T2 after a 1xx) from one ticker.

Per probe the cost is one send, one receive, a dict entry and two deque entries: timers are
deques per interval (entries of one interval are due in the order they were queued), checked
by one ticker every ``TICK`` seconds, so no timer handle, future or task is made per probe.
Callers get a callback (``send``) or, one probe at a time, an awaitable (``options``).

ICMP errors: an unconnected socket is told nothing of them unless ``IP_RECVERR`` is set
(ip(7)); with it, Linux queues each error with the datagram that caused it, so a refused port
or an unreachable host is matched to its probe by the Via branch inside and reported at once,
as the per-probe path does, instead of after the whole timeout.
"""

from __future__ import annotations

import asyncio
import errno
import heapq
import operator
import re
import secrets
import socket
import struct
import time
from collections import deque

from .. import __version__
from ..net.addresses import hostport, uri_host
from ..sip.builder import build_request
from ..sip.errors import SipParseError
from ..sip.message import OwnResponsePeek, Response, parse
from ..sip.transaction import next_interval

BUFFER = 8 * 1024 * 1024
# Linux values; Python names them from 3.12 on
RECVERR = {socket.AF_INET: (socket.IPPROTO_IP, getattr(socket, "IP_RECVERR", 11)),
           socket.AF_INET6: (socket.IPPROTO_IPV6, getattr(socket, "IPV6_RECVERR", 25))}
ICMP_WORDS = {errno.ECONNREFUSED: "refused", errno.EHOSTUNREACH: "host unreachable",
              errno.ENETUNREACH: "network unreachable"}
_BRANCH = re.compile(rb"branch=(z9hG4bK[0-9a-f]+)")
_SLOTS = re.compile(rb"TARGETHOST|z9hG4bKBRANCHBRANCHBRANCH|CALLIDCALLIDCALLIDCALLID")


TICK = 0.005


class UdpFleet:
    def __init__(self, local_ip: str = "0.0.0.0"):
        """One socket bound to ``local_ip``; "::" (or any IPv6 address) probes IPv6 targets."""
        self.local_ip = local_ip
        self.family = socket.AF_INET6 if ":" in local_ip else socket.AF_INET
        # branch (bytes) -> [callback, context, started, data, addr, interval, proceeding, t2,
        #                    deadline]
        self.pending: dict[bytes, list] = {}
        self.sock: socket.socket | None = None
        self.sent = self.retransmits = self.garbage = self.icmp_errors = 0
        self.recverr = False
        self.after = None  # called after each batch of answers or timers (the runner's pump)
        # Timer E per interval: deque[(due, [branches])], one list per batch of sends (the
        # runner sends hundreds with one clock reading), due in the order queued. A probe's
        # only timer until its first retransmission: most are answered before it is due.
        self._retx: dict[float, deque] = {}
        self._expiry: list = []  # heap of (deadline, seq, branch): probes past their last Timer E
        self._seq = 0
        self._ticker: asyncio.TimerHandle | None = None
        self._fmt, self._pick = b"", None
        self._hosts: dict[tuple, bytes] = {}
        self._prefix = b"z9hG4bK" + secrets.token_hex(6).encode()
        self._counter = 0
        self._peek = None

    async def start(self) -> UdpFleet:
        loop = asyncio.get_running_loop()
        self._loop = loop
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
        # Built once with the real builder; per probe only the branch, Call-ID and target
        # change, joined from the template's parts in their order.
        req = build_request("OPTIONS", "sip:TARGETHOST", from_uri=f"sip:sipkit@{uri_host(lip)}",
                            to_uri="sip:TARGETHOST", call_id="CALLIDCALLIDCALLIDCALLID",
                            cseq=1, via_host=lip, via_port=lport, transport="UDP",
                            branch="z9hG4bKBRANCHBRANCHBRANCH", from_tag="sipkitfleet",
                            user_agent=f"sipkit/{__version__}")
        # bytes %-formatting of the template: the fastest join there is
        raw = req.to_bytes().replace(b"%", b"%%")
        slot = {b"TARGETHOST": 0, b"z9hG4bKBRANCHBRANCHBRANCH": 1, b"CALLIDCALLIDCALLIDCALLID": 2}
        order = [slot[m.group(0)] for m in _SLOTS.finditer(raw)]
        pick = operator.itemgetter(*order)  # (host, branch, call-id) -> the template's order
        self._pick = pick if len(order) > 1 else (lambda values: (pick(values),))
        self._fmt = _SLOTS.sub(b"%b", raw)
        via = raw.index(b"\r\nVia: ") + 2
        self._peek = OwnResponsePeek(raw[via:raw.index(b"branch=", via) + 7])
        return self

    def close(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            self._ticker = None
        if self.sock is not None:
            self._loop.remove_reader(self.sock.fileno())
            self.sock.close()
            self.sock = None
        for entry in list(self.pending.values()):
            entry[0](entry[1], None, "closed", None)
        self.pending.clear()

    # ------------------------------------------------------------------ receive
    def _drain(self) -> None:
        recv = self.sock.recv
        peek, pending, clock = self._peek, self.pending, time.monotonic
        for i in range(2048):  # bounded, so one busy socket cannot starve the loop
            try:
                data = recv(65535)
            except (BlockingIOError, InterruptedError):
                if i == 0 and self.recverr:
                    self._errors()  # woken with nothing to read: an error is queued
                break
            except OSError:  # an ICMP error: with IP_RECVERR its datagram is queued too
                if self.recverr:
                    self._errors()
                continue
            head = peek(data)
            if head is not None and head[0] >= 200:  # a final answer: _answer's end, inline
                entry = pending.pop(head[2], None)
                if entry is not None:
                    entry[0](entry[1], (head[0], head[1]), None, clock() - entry[2])
            else:
                self._answer(data, head)
        if self.after is not None:
            self.after()

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
            entry = self.pending.pop(m.group(1), None) if m and code else None
            if entry is not None:
                word = ICMP_WORDS.get(code) or errno.errorcode.get(code, str(code))
                entry[0](entry[1], None, word, None)

    def _answer(self, data: bytes, head: tuple | None) -> None:
        """A provisional answer, or what the fast reader left to the full parser."""
        if head is None:  # unusual: let the full parser decide
            try:
                msg = parse(data)
                via = msg.top_via
            except SipParseError:
                self.garbage += 1
                return
            if not isinstance(msg, Response) or via is None:
                return
            head = (msg.status, msg.reason, (via.branch or "").encode())
        status, reason, branch = head
        if status < 200:
            entry = self.pending.get(branch)
            if entry is not None:
                entry[6] = True  # Proceeding: Timer E now fires every T2 (§17.1.2.2)
            return
        entry = self.pending.pop(branch, None)
        if entry is not None:
            entry[0](entry[1], (status, reason), None, time.monotonic() - entry[2])

    # ------------------------------------------------------------------ send and timers
    def _sendto(self, data: bytes, addr: tuple) -> None:
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

    def send(self, ip: str, port: int, timeout: float, t1: float, t2: float,
             callback, context, now: float | None = None) -> None:
        """Send one OPTIONS; later ``callback(context, (status, reason) | None, error | None,
        rtt | None)`` exactly once: an answer, or error "timeout" / an ICMP word."""
        self._counter += 1
        branch = b"%s%x" % (self._prefix, self._counter)  # unique per fleet; no urandom
        host = self._hosts.get((ip, port))
        if host is None:
            if len(self._hosts) > 4096:
                self._hosts.clear()
            host = self._hosts[(ip, port)] = hostport(ip, port).encode()
        data = self._fmt % self._pick((host, branch, branch[7:]))
        if now is None:
            now = time.monotonic()
        addr = (ip, port)
        self.pending[branch] = [callback, context, now, data, addr, t1, False, t2, now + timeout]
        try:
            self.sock.sendto(data, addr)
        except OSError:
            self._sendto(data, addr)  # an ICMP error of another probe surfaced here: again
        self.sent += 1
        if t1 < timeout:
            self._after_interval(t1, now, branch)
        else:
            self._expire_at(now + timeout, branch)
        if self._ticker is None:
            self._ticker = self._loop.call_later(TICK, self._tick)

    def _after_interval(self, interval: float, now: float, branch: bytes) -> None:
        q = self._retx.get(interval)
        if q is None:
            q = self._retx[interval] = deque()
        due = now + interval
        if q and q[-1][0] == due:
            q[-1][1].append(branch)
        else:
            q.append((due, [branch]))

    def _expire_at(self, deadline: float, branch: bytes) -> None:
        self._seq += 1
        heapq.heappush(self._expiry, (deadline, self._seq, branch))

    def _tick(self) -> None:
        now = time.monotonic()
        pending = self.pending
        for interval, q in list(self._retx.items()):
            while q and q[0][0] <= now:
                for branch in q.popleft()[1]:
                    entry = pending.get(branch)
                    if entry is None:
                        continue  # answered
                    self._sendto(entry[3], entry[4])
                    self.sent += 1
                    self.retransmits += 1
                    nxt = entry[5] = next_interval(interval, proceeding=entry[6], t2=entry[7])
                    if now + nxt < entry[8]:
                        self._after_interval(nxt, now, branch)
                    else:  # no Timer E before the probe's timeout: wait for that
                        self._expire_at(entry[8], branch)
        expiry = self._expiry
        while expiry and expiry[0][0] <= now:
            entry = pending.pop(heapq.heappop(expiry)[2], None)
            if entry is not None:
                entry[0](entry[1], None, "timeout", None)
        self._ticker = (self._loop.call_later(TICK, self._tick) if pending else None)
        if self.after is not None:
            self.after()

    async def options(self, ip: str, port: int, timeout: float = 2.0, t1: float = 0.5,
                      t2: float = 4.0) -> tuple[tuple[int, str] | str | None, float | None]:
        """One probe as an awaitable: ((status, reason), or an ICMP error such as "refused",
        or None on timeout; RTT seconds)."""
        fut = self._loop.create_future()

        def done(_ctx, resp, error, rtt) -> None:
            if not fut.done():
                fut.set_result((resp if error is None else
                                (None if error == "timeout" else error), rtt))

        self.send(ip, port, timeout, t1, t2, done, None)
        return await fut
