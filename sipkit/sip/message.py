"""SIP requests and responses: parse bytes into messages, serialize them back (RFC 3261 §7).

Sans-IO: ``parse`` takes one whole datagram; ``StreamParser`` frames a TCP/TLS byte stream by
Content-Length (§18.3). Anything malformed raises ``SipParseError`` — never another exception.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from .errors import SipBuildError, SipParseError
from .headers import Headers, number, split_list
from .via import Via

MAX_MESSAGE = 64 * 1024
MAX_START_LINE = 8 * 1024  # a start line longer than this is not SIP, whatever follows
_TOKEN = re.compile(r"^[A-Za-z0-9.!%*_+`'~-]+$")
_STATUS = re.compile(r"^SIP/2\.0 ([1-6][0-9]{2})(?: (.*))?$")
_REQUEST = re.compile(r"^([A-Za-z0-9.!%*_+`'~-]+) (\S+) SIP/2\.0$")
# [0-9], not \d or str.isdigit(): those accept "²" and other Unicode digits int() refuses.
_CSEQ = re.compile(r"^([0-9]{1,10})[ \t]+([A-Za-z0-9.!%*_+`'~-]+)$")
_END_OF_HEAD = re.compile(rb"\r?\n\r?\n")
_LINE = re.compile(r"\r?\n")
# What a stream may start with: a status line or a request line (checked before the whole
# header section is in, so a peer talking something else is caught at its first line).
_START = re.compile(rb"^(?:SIP/2\.0 [1-6][0-9]{2}(?: [^\r\n]*)?|"
                    rb"[A-Za-z0-9.!%*_+`'~-]+ \S+ SIP/2\.0)\r?$")


class _Message:
    headers: Headers
    body: bytes

    @property
    def call_id(self) -> str | None:
        return self.headers.get("Call-ID")

    @property
    def cseq(self) -> tuple[int, str]:
        """(number, METHOD); SipParseError when absent or malformed."""
        value = self.headers.get("CSeq") or ""
        m = _CSEQ.match(value)
        if m is None:
            raise SipParseError(f"bad CSeq: {value[:40]!r}")
        return int(m.group(1)), m.group(2).upper()

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
        """Wire form. Sets Content-Length from the body (mandatory on streams, §18.3)."""
        self.headers.set("Content-Length", str(len(self.body)))
        lines = [self._head()] + [f"{n}: {v}" for n, v in self.headers.items()]
        if any("\r" in line or "\n" in line for line in lines):
            raise SipBuildError("a line break inside the start line or a header value")
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


Message = Request | Response


def _parse_head(head: bytes) -> tuple[str, Headers]:
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        raise SipParseError("header section is not UTF-8") from None
    lines = _LINE.split(text)
    start = lines[0]
    headers = Headers()
    current: list[str] | None = None
    if "\r" in text.replace("\r\n", ""):
        raise SipParseError("bare CR in the header section")
    for line in lines[1:]:
        if line[:1] in (" ", "\t"):  # folded continuation: replace LWS by one SP (§7.3.1)
            if current is None:
                raise SipParseError("continuation line before any header")
            current[1] += " " + line.strip()
            continue
        if current:
            headers.add(current[0], current[1])
        name, colon, value = line.partition(":")
        name = name.strip(" \t")
        if not colon or not _TOKEN.match(name):
            raise SipParseError(f"bad header line: {line[:60]!r}")
        current = [name, value.strip()]
    if current:
        headers.add(current[0], current[1])
    return start, headers


def _build(start: str, headers: Headers, body: bytes) -> Message:
    if start.startswith("SIP/"):
        m = _STATUS.match(start)
        if not m:
            raise SipParseError(f"bad status line: {start[:60]!r}")
        msg: Message = Response(int(m.group(1)), m.group(2) or "", headers, body)
    else:
        m = _REQUEST.match(start)
        if not m:
            raise SipParseError(f"bad request line: {start[:60]!r}")
        msg = Request(m.group(1).upper(), m.group(2), headers, body)
    # The three a UA needs to match a message to a transaction (§17.1.3, §17.2.3).
    for name in ("Via", "Call-ID", "CSeq"):
        if name not in headers:
            raise SipParseError(f"missing {name} header")
    msg.cseq  # noqa: B018 - validates
    return msg


def _content_length(headers: Headers) -> int | None:
    values = set(headers.get_all("Content-Length"))
    if not values:
        return None
    if len(values) > 1:  # two different lengths: which framing is right is anyone's guess
        raise SipParseError(f"conflicting Content-Length headers: {sorted(values)[:3]!r}")
    value = values.pop()
    length = number(value)
    if length is None:
        raise SipParseError(f"bad Content-Length: {value[:20]!r}")
    return length


def _head_end(data: bytes) -> int:
    """Where ``_END_OF_HEAD`` first matches, or -1, by two ``bytes.find``: the regular
    expression's optional leading ``\r`` costs microseconds per datagram. The first ``\n``
    followed by ``\r?\n`` is where the empty line is (with the ``\r`` before it, if any)."""
    crlf, lf = data.find(b"\n\r\n"), data.find(b"\n\n")
    k = crlf if lf < 0 or 0 <= crlf < lf else lf
    if k > 0 and data[k - 1] == 13:
        return k - 1
    return k


def _split_head(data: bytes) -> tuple[bytes, bytes] | None:
    start = _head_end(data)
    if start < 0:
        return None
    end = start + (2 if data[start] == 13 else 1)  # past "\r?\n\r?\n"
    end += 2 if data[end] == 13 else 1
    return data[:start], data[end:]


def parse(data: bytes) -> Message:
    """One whole message (a UDP datagram). A Content-Length, if present, bounds the body and
    must not exceed what arrived; without one, the body is the rest of the datagram (§18.3)."""
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


# The status line as _STATUS reads it (a space or the line's end after the three digits:
# "SIP/2.0 2001 OK" is no 200), and the first Via header line of the header section.
_PEEK_STATUS = re.compile(rb"^SIP/2\.0 ([1-6][0-9]{2})(?: ([^\r\n]*))?\r?\n")
_PEEK_VIA = re.compile(rb"\n(?:via|v)[ \t]*:([^\r\n]*)\r?\n(?![ \t])", re.I)
_PEEK_FIRST_VIA = re.compile(rb"\n(?:via|v)[ \t]*:", re.I)


def peek_response(data: bytes) -> tuple[int, str, str] | None:
    """(status, reason, top Via branch) of a response, reading nothing else: the fleet prober's
    fast path, thousands of times a second. None when it is not a plain response whose top
    Via has a branch; the caller then uses ``parse`` for the whole story.

    Whatever it returns, ``parse`` reads the same (a hypothesis test holds it to that): the
    status line by the same rule, and the branch of the *top* Via only (the first value of
    the first Via line), never one further down."""
    m = _PEEK_STATUS.match(data)
    if m is None:
        return None
    end = _head_end(data)
    if end < 0:
        return None
    head = data[:end + 2]  # keep the last line's line break for _PEEK_VIA
    first = _PEEK_FIRST_VIA.search(head)
    if first is None:
        return None
    v = _PEEK_VIA.match(head, first.start())
    if v is None:  # folded onto the next line: the full parser knows how to unfold it
        return None
    try:
        reason = m.group(2).decode("utf-8") if m.group(2) else ""
        value = v.group(1).decode("utf-8")
    except UnicodeDecodeError:
        return None
    if "\r" in reason or "\r" in value:
        return None
    values = split_list(value)
    if not values:
        return None
    try:
        branch = Via.parse(values[0]).branch
    except SipParseError:
        return None
    if not branch:
        return None
    return int(m.group(1)), reason, branch


# A copied Via line from its branch value on: the token, the parameters a server may add
# (``received``, ``rport``: RFC 3581) but no second branch (§20.42), the line's end, and no
# folded continuation.
_OWN_VIA_REST = (rb"([A-Za-z0-9]+)(?:;(?!(?i:branch)[=;\r])[A-Za-z0-9._!%*+`'~-]+"
                 rb"(?:=[A-Za-z0-9._!%*+`'~:\[\]-]+)?)*\r\n(?![ \t])")


class OwnResponsePeek:
    """``peek_response`` for answers to requests whose Via we wrote, for the fleet's hot path.

    A response copies the request's Via values (RFC 3261 §8.2.6.2): when the line after the
    status line is the bytes we sent up to ``branch=``, then a token and the parameters a
    server adds, one match of one expression reads status, reason and branch, instead of the
    general reader's search for the header section's first Via. Anything else goes to
    ``peek_response``; a test holds the two to the same answers. The branch comes back as
    bytes, the fleet's key for its pending requests."""

    __slots__ = ("_match",)

    def __init__(self, via_start: bytes):
        """``via_start``: ``b"Via: SIP/2.0/UDP 192.0.2.1:5060;branch="`` as sent."""
        self._match = re.compile(rb"SIP/2\.0 ([1-6][0-9]{2})(?: ([^\r\n]*))?\r\n"
                                 + re.escape(via_start) + _OWN_VIA_REST).match

    def __call__(self, data: bytes) -> tuple[int, str, bytes] | None:
        m = self._match(data)
        # the header section must end (an empty line) for the general reader too
        if m is None or not (data.endswith(b"\r\n\r\n")
                             or data.find(b"\r\n\r\n", m.end() - 2) > 0):
            head = peek_response(data)
            return head and (head[0], head[1], head[2].encode())
        try:
            reason = m.group(2).decode("utf-8") if m.group(2) else ""
        except UnicodeDecodeError:
            return None
        return int(m.group(1)), reason, m.group(3)


