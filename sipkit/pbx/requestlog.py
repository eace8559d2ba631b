"""A run-level log of the SIP requests sipkit sent and what came back, fed by the transport tap.

Checks stay brand-agnostic: they publish nothing for this. Every message the transports see
already passes the tap (sipkit.checks.sipio.tap_for); the log keeps, per request, who it went
to, whether it carried credentials, and the first final response's start line and headers
exactly as the PBX wrote them (name casing and order are fingerprint evidence). Request bytes
are never kept: an authenticated request holds a digest response.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ..sip.errors import SipParseError
from ..sip.message import Request, Response, parse

_HEAD_END = re.compile(rb"\r?\n\r?\n")
_AUTH = re.compile(rb"^(?:authorization|proxy-authorization)[ \t]*:", re.I | re.M)
_PADDED = 1300  # sipkit's padded OPTIONS (transport) are bigger: their loss is a path issue


@dataclass
class Answer:
    status: int
    reason: str
    headers: list[tuple[str, str]]  # as on the wire: original name casing and order
    at: float


@dataclass
class Sent:
    """One request (retransmissions folded in) and its first final answer, if any."""

    at: float
    local: str  # our address (IP only: a source ban is per address)
    remote: str  # the peer's IP
    remote_port: int
    transport: str
    method: str
    call_id: str
    cseq: int
    authenticated: bool
    size: int
    sends: int = 1
    answer: Answer | None = None

    @property
    def answered(self) -> bool:
        return self.answer is not None

    @property
    def padded(self) -> bool:
        return self.size > _PADDED


@dataclass
class RequestLog:
    """Appended to by the tap, read after the run. Order is send order."""

    sent: list[Sent] = field(default_factory=list)
    _index: dict[tuple[str, int, str, str], Sent] = field(default_factory=dict, repr=False)

    def tap(self, direction: str, data: bytes, local: tuple, remote: tuple, transport: str,
            ts: float) -> None:
        try:
            msg = parse(data)
        except SipParseError:
            return
        if direction == "out" and isinstance(msg, Request):
            self._out(msg, data, local, remote, transport, ts)
        elif direction == "in" and isinstance(msg, Response):
            self._in(msg, data, ts)

    def _key(self, msg) -> tuple[str, int, str, str] | None:
        try:
            number, method = msg.cseq
        except SipParseError:
            return None
        return (msg.call_id or "", number, method, _branch(msg))

    def _out(self, req: Request, data: bytes, local, remote, transport, ts) -> None:
        if req.method == "ACK":
            return  # not a request that is answered
        key = self._key(req)
        if key is None:
            return
        known = self._index.get(key)
        if known is not None:  # a retransmission (RFC 3261 §17.1.2.2)
            known.sends += 1
            return
        head = _HEAD_END.split(data, 1)[0]
        entry = Sent(at=ts, local=str(local[0]), remote=str(remote[0]),
                     remote_port=int(remote[1]), transport=transport, method=req.method,
                     call_id=key[0], cseq=key[1], authenticated=bool(_AUTH.search(head)),
                     size=len(data))
        self._index[key] = entry
        self.sent.append(entry)

    def _in(self, resp: Response, data: bytes, ts: float) -> None:
        if resp.status < 200:
            return
        key = self._key(resp)
        entry = self._index.get(key) if key else None
        if entry is None or entry.answer is not None:
            return
        entry.answer = Answer(status=resp.status, reason=resp.reason or "",
                              headers=raw_headers(data), at=ts)

    def connect_failed(self, local_ip: str | None, remote: str, port: int, transport: str,
                       ts: float) -> None:
        """A TCP/TLS connection that timed out or was refused: to a ban detector, a request
        the PBX did not answer (a banned source's SYN is dropped or reset)."""
        self.sent.append(Sent(at=ts, local=local_ip or "", remote=remote, remote_port=port,
                              transport=transport, method="(connect)", call_id="", cseq=0,
                              authenticated=False, size=0))

    # -- views --------------------------------------------------------------------------
    def answers(self) -> list[tuple[Sent, Answer]]:
        return [(s, s.answer) for s in self.sent if s.answer is not None]

    def count(self, remote: str | None = None) -> int:
        return sum(1 for s in self.sent if remote is None or s.remote == remote)


def _branch(msg) -> str:
    try:
        via = msg.top_via
    except SipParseError:
        return ""
    return (via.branch or "") if via is not None else ""


def raw_headers(data: bytes) -> list[tuple[str, str]]:
    """Header lines of a message as sent (folded lines joined, RFC 3261 §7.3.1)."""
    head = _HEAD_END.split(data, 1)[0].decode("utf-8", errors="replace")
    lines = re.split(r"\r?\n", head)[1:]
    out: list[tuple[str, str]] = []
    for line in lines:
        if line[:1] in (" ", "\t") and out:
            name, value = out[-1]
            out[-1] = (name, value + " " + line.strip())
        elif ":" in line:
            name, value = line.split(":", 1)
            out.append((name.strip(), value.strip()))
    return out
