"""SIP requests and responses: parse bytes into messages, serialize them back (RFC 3261 §7).

Sans-IO: ``parse`` takes one whole datagram; ``StreamParser`` frames a TCP/TLS byte stream by
Content-Length (§18.3). Anything malformed raises ``SipParseError`` — never another exception.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .errors import SipParseError
from .headers import Headers
from .via import Via

MAX_MESSAGE = 64 * 1024
_TOKEN = re.compile(r"^[A-Za-z0-9.!%*_+`'~-]+$")
_STATUS = re.compile(r"^SIP/2\.0 ([1-6][0-9]{2})(?: (.*))?$")


class _Message:
    headers: Headers
    body: bytes

    @property
    def call_id(self) -> str | None:
        return self.headers.get("Call-ID")

    @property
    def cseq(self) -> tuple[int, str]:
        value = self.headers.get("CSeq") or ""
        num, _, method = value.partition(" ")
        if not num.isdigit() or not method.strip():
            raise SipParseError(f"bad CSeq: {value[:40]!r}")
        return int(num), method.strip().upper()

    @property
    def vias(self) -> list[Via]:
        return [Via.parse(v) for v in self.headers.get_all("Via")]

    @property
    def top_via(self) -> Via | None:
        values = self.headers.get_all("Via")
        return Via.parse(values[0]) if values else None

    def _head(self) -> str:  # pragma: no cover - defined by subclasses
        raise NotImplementedError

    def to_bytes(self) -> bytes:
        self.headers.set("Content-Length", str(len(self.body)))
        lines = [self._head()] + [f"{n}: {v}" for n, v in self.headers.items()]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8") + self.body


@dataclass
class Request(_Message):
    method: str
    uri: str
    headers: Headers = field(default_factory=Headers)
    body: bytes = b""

    def _head(self) -> str:
        return f"{self.method} {self.uri} SIP/2.0"


@dataclass
class Response(_Message):
    status: int
    reason: str
    headers: Headers = field(default_factory=Headers)
    body: bytes = b""

    def _head(self) -> str:
        return f"SIP/2.0 {self.status} {self.reason}"


def _parse_head(head: bytes) -> tuple[str, Headers]:
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        raise SipParseError("header section is not UTF-8") from None
    lines = text.split("\r\n") if "\r\n" in text else text.split("\n")
    start = lines[0]
    headers = Headers()
    current: list[str] | None = None
    for line in lines[1:]:
        if line[:1] in (" ", "\t"):  # folded continuation (§7.3.1)
            if current is None:
                raise SipParseError("continuation line before any header")
            current[1] += " " + line.strip()
            continue
        if current:
            headers.add(current[0], current[1])
        name, colon, value = line.partition(":")
        if not colon or not name.strip() or not _TOKEN.match(name.strip()):
            raise SipParseError(f"bad header line: {line[:60]!r}")
        current = [name.strip(), value.strip()]
    if current:
        headers.add(current[0], current[1])
    return start, headers


def _build(start: str, headers: Headers, body: bytes) -> Request | Response:
    if start.startswith("SIP/"):
        m = _STATUS.match(start)
        if not m:
            raise SipParseError(f"bad status line: {start[:60]!r}")
        msg: Request | Response = Response(int(m.group(1)), m.group(2) or "", headers, body)
    else:
        parts = start.split(" ")
        if len(parts) != 3 or parts[2] != "SIP/2.0" or not _TOKEN.match(parts[0]) or not parts[1]:
            raise SipParseError(f"bad request line: {start[:60]!r}")
        msg = Request(parts[0].upper(), parts[1], headers, body)
    for name in ("Via", "Call-ID", "CSeq"):
        if name not in headers:
            raise SipParseError(f"missing {name} header")
    msg.cseq  # noqa: B018 - validates
    return msg


def _content_length(headers: Headers) -> int | None:
    value = headers.get("Content-Length")
    if value is None:
        return None
    if not value.isdigit():
        raise SipParseError(f"bad Content-Length: {value[:20]!r}")
    return int(value)


def _split_head(data: bytes) -> tuple[bytes, bytes] | None:
    for sep in (b"\r\n\r\n", b"\n\n"):
        idx = data.find(sep)
        if idx >= 0:
            return data[:idx], data[idx + len(sep):]
    return None


def parse(data: bytes) -> Request | Response:
    """One whole message (a UDP datagram). Content-Length, if present, bounds the body."""
    if len(data) > MAX_MESSAGE:
        raise SipParseError(f"message of {len(data)} bytes is over {MAX_MESSAGE}")
    data = data.lstrip(b"\r\n")
    split = _split_head(data)
    if split is None:
        raise SipParseError("no end of headers")
    head, body = split
    start, headers = _parse_head(head)
    length = _content_length(headers)
    if length is not None:
        if length > len(body):
            raise SipParseError(f"body shorter ({len(body)}) than Content-Length ({length})")
        body = body[:length]
    return _build(start, headers, body)


_PEEK_STATUS = re.compile(rb"^SIP/2\.0 ([1-6][0-9]{2})[ \t]?([^\r\n]*)\r?\n")
_PEEK_VIA = re.compile(rb"\n(?:via|v)[ \t]*:[^\r\n]*?;[ \t]*branch=([^;,\s]+)", re.I)


def peek_response(data: bytes) -> tuple[int, str, str] | None:
    """(status, reason, top Via branch) of a response, reading nothing else: the fleet prober's
    fast path, thousands of times a second. None when it is not a plain response with a
    branch; the caller then uses ``parse`` for the whole story."""
    m = _PEEK_STATUS.match(data)
    if m is None:
        return None
    end = data.find(b"\r\n\r\n")
    v = _PEEK_VIA.search(data, 0, end if end > 0 else len(data))
    if v is None:
        return None
    return int(m.group(1)), m.group(2).decode("utf-8", "replace"), v.group(1).decode("ascii",
                                                                                      "replace")


class StreamParser:
    """Frames messages out of a TCP/TLS byte stream (RFC 3261 §18.3: Content-Length is
    mandatory on streams). CRLF keep-alives between messages (RFC 5626 §3.5.1) are skipped."""

    def __init__(self, max_size: int = MAX_MESSAGE):
        self.max_size = max_size
        self._buf = b""

    def feed(self, data: bytes) -> list[Request | Response]:
        self._buf += data
        out: list[Request | Response] = []
        while True:
            self._buf = self._buf.lstrip(b"\r\n")
            if not self._buf:
                return out
            split = _split_head(self._buf)
            if split is None:
                if len(self._buf) > self.max_size:
                    raise SipParseError("header section too large")
                return out
            head, rest = split
            start, headers = _parse_head(head)
            length = _content_length(headers)
            if length is None:
                raise SipParseError("no Content-Length on a stream transport")
            if len(head) + length > self.max_size:
                raise SipParseError(f"message over {self.max_size} bytes")
            if len(rest) < length:
                return out  # wait for the rest of the body
            out.append(_build(start, headers, rest[:length]))
            self._buf = rest[length:]
