"""asyncio SIP transports (UDP, TCP, TLS) driving the sans-IO client transaction.

UDP uses a *connected* datagram socket: the kernel then reports an ICMP port-unreachable as
ConnectionRefusedError, which is how "refused" (REJECT) is told apart from "no answer" (DROP).
``request()`` never raises on a timeout: it returns an ``Exchange`` that says what happened.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from ..sip.errors import SipParseError
from ..sip.message import Request, Response, StreamParser, parse
from ..sip.transaction import Deliver, NonInviteClientTransaction, Send, Timeout

# tap(direction, data, local, remote, transport, wallclock)
Tap = Callable[[str, bytes, tuple, tuple, str, float], None]


@dataclass
class Exchange:
    request: Request
    final: Response | None = None
    provisionals: list[Response] = field(default_factory=list)
    sends: int = 0
    rtt_ms: float | None = None  # first send -> first response of any kind
    elapsed_ms: float = 0.0
    timed_out: bool = False
    refused: bool = False
    garbage: int = 0  # datagrams or stream bytes that did not parse while waiting
    error: str | None = None


class SipConnection:
    def __init__(self, transport: str, tap: Tap | None):
        self.transport = transport
        self.tap = tap
        self.local: tuple = ("", 0)
        self.remote: tuple = ("", 0)
        self.ssl_object: ssl.SSLObject | None = None
        self.garbage = 0
        self.refused = False
        self.closed = False
        self._waiters: dict[tuple[str, str], asyncio.Queue] = {}
        self._udp: asyncio.DatagramTransport | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._reader_task: asyncio.Task | None = None

    # -- inbound ----------------------------------------------------------------------
    def _tap(self, direction: str, data: bytes) -> None:
        if self.tap is not None:
            self.tap(direction, data, self.local, self.remote, self.transport, time.time())

    def _dispatch(self, msg: Request | Response) -> None:
        if not isinstance(msg, Response):
            return  # a request from the server (e.g. OPTIONS keep-alive): not ours to answer
        try:
            via = msg.top_via
            key = (via.branch or "", msg.cseq[1]) if via else None
        except SipParseError:
            self.garbage += 1
            return
        queue = self._waiters.get(key) if key else None
        if queue is not None:
            queue.put_nowait(msg)

    def _on_datagram(self, data: bytes) -> None:
        self._tap("in", data)
        if not data.strip(b"\r\n"):
            return  # keep-alive
        try:
            msg = parse(data)
        except SipParseError:
            self.garbage += 1
            return
        self._dispatch(msg)

    def _wake_all(self) -> None:
        for queue in self._waiters.values():
            queue.put_nowait(None)

    async def _read_stream(self, reader: asyncio.StreamReader) -> None:
        parser = StreamParser()
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                self._tap("in", data)
                try:
                    for msg in parser.feed(data):
                        self._dispatch(msg)
                except SipParseError:
                    self.garbage += 1
                    break  # a broken stream cannot be re-framed
        except (ConnectionError, OSError, ssl.SSLError):
            pass
        finally:
            self.closed = True
            self._wake_all()

    # -- outbound ---------------------------------------------------------------------
    def _send(self, data: bytes) -> None:
        self._tap("out", data)
        if self._udp is not None:
            self._udp.sendto(data)
        elif self._writer is not None:
            self._writer.write(data)

    async def request(self, req: Request, *, timeout: float | None = None, t1: float = 0.5,
                      t2: float = 4.0) -> Exchange:
        """Run one non-INVITE client transaction (RFC 3261 §17.1.2) and report on it."""
        loop = asyncio.get_running_loop()
        ex = Exchange(request=req)
        via = req.top_via
        key = (via.branch or "", req.cseq[1])
        queue: asyncio.Queue = asyncio.Queue()
        self._waiters[key] = queue
        tx = NonInviteClientTransaction(req.to_bytes(), reliable=self.transport != "udp",
                                        t1=t1, t2=t2)
        start = loop.time()
        deadline = start + (timeout if timeout is not None else 64 * t1)
        garbage0 = self.garbage
        refused0 = self.refused
        try:
            actions = tx.start(start)
            while True:
                for action in actions:
                    if isinstance(action, Send):
                        try:
                            self._send(action.data)
                        except (ConnectionError, OSError) as exc:
                            ex.refused = isinstance(exc, ConnectionRefusedError)
                            ex.error = str(exc) or type(exc).__name__
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
                if self.refused and not refused0:
                    ex.refused = True
                    return ex
                if self.closed and self._udp is None:
                    ex.error = "connection closed by the server"
                    return ex
                now = loop.time()
                if now >= deadline:
                    ex.timed_out = True
                    return ex
                nxt = min(filter(None, (tx.next_deadline(), deadline)))
                try:
                    resp = await asyncio.wait_for(queue.get(), max(0.0, nxt - now))
                except TimeoutError:
                    actions = tx.timeout(loop.time())
                    continue
                actions = [] if resp is None else tx.receive(resp, loop.time())
        finally:
            self._waiters.pop(key, None)
            ex.garbage = self.garbage - garbage0
            ex.elapsed_ms = round((loop.time() - start) * 1000, 3)

    def send_raw(self, data: bytes) -> None:
        """Send bytes outside any transaction (an ACK, a keep-alive)."""
        self._send(data)

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
        self.closed = True

    async def __aenter__(self) -> SipConnection:
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, conn: SipConnection):
        self.conn = conn

    def datagram_received(self, data: bytes, addr) -> None:
        self.conn._on_datagram(data)

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable on a connected socket (the "refused" verdict).
        if isinstance(exc, ConnectionRefusedError):
            self.conn.refused = True
            self.conn._wake_all()


async def connect(ip: str, port: int, transport: str, *, local_ip: str | None = None,
                  ssl_context: ssl.SSLContext | None = None, server_hostname: str | None = None,
                  timeout: float = 4.0, tap: Tap | None = None) -> SipConnection:
    """Open a SIP connection. Raises ConnectionRefusedError, TimeoutError, OSError, or
    ssl.SSLError (certificate problems as ssl.SSLCertVerificationError) unchanged."""
    transport = transport.lower()
    conn = SipConnection(transport, tap)
    loop = asyncio.get_running_loop()
    local = (local_ip, 0) if local_ip else None
    if transport == "udp":
        udp, _ = await loop.create_datagram_endpoint(lambda: _UdpProtocol(conn),
                                                     remote_addr=(ip, port), local_addr=local)
        conn._udp = udp
        sock = udp.get_extra_info("socket")
    elif transport in ("tcp", "tls"):
        if transport == "tls" and ssl_context is None:
            ssl_context = ssl.create_default_context()
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(
                ip, port, ssl=ssl_context if transport == "tls" else None,
                server_hostname=server_hostname if transport == "tls" else None,
                local_addr=local, ssl_handshake_timeout=timeout if transport == "tls" else None),
                timeout)
        except TimeoutError:
            raise TimeoutError(f"{transport.upper()} connect to {ip}:{port} timed out") from None
        conn._writer = writer
        conn.ssl_object = writer.get_extra_info("ssl_object")
        sock = writer.get_extra_info("socket")
        conn._reader_task = asyncio.create_task(conn._read_stream(reader))
    else:
        raise ValueError(f"unknown transport {transport!r}")
    conn.local = sock.getsockname()[:2]
    conn.remote = sock.getpeername()[:2]
    return conn