class StreamParser:
    """Frames messages out of a TCP/TLS byte stream (RFC 3261 §18.3: Content-Length is
    mandatory on streams). CRLF keep-alives between messages (RFC 5626 §3.5.1) are skipped.

    ``feed(data)`` returns every whole message buffered so far, or raises SipParseError (the
    messages framed before the error in that call are then lost). For finer control (keep
    them, or get the raw bytes of each message) use ``add`` and ``next_frame``. After a
    SipParseError the buffer still holds the offending bytes: ``discard()`` them before going
    on (or drop the parser).
    """

    def __init__(self, max_size: int = MAX_MESSAGE):
        self.max_size = max_size
        self._buf = bytearray()
        self._scanned = 0  # bytes already searched for the end of the header section
        self._head: tuple[int, int, str, Headers] | None = None  # parsed, body incomplete
        self._bad_frame: int | None = None  # length of a framed but invalid message

    @property
    def buffered(self) -> int:
        """Bytes received but not yet part of a whole message."""
        return len(self._buf)

    def add(self, data: bytes) -> None:
        self._buf += data

    def discard(self) -> bytes:
        """After a SipParseError: drop the offending bytes and return them. That is the one
        bad message when Content-Length still framed it, else everything buffered (framing
        is lost; it restarts with the next data that begins a message)."""
        cut = self._bad_frame if self._bad_frame is not None else len(self._buf)
        out = bytes(self._buf[:cut])
        del self._buf[:cut]
        self._scanned = 0
        self._head = None
        self._bad_frame = None
        return out

    def feed(self, data: bytes) -> list[Message]:
        self.add(data)
        out: list[Message] = []
        while (frame := self.next_frame()) is not None:
            out.append(frame[1])
        return out

    def drain(self) -> Iterator[tuple[bytes, Message | None]]:
        """Every whole message buffered, as (raw bytes, message). On a framing error it
        yields (the dropped bytes, None) once and stops: what follows frames afresh with
        the next data."""
        while True:
            try:
                frame = self.next_frame()
            except SipParseError:
                yield self.discard(), None
                return
            if frame is None:
                return
            yield frame

    def next_frame(self) -> tuple[bytes, Message] | None:
        """The next whole message and its raw bytes, None if more data is needed."""
        buf = self._buf
        skip = 0
        while skip < len(buf) and buf[skip] in (13, 10):  # keep-alive CRLFs
            skip += 1
        if skip:
            del buf[:skip]
            self._scanned = 0
        if not buf:
            return None
        if self._head is None:
            self._head = self._read_head(buf)
            if self._head is None:
                return None
        total, body_start, start, headers = self._head
        if len(buf) < total:
            return None  # wait for the rest of the body
        raw = bytes(buf[:total])
        try:
            msg = _build(start, headers, raw[body_start:])
        except SipParseError:
            # Framed by Content-Length but not a valid message (no Via, say): the stream is
            # still in step, so discard() drops this message only.
            self._bad_frame = total
            raise
        self._head = None
        del buf[:total]
        self._scanned = 0
        return raw, msg

    def _read_head(self, buf: bytearray) -> tuple[int, int, str, Headers] | None:
        """(message length, body offset, start line, headers) once the header section is
        in; None while it is still arriving."""
        self._check_start(buf)
        # Resume the search where the last one stopped (less 3 bytes of a split CRLFCRLF):
        # a peer dribbling a header byte by byte must not cost quadratic time.
        m = _END_OF_HEAD.search(buf, max(0, self._scanned - 3))
        if m is None:
            self._scanned = len(buf)
            if len(buf) > self.max_size:
                raise SipParseError(f"header section over {self.max_size} bytes")
            return None
        start, headers = _parse_head(bytes(buf[:m.start()]))
        length = _content_length(headers)
        if length is None:
            raise SipParseError("no Content-Length on a stream transport")
        total = m.end() + length
        if total > self.max_size:
            raise SipParseError(f"message of {total} bytes is over {self.max_size}")
        return total, m.end(), start, headers

    @staticmethod
    def _check_start(buf: bytearray) -> None:
        eol = buf.find(b"\n", 0, MAX_START_LINE + 1)
        if eol < 0:
            if len(buf) > MAX_START_LINE:
                raise SipParseError("no start line in the first "
                                    f"{MAX_START_LINE} bytes of the stream")
            # Not a whole line yet: reject early if the prefix cannot begin a start line.
            if not re.match(rb"^[A-Za-z0-9.!%*_+`'~/-]*(?: |$)", bytes(buf[:64])):
                raise SipParseError(f"not SIP: {bytes(buf[:40])!r}")
            return
        if not _START.match(bytes(buf[:eol])):
            raise SipParseError(f"bad start line: {bytes(buf[:min(eol, 60)])!r}")
