"""asyncio SIP transports (UDP, TCP, TLS) driving the sans-IO client transaction.

UDP uses a *connected* datagram socket: the kernel then reports an ICMP port-unreachable as
ConnectionRefusedError, which is how "refused" (REJECT) is told apart from "no answer" (DROP).
``request()`` never raises on a timeout: it returns an ``Exchange`` that says what happened.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from ..sip.errors import SipParseError
from ..sip.message import Request, Response, StreamParser, parse
from ..sip.transaction import Deliver, NonInviteClientTransaction, Send, Timeout
from .addresses import hostport

# tap(direction "out"|"in", data, local (ip, port), remote (ip, port), transport, wallclock)
Tap = Callable[[str, bytes, tuple, tuple, str, float], None]
TRANSPORTS = ("udp", "tcp", "tls")


@dataclass
class Exchange:
    """What one non-INVITE transaction saw. Exactly one of these explains an unanswered
    request: ``timed_out`` (silence, 1xx only, or garbage), ``refused`` (ICMP port
    unreachable on UDP), or ``error`` (connection closed, host unreachable, send failed)."""

    request: Request
    final: Response | None = None
    provisionals: list[Response] = field(default_factory=list)
    sends: int = 0  # the first transmission plus Timer E retransmissions
    rtt_ms: float | None = None  # first send -> first response of any kind
    elapsed_ms: float = 0.0
    timed_out: bool = False
    refused: bool = False
    garbage: int = 0  # UDP: datagrams, TCP/TLS: bytes that did not parse while waiting
    error: str | None = None


class _Wake:
    """Sentinel pushed to waiters when the connection changes state (refused, closed)."""


_WAKE = _Wake()


class _Waiter:
    """One transaction's inbox. A deque plus an Event rather than an asyncio.Queue under
    wait_for, which can drop an item when the timeout and the put race (bpo-42130)."""

    def __init__(self) -> None:
        self.items: deque[Response | _Wake] = deque()
        self.event = asyncio.Event()

    def put(self, item: Response | _Wake) -> None:
        self.items.append(item)
        self.event.set()

    async def get(self, timeout: float) -> Response | _Wake | None:
        """The next item, or None when ``timeout`` passes first."""
        if not self.items:
            self.event.clear()
            try:
                await asyncio.wait_for(self.event.wait(), max(0.0, timeout))
            except TimeoutError:
                pass
        return self.items.popleft() if self.items else None


class SipConnection:
    """One SIP flow to one peer. Made by ``connect()``; several transactions may run on it
    concurrently (responses are matched by top Via branch and CSeq method, §17.1.3)."""

    def __init__(self, transport: str, tap: Tap | None):
        self.transport = transport
        self.tap = tap
        self.local: tuple = ("", 0)
        self.remote: tuple = ("", 0)
        self.ssl_object: ssl.SSLObject | None = None
        self.garbage = 0  # over the connection's life; Exchange.garbage is per request
        self.refusals = 0  # ICMP port-unreachable reports seen (UDP)
        self.errors: list[str] = []  # other asynchronous socket errors (host unreachable...)
        self.closed = False
        self._waiters: dict[tuple[str, str], _Waiter] = {}
        self._udp: asyncio.DatagramTransport | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._reader_task: asyncio.Task | None = None

    @property
    def reliable(self) -> bool:
        return self.transport != "udp"

    # -- inbound ----------------------------------------------------------------------
    def _tap(self, direction: str, data: bytes) -> None:
        if self.tap is not None:
            self.tap(direction, data, self.local, self.remote, self.transport, time.time())

    def _dispatch(self, msg: Request | Response) -> None:
        if not isinstance(msg, Response):
            return  # a request from the server (an OPTIONS keep-alive...): not ours to answer
        try:
            via = msg.top_via
            key = (via.branch or "", msg.cseq[1]) if via else None
        except SipParseError:
            self.garbage += 1
            return
        waiter = self._waiters.get(key) if key else None
        if waiter is not None:
            waiter.put(msg)

    def _on_datagram(self, data: bytes) -> None:
        self._tap("in", data)
        if not data.strip(b"\r\n"):
            return  # keep-alive (RFC 5626 §3.5.1)
        try:
            msg = parse(data)
        except SipParseError:
            self.garbage += 1
            return
        self._dispatch(msg)

    def _on_error(self, exc: Exception) -> None:
        if isinstance(exc, ConnectionRefusedError):
            self.refusals += 1
        else:
            self.errors.append(_describe(exc))
        self._wake_all()

    def _wake_all(self) -> None:
        for waiter in self._waiters.values():
            waiter.put(_WAKE)

    async def _read_stream(self, reader: asyncio.StreamReader) -> None:
        parser = StreamParser()
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                parser.add(data)
                for raw, msg in parser.drain():
                    self._tap("in", raw)
                    if msg is None:
                        # The stream cannot be re-framed from here: count and drop what was
                        # buffered; a later segment that starts a message frames again.
                        self.garbage += len(raw)
                    else:
                        self._dispatch(msg)
        except (ConnectionError, OSError, ssl.SSLError) as exc:
            self.errors.append(_describe(exc))
        finally:
            if parser.buffered:  # a message cut short by the close
                bad = parser.discard()
                self._tap("in", bad)
                self.garbage += len(bad)
            self.closed = True
            self._wake_all()

    # -- outbound ---------------------------------------------------------------------
    async def _send(self, data: bytes) -> None:
        self._tap("out", data)
        if self._udp is not None:
            # Errors (an ICMP from an earlier datagram) come back through error_received.
            self._udp.sendto(data)
        elif self._writer is not None:
            self._writer.write(data)
            await self._writer.drain()

    async def request(self, req: Request, *, timeout: float | None = None, t1: float = 0.5,
                      t2: float = 4.0) -> Exchange:
        """Run one non-INVITE client transaction (RFC 3261 §17.1.2) and report on it.

        Retransmits on UDP only (Timer E); ``timeout`` caps the whole exchange (default Timer
        F = 64*T1). Never raises for what the network or the peer did; a request without Via
        or CSeq is the caller's bug and raises SipParseError."""
        loop = asyncio.get_running_loop()
        ex = Exchange(request=req)
        via = req.top_via
        if via is None:
            raise SipParseError("request without a Via header")
        key = (via.branch or "", req.cseq[1])
        waiter = _Waiter()
        self._waiters[key] = waiter
        limit = timeout if timeout is not None else 64 * t1
        tx = NonInviteClientTransaction(req.to_bytes(), reliable=self.reliable, t1=t1,
                                        t2=max(t1, t2), timer_f=limit)
        start = loop.time()
        deadline = start + limit
        garbage0, refusals0, errors0 = self.garbage, self.refusals, len(self.errors)
        try:
            if self.closed:
                ex.error = "connection closed"
                return ex
            actions = tx.start(start)
            while True:
                for action in actions:
                    if isinstance(action, Send):
                        try:
                            await self._send(action.data)
                        except (ConnectionError, OSError) as exc:
                            ex.refused = isinstance(exc, ConnectionRefusedError)
                            ex.error = _describe(exc)
                            return ex
                        ex.sends += 1
                    elif isinstance(action, Deliver):
                        resp = action.response
                        if ex.rtt_ms is None:
                            ex.rtt_ms = round((loop.time() - start) * 1000, 3)
                        if resp.status < 200:
                            ex.provisionals.append(resp)
                        else:
                            ex.final = resp
                            return ex
                    elif isinstance(action, Timeout):
                        ex.timed_out = True
                        return ex
                if self.refusals != refusals0:
                    ex.refused = True
                    ex.error = "refused (ICMP port unreachable)"
                    return ex
                if len(self.errors) != errors0:
                    ex.error = self.errors[-1]
                    return ex
                if self.closed:
                    ex.error = "connection closed by the peer"
                    return ex
                now = loop.time()
                if now >= deadline:
                    ex.timed_out = True
                    return ex
                wake_at = min(tx.next_deadline() or deadline, deadline)
                item = await waiter.get(wake_at - now)
                if item is None:
                    actions = tx.timeout(loop.time())
                elif isinstance(item, _Wake):
                    actions = []
                else:
                    actions = tx.receive(item, loop.time())
        finally:
            if self._waiters.get(key) is waiter:
                del self._waiters[key]
            ex.garbage = self.garbage - garbage0
            ex.elapsed_ms = round((loop.time() - start) * 1000, 3)

    def send_raw(self, data: bytes) -> None:
        """Send bytes outside any transaction (an ACK, a keep-alive); no flow control."""
        self._tap("out", data)
        if self._udp is not None:
            self._udp.sendto(data)
        elif self._writer is not None:
            self._writer.write(data)

    async def close(self) -> None:
        if self._udp is not None:
            self._udp.close()
        if self._writer is not None:
            self._writer.close()
            try:
                await asyncio.wait_for(self._writer.wait_closed(), 1.0)
            except (TimeoutError, ConnectionError, OSError, ssl.SSLError):
                pass
        if self._reader_task is not None:
            self._reader_task.cancel()
            try:
                await self._reader_task
            except (asyncio.CancelledError, Exception):  # noqa: BLE001 - already recorded
                pass
        self.closed = True
        self._wake_all()

    async def __aenter__(self) -> SipConnection:
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLError):
        return f"TLS: {exc.reason or exc}"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, conn: SipConnection):
        self.conn = conn

    def datagram_received(self, data: bytes, addr) -> None:
        self.conn._on_datagram(data)

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable on a connected socket is ConnectionRefusedError (the
        # "refused" verdict); host/network unreachable arrive here too.
        self.conn._on_error(exc)

    def connection_lost(self, exc: Exception | None) -> None:
        self.conn.closed = True
        self.conn._wake_all()


async def connect(ip: str, port: int, transport: str, *, local_ip: str | None = None,
                  ssl_context: ssl.SSLContext | None = None, server_hostname: str | None = None,
                  timeout: float = 4.0, tap: Tap | None = None) -> SipConnection:
    """Open a SIP flow to ``ip:port`` over udp, tcp or tls.

    Raises, unchanged, what the network says: ConnectionRefusedError (TCP RST), TimeoutError
    (no SYN-ACK or no TLS handshake in ``timeout``), OSError, ssl.SSLError and
    ssl.SSLCertVerificationError (the tls check classifies those). ValueError for a transport
    that is not udp/tcp/tls. For TLS, ``server_hostname`` is the SNI and the name verified;
    without ``ssl_context`` the system store is used with verification on."""
    transport = transport.lower()
    if transport not in TRANSPORTS:
        raise ValueError(f"unknown transport {transport!r}; expected udp, tcp or tls")
    conn = SipConnection(transport, tap)
    loop = asyncio.get_running_loop()
    local = (local_ip, 0) if local_ip else None
    if transport == "udp":
        udp, _ = await loop.create_datagram_endpoint(lambda: _UdpProtocol(conn),
                                                     remote_addr=(ip, port), local_addr=local)
        conn._udp = udp
        sock = udp.get_extra_info("socket")
    else:
        tls = transport == "tls"
        if tls and ssl_context is None:
            ssl_context = ssl.create_default_context()
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(
                ip, port, ssl=ssl_context if tls else None,
                server_hostname=server_hostname if tls else None, local_addr=local,
                ssl_handshake_timeout=timeout if tls else None), timeout)
        except TimeoutError:
            raise TimeoutError(f"{transport.upper()} connect to {hostport(ip, port)} timed out "
                               f"after {timeout:g} s") from None
        conn._writer = writer
        conn.ssl_object = writer.get_extra_info("ssl_object")
        sock = writer.get_extra_info("socket")
        conn._reader_task = asyncio.create_task(conn._read_stream(reader))
    conn.local = tuple(sock.getsockname()[:2])
    conn.remote = tuple(sock.getpeername()[:2])
    return conn
