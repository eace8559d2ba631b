"""Hostile and broken SIP peers for tests: silent, garbage, 1xx forever, 401 loops.

Deliberately independent of sipkit's own parser (raw text), so a parser bug cannot make a peer
agree with it. Each runs in a thread on a loopback address the test picks, and counts what it saw.
"""

from __future__ import annotations

import re
import secrets
import socket
import threading
from collections.abc import Callable

Handler = Callable[[bytes], list[bytes]]


def _headers(data: bytes, *names: str) -> list[str]:
    lines = data.decode(errors="replace").split("\r\n")
    out = []
    for line in lines[1:]:
        if not line:
            break
        name = line.split(":", 1)[0].strip().lower()
        if name in names:
            out.append(line)
    return out


def reply(data: bytes, status: str, extra: list[str] = ()) -> bytes:
    """A response echoing Via/From/To/Call-ID/CSeq, as RFC 3261 §8.2.6.2 asks."""
    copied = _headers(data, "via", "v", "from", "f", "to", "t", "call-id", "i", "cseq")
    to_fixed = [h + ";tag=peer1" if h.lower().startswith(("to:", "t:")) and "tag=" not in h else h
                for h in copied]
    lines = [f"SIP/2.0 {status}", *to_fixed, *extra, "Content-Length: 0", "", ""]
    return "\r\n".join(lines).encode()


def method_of(data: bytes) -> str:
    return data.split(b" ", 1)[0].decode(errors="replace")


class UdpPeer:
    def __init__(self, ip: str, port: int, handler: Handler):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((ip, port))
        self.sock.settimeout(0.1)
        self.address = self.sock.getsockname()
        self.handler = handler
        self.received: list[bytes] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(2)
        self.sock.close()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                data, addr = self.sock.recvfrom(65535)
            except (socket.timeout, OSError):
                continue
            self.received.append(data)
            for out in self.handler(data):
                self.sock.sendto(out, addr)


def silent(_data: bytes) -> list[bytes]:
    return []


def garbage(_data: bytes) -> list[bytes]:
    return [b"\x16\x03\x01\x00\xa5HELLO this is not SIP\x00\xff"]


def trying_forever(data: bytes) -> list[bytes]:
    return [reply(data, "100 Trying")]


class AuthLoop:
    """OPTIONS -> 200; REGISTER -> 401 with a fresh nonce, forever. Counts credentialed tries."""

    def __init__(self):
        self.authenticated = 0

    def __call__(self, data: bytes) -> list[bytes]:
        if method_of(data) != "REGISTER":
            return [reply(data, "200 OK")]
        if re.search(rb"(?im)^(authorization|proxy-authorization)\s*:", data):
            self.authenticated += 1
        nonce = secrets.token_hex(8)
        return [reply(data, "401 Unauthorized",
                      [f'WWW-Authenticate: Digest realm="loop.test", nonce="{nonce}", '
                       'algorithm=MD5, qop="auth"'])]
