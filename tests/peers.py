"""Hostile and broken SIP peers for tests: silent, garbage, 1xx forever, 401 loops.

Deliberately independent of sipkit's own parser (raw text), so a parser bug cannot make a peer
agree with it. Each runs in a thread on a loopback address the test picks, and counts what it saw.
"""

from __future__ import annotations

import re
import secrets
import shutil
import socket
import subprocess
import threading
from collections.abc import Callable
from contextlib import contextmanager

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


class _Background:
    """Runs ``_loop`` in a thread between ``with`` enter and exit, on ``self.sock``."""

    sock: socket.socket

    def _start(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(2)
        self.sock.close()

    def _loop(self) -> None:  # pragma: no cover - defined by subclasses
        raise NotImplementedError


class UdpPeer(_Background):
    def __init__(self, ip: str, port: int, handler: Handler):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((ip, port))
        self.sock.settimeout(0.1)
        self.address = self.sock.getsockname()
        self.handler = handler
        self.received: list[bytes] = []
        self._start()

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


class Registrar:
    """A scripted registrar (accepts any digest: it tests sipkit's flow, not the password).

    mode "min_expires": authenticated REGISTERs asking less than 3600 s get 423 Min-Expires.
    mode "stale": the first authenticated REGISTER gets 401 stale=true.
    mode "alg": answers as if a SIP ALG rewrote Via and Contact on the way, and lists a second
    device on the extension.
    """

    def __init__(self, mode: str):
        self.mode = mode
        self.authenticated = 0
        self.expires_seen: list[str] = []

    def __call__(self, data: bytes) -> list[bytes]:
        text = data.decode(errors="replace")
        if method_of(data) != "REGISTER":
            return [reply(data, "200 OK")]
        authed = re.search(r"(?im)^authorization\s*:", text) is not None
        expires = re.search(r"(?im)^expires\s*:\s*(\d+)", text).group(1)
        self.expires_seen.append(expires)
        challenge = ('WWW-Authenticate: Digest realm="peer.test", nonce="'
                     + secrets.token_hex(6) + '", qop="auth"')
        if not authed:
            return [reply(data, "401 Unauthorized", [challenge])]
        self.authenticated += 1
        if self.mode == "stale" and self.authenticated == 1:
            return [reply(data, "401 Unauthorized", [challenge + ", stale=true"])]
        if self.mode == "min_expires" and expires != "0" and int(expires) < 3600:
            return [reply(data, "423 Interval Too Brief", ["Min-Expires: 3600"])]
        contact = re.search(r"(?im)^contact\s*:\s*<([^>]+)>", text).group(1)
        if expires == "0":
            return [reply(data, "200 OK")]
        if self.mode == "alg":
            out = reply(data, "200 OK", [f"Contact: <{re.sub('@[^;:>]+:[0-9]+', '@203.0.113.9:5999', contact)}>;expires={expires}",
                                         "Contact: <sip:100@192.0.2.50:5060>;expires=120"])
            # the ALG also rewrote our Via sent-by on the way back
            return [re.sub(rb"(Via: SIP/2\.0/UDP )[^;]+", rb"\g<1>203.0.113.9:5999", out, count=1)]
        return [reply(data, "200 OK", [f"Contact: <{contact}>;expires={expires}"])]


class TlsSipPeer(_Background):
    """A TLS server answering every SIP request 200 OK (with a Date header), on a certificate
    the test chooses: for expiry and validity verdicts."""

    def __init__(self, ip: str, certfile: str, keyfile: str):
        import ssl

        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(certfile, keyfile)
        self.sock = socket.create_server((ip, 0))
        self.sock.settimeout(0.1)
        self.address = self.sock.getsockname()
        self._start()

    def _serve(self, conn) -> None:
        import email.utils

        try:
            with self.ctx.wrap_socket(conn, server_side=True) as tls:
                tls.settimeout(2)
                while True:
                    data = tls.recv(65535)
                    if not data:
                        return
                    date = "Date: " + email.utils.formatdate(usegmt=True)
                    tls.sendall(reply(data, "200 OK", [date]))
        except OSError:
            return

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except (socket.timeout, OSError):
                continue
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()


@contextmanager
def silent_sipp_uas(lab, host: int, control_port: int, directory):
    """A real SIPp UAS on the lab's ``.host`` that answers calls but never sends RTP: the far
    end of a one-way-audio call. Yields its IP once it answers OPTIONS."""
    from sipkit.lab.manager import wait_sip

    ip = lab.ip(host)
    scen = directory / "uas.xml"
    scen.write_text((lab.directory / "echo" / "echo_uas.xml").read_text())
    err = directory / "sipp.err"
    with open(err, "w") as errf:
        proc = subprocess.Popen([shutil.which("sipp"), "-i", ip, "-p", "5060", "-mi", ip, "-mp",
                                 "6100", "-aa", "-ci", ip, "-cp", str(control_port), "-nostdin",
                                 "-sf", str(scen)], stdout=subprocess.DEVNULL, stderr=errf,
                                cwd=directory)
    try:
        if not wait_sip(ip, 5060, 10.0, alive=lambda: proc.poll() is None):
            raise RuntimeError(f"the silent SIPp UAS on {ip} did not answer (exit "
                               f"{proc.poll()}): {err.read_text()[-500:]}")
        yield ip
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
