"""Just enough SDP (RFC 4566) to read an answer's media address and build an audio offer."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .errors import SipParseError

_PORT = re.compile(r"^[0-9]{1,5}$")
_DIRECTIONS = ("sendrecv", "sendonly", "recvonly", "inactive")
# RFC 3551 §6: static payload types an answer may use without an rtpmap line.
_STATIC = {"0": "PCMU/8000", "3": "GSM/8000", "8": "PCMA/8000", "9": "G722/8000",
           "18": "G729/8000"}


@dataclass
class Media:
    kind: str
    port: int
    proto: str
    formats: list[str]
    connection: str | None = None
    direction: str = "sendrecv"
    rtpmap: dict[str, str] = field(default_factory=dict)

    @property
    def codecs(self) -> list[str]:
        """Encodings in the order offered, e.g. ["PCMU/8000", "telephone-event/8000"]."""
        return [self.rtpmap.get(pt) or _STATIC.get(pt, pt) for pt in self.formats]


@dataclass
class Sdp:
    connection: str | None = None
    media: list[Media] = field(default_factory=list)

    def audio(self) -> Media | None:
        return next((m for m in self.media if m.kind == "audio"), None)


def parse_sdp(body: bytes) -> Sdp:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise SipParseError("SDP is not UTF-8") from None
    sdp = Sdp()
    current: Media | None = None
    session_dir = "sendrecv"
    for line in text.splitlines():
        if len(line) < 2 or line[1] != "=":
            continue
        key, value = line[0], line[2:].strip()
        if key == "c":
            parts = value.split()
            if len(parts) != 3:
                raise SipParseError(f"bad c= line: {value[:80]!r}")
            addr = parts[2].split("/")[0]
            if current is None:
                sdp.connection = addr
            else:
                current.connection = addr
        elif key == "m":
            parts = value.split()
            port = parts[1].split("/")[0] if len(parts) >= 4 else ""
            if not _PORT.match(port) or int(port) > 65535:
                raise SipParseError(f"bad m= line: {value[:80]!r}")
            current = Media(parts[0], int(port), parts[2], parts[3:], direction=session_dir)
            sdp.media.append(current)
        elif key == "a" and current is None:
            if value in _DIRECTIONS:  # session level: the default for every m= (RFC 4566 §6)
                session_dir = value
        elif key == "a":
            if value in _DIRECTIONS:
                current.direction = value
            elif value.startswith("rtpmap:"):
                pt, _, enc = value[7:].partition(" ")
                current.rtpmap[pt] = enc
    for m in sdp.media:
        m.connection = m.connection or sdp.connection
    return sdp


def audio_offer(ip: str, port: int, session_id: int = 1) -> bytes:
    family = "IP6" if ":" in ip else "IP4"
    return (f"v=0\r\no=sipkit {session_id} 1 IN {family} {ip}\r\ns=sipkit\r\n"
            f"c=IN {family} {ip}\r\nt=0 0\r\nm=audio {port} RTP/AVP 0 8 101\r\n"
            "a=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n"
            "a=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n").encode()
