"""A hostile registrar for the fuzz tests: plausible-but-odd answers, drawn per seed.

Test-side peer, not product code, and deliberately independent of sipkit's parser (raw text
and regular expressions), so a parser bug cannot make the peer agree with it. One seed fixes
every decision (``Plan``); the peer then keeps the books the invariants are checked against:

- ``auth_attempts``: authenticated requests no 2xx had yet proven (REGISTERs asking for a
  binding, and removals before any 2xx), and ``allowance``: how many the lockout rule permits
  (1, plus one after each ``stale=true`` and each ``423`` the peer sent);
- ``bound`` / ``removal_asked``: a binding it granted is still there, and whether sipkit asked
  to remove it afterwards (it must, whatever went wrong; a removal the peer then drops on TCP
  is the peer's doing);
- ``digest_values``: every ``response``/``cnonce`` sipkit sent, which no output may show.

UDP (one socket) or TCP (one thread per connection, Content-Length framing).
"""

from __future__ import annotations

import random
import re
import secrets
import socket
import threading
from dataclasses import dataclass, field, replace

# -- what a seed can choose --------------------------------------------------------------

GOOD_CHALLENGES = [
    'Digest realm="hostile.test", nonce="{n}", qop="auth"',
    'Digest realm="hostile.test", nonce="{n}", algorithm=MD5',
    'Digest realm="hostile.test", nonce="{n}", algorithm=SHA-256, qop="auth,auth-int"',
    'Digest realm="hostile.test", nonce="{n}", algorithm=SHA-512-256, qop="auth"',
    'Digest realm="hostile.test", nonce="{n}", algorithm=MD5-sess, qop="auth", opaque="o"',
    'Digest realm="hostile.test",nonce="{n}",qop=auth,algorithm=md5',
]
BAD_CHALLENGES = [
    'Digest realm="hostile.test", nonce="{n}", algorithm=SHA-1',
    'Digest realm="hostile.test", nonce="{n}", algorithm=AKAv1-MD5',
    'Digest realm="hostile.test", nonce="{n}", algorithm=ＭＤ５',
    'Digest realm="hostile.test", algorithm=MD5',  # no nonce
    'Digest realm="hostile.test", nonce',  # broken parameters
    'Digest realm="hostile.test", nonce="{n}", qop="auth-conf"',
    'Basic realm="hostile.test"',
    "Digest",
    'Digest realm="' + "r" * 3000 + '", nonce="{n}"',
]
# Answers to the unauthenticated REGISTER.
FIRST = (["challenge"] * 12 + ["bad_challenge"] * 3 + ["two_challenges", "proxy_challenge",
         "ok_without_auth", "403", "404", "503", "500", "trying_then_challenge", "silence",
         "garbage"])
# Answers to an authenticated REGISTER (one per attempt; the last one repeats).
AUTH = (["ok"] * 10 + ["stale_ok", "stale_bad", "stale_broken", "423", "401_plain",
        "401_no_challenge", "401_no_nonce", "401_broken", "407_empty", "403", "403_reflect",
        "404", "500", "503", "silence", "garbage"])
MIN_EXPIRES = ["3600", "120", "²", "⁶⁰", "", "99999999999", "30", "-1", "3600 (one hour)",
               "86401"]
RETRY_AFTER = ["120", "²", "⁶⁰", "abc", "120 (busy);duration=60", "", "99999999999"]
EXPIRES_PARAM = ["60", "3600", "²", "⁶⁰", "", "99999999999", "-5", "0x10", "５"]
# (Never the branch: a 200 sipkit cannot match is a timeout to it, so no binding it knows of.)
VIA_TOP = ["keep", "bare_rport", "rport_text", "rport_unicode", "rport_big", "received_text",
           "received_v6_broken", "received_v6", "nat", "sent_by_changed"]
VIA_EXTRA = ["Via: garbage", "Via: SIP/2.0/UDP [::1", "Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9",
             "Via: SIP/2.0/UDP h:99999;branch=z9", "Via: ,,,"]
CONTACT_EXTRA = ["Contact: <<<", "Contact: *", "Contact: <sip:200@192.0.2.50:5060>;expires=120",
                 'Contact: "a,b" <sip:300@192.0.2.51>;expires=⁶⁰', "Contact: sip:",
                 "Contact: <sip:[::1>"]
REFLECT = ["reason", "warning", "header", "server_upper"]
BREAK = ["none"] * 5 + ["close", "drop_next", "garbage_next", "silent_after"]


@dataclass
class Plan:
    first: str
    challenge: str
    auth: list[str]
    min_expires: str
    retry_after: str
    contact_expires: str | None  # None: our Contact is not echoed back
    header_expires: str | None
    via_top: str
    via_extra: list[str]
    contact_extra: list[str]
    duplicate: list[str]
    overlong: int  # bytes of one long header in the 200 (0: none)
    reflect: list[str]
    brk: str
    unregister_challenge: bool
    stale_challenge: str  # what "stale_bad" offers: an algorithm sipkit cannot answer

    @classmethod
    def draw(cls, rng: random.Random) -> Plan:
        def some(options, most=2):
            return rng.sample(options, rng.randint(0, most)) if rng.random() < 0.4 else []

        auth = [rng.choice(AUTH)]
        if auth[0] in ("stale_ok", "423"):  # the retry gets an answer of its own
            auth.append(rng.choice(["ok"] * 4 + ["403", "423", "silence", "stale_ok"]))
        return cls(
            first=rng.choice(FIRST),
            challenge=rng.choice(GOOD_CHALLENGES),
            auth=auth,
            min_expires=rng.choice(MIN_EXPIRES),
            retry_after=rng.choice(RETRY_AFTER),
            contact_expires=rng.choice(EXPIRES_PARAM + [None]),
            header_expires=rng.choice([None, None, "60", "⁶⁰", "abc", "3600"]),
            via_top=rng.choice(VIA_TOP),
            via_extra=some(VIA_EXTRA),
            contact_extra=some(CONTACT_EXTRA, 3),
            duplicate=some(["To", "Call-ID", "Expires", "Server", "Content-Length"], 2),
            overlong=rng.choice([0] * 6 + [1000, 8000, 40000]),
            reflect=some(REFLECT, 2),
            brk=rng.choice(BREAK),
            unregister_challenge=rng.random() < 0.3,
            stale_challenge=rng.choice(BAD_CHALLENGES[:3]),
        )


# -- raw SIP text, without sipkit ----------------------------------------------------------

def _lines(data: bytes) -> list[str]:
    head = data.split(b"\r\n\r\n", 1)[0].decode("utf-8", "replace")
    return head.split("\r\n")


def _header(lines: list[str], *names: str) -> list[str]:
    out = []
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() in names:
            out.append(value.strip())
    return out


@dataclass
class Books:
    auth_attempts: int = 0
    allowance: int = 1
    proven: bool = False
    bound: bool = False
    removal_asked: bool = False
    bindings_made: int = 0
    removed: int = 0
    requests: int = 0
    responses: int = 0
    digest_values: set[str] = field(default_factory=set)

    def violations(self) -> list[str]:
        out = []
        if self.auth_attempts > self.allowance:
            out.append(f"{self.auth_attempts} unproven authenticated requests, "
                       f"{self.allowance} allowed")
        if self.bound and not self.removal_asked:
            out.append("the test binding was left on the registrar (no removal asked)")
        return out


class HostileRegistrar:
    def __init__(self, seed: int, ip: str, transport: str = "udp", **plan):
        """``plan`` overrides the seed's choices (a regression test scripts one case)."""
        self.seed = seed
        self.rng = random.Random(seed)
        self.plan = replace(Plan.draw(self.rng), **plan)
        self.transport = transport
        self.books = Books()
        self.auth_seen = 0
        self.unreg_challenged = False
        self.dropping = 0
        self._dropped = False  # this request was dropped on purpose: its retransmission is new
        self.answered: dict[tuple, list[tuple[bytes, bool]]] = {}
        self.silent = False
        self.lock = threading.Lock()
        self.last_digest: dict[str, str] = {}
        kind = socket.SOCK_DGRAM if transport == "udp" else socket.SOCK_STREAM
        self.sock = socket.socket(socket.AF_INET, kind)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((ip, 0))
        if transport != "udp":
            self.sock.listen(16)
        self.sock.settimeout(0.05)
        self.address = self.sock.getsockname()
        self.granted = threading.Event()  # set once a binding was granted
        self.removing = threading.Event()  # set once a removal of a granted binding arrived
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    # -- life cycle ----------------------------------------------------------------------
    def __enter__(self):
        t = threading.Thread(target=self._udp_loop if self.transport == "udp" else self._accept,
                             daemon=True)
        t.start()
        self._threads.append(t)
        return self

    def __exit__(self, *exc):
        self._stop.set()
        for t in list(self._threads):
            t.join(2)
        self.sock.close()

    def _udp_loop(self) -> None:
        while not self._stop.is_set():
            try:
                data, addr = self.sock.recvfrom(65535)
            except (TimeoutError, OSError):
                continue
            for out, _close in self.handle(data):
                try:
                    self.sock.sendto(out, addr)
                except OSError:
                    pass

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except (TimeoutError, OSError):
                continue
            t = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            t.start()
            self._threads.append(t)

    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(0.05)
        buf = b""
        with conn:
            while not self._stop.is_set():
                try:
                    chunk = conn.recv(65535)
                except TimeoutError:
                    continue
                except OSError:
                    return
                if not chunk:
                    return
                buf += chunk
                while b"\r\n\r\n" in buf:
                    head, rest = buf.split(b"\r\n\r\n", 1)
                    m = re.search(rb"(?im)^(?:content-length|l)\s*:\s*([0-9]+)", head)
                    length = int(m.group(1)) if m else 0
                    if len(rest) < length:
                        break
                    msg, buf = head + b"\r\n\r\n" + rest[:length], rest[length:]
                    for out, close in self.handle(msg):
                        try:
                            conn.sendall(out)
                        except OSError:
                            return
                        if close:
                            return

    # -- the registrar -------------------------------------------------------------------
    def handle(self, data: bytes) -> list[tuple[bytes, bool]]:
        """Answers to one request: (bytes, close the connection after them)."""
        with self.lock:
            # A retransmission (same branch and CSeq) belongs to the same server
            # transaction: the same answer again, not a new attempt (RFC 3261 §17.2.2).
            lines = _lines(data)
            via = (_header(lines, "via", "v") or [""])[0]
            branch = re.search(r"branch=([^;,\s]+)", via)
            key = (branch.group(1) if branch else None, tuple(_header(lines, "cseq")))
            if key[0] and key in self.answered:
                out = self.answered[key]
            else:
                out = self._handle(data)
                if key[0] and not self._dropped:
                    self.answered[key] = out
            self._dropped = False
            self.books.responses += len(out)
            return out

    def _handle(self, data: bytes) -> list[tuple[bytes, bool]]:
        lines = _lines(data)
        method = lines[0].split(" ", 1)[0]
        self.books.requests += 1
        if method != "REGISTER":
            return [(self._reply(data, "200 OK"), False)]
        auth = _header(lines, "authorization", "proxy-authorization")
        for value in auth:
            for m in re.finditer(r'(response|cnonce)="?([0-9A-Za-z]+)', value):
                self.books.digest_values.add(m.group(2))
                self.last_digest[m.group(1)] = m.group(2)
        expires = (_header(lines, "expires") or ["3600"])[0]
        removal = expires == "0"
        if removal:
            return self._removal(data, bool(auth))
        if self.dropping:
            self.dropping -= 1
            self._dropped = True
            return []
        if self.silent:
            return []
        if not auth:
            return self._first(data)
        self.books.auth_attempts += 1
        step = self.plan.auth[min(self.auth_seen, len(self.plan.auth) - 1)]
        self.auth_seen += 1
        return self._authenticated(data, step)

    def _removal(self, data: bytes, authed: bool) -> list[tuple[bytes, bool]]:
        if authed and not self.books.proven:
            self.books.auth_attempts += 1
        if self.books.bound:
            self.books.removal_asked = True
            self.removing.set()
        if self.dropping:  # sipkit retransmits over UDP; on TCP this one is lost
            self.dropping -= 1
            self._dropped = True
            return []
        if self.plan.unregister_challenge and not self.unreg_challenged:
            self.unreg_challenged = True
            return [(self._reply(data, "401 Unauthorized", [self._challenge(
                GOOD_CHALLENGES[0])]), False)]
        if self.books.bound:
            self.books.bound = False
            self.books.removed += 1
        return [(self._reply(data, "200 OK"), False)]

    def _challenge(self, template: str, header: str = "WWW-Authenticate", extra: str = "") -> str:
        return f"{header}: " + template.replace("{n}", secrets.token_hex(8)) + extra

    def _first(self, data: bytes) -> list[tuple[bytes, bool]]:
        p, r = self.plan, self.rng
        if p.first == "challenge":
            return [(self._reply(data, "401 Unauthorized", [self._challenge(p.challenge)]), False)]
        if p.first == "bad_challenge":
            return [(self._reply(data, "401 Unauthorized",
                                 [self._challenge(r.choice(BAD_CHALLENGES))]), False)]
        if p.first == "two_challenges":
            return [(self._reply(data, "401 Unauthorized", [
                self._challenge(r.choice(BAD_CHALLENGES)), self._challenge(p.challenge)]), False)]
        if p.first == "proxy_challenge":
            return [(self._reply(data, "407 Proxy Authentication Required", [
                self._challenge(p.challenge, "Proxy-Authenticate")]), False)]
        if p.first == "ok_without_auth":
            return self._granted(data, authed=False)
        if p.first == "trying_then_challenge":
            return [(self._reply(data, "100 Trying"), False),
                    (self._reply(data, "401 Unauthorized", [self._challenge(p.challenge)]), False)]
        if p.first in ("403", "404", "500"):
            return [(self._reply(data, f"{p.first} Nope"), False)]
        if p.first == "503":
            return [(self._reply(data, "503 Service Unavailable",
                                 [f"Retry-After: {p.retry_after}"]), False)]
        if p.first == "garbage":
            return [(b"SIP/2.0 401\r\nVia: \r\n\r\n\x00\xff", False)]
        return []  # silence

    def _authenticated(self, data: bytes, step: str) -> list[tuple[bytes, bool]]:
        p = self.plan
        if step == "ok":
            return self._granted(data, authed=True)
        if step.startswith("stale"):
            self.books.allowance += 1  # RFC 7616 §3.3: the password was right
            template = {"stale_ok": p.challenge, "stale_bad": p.stale_challenge,
                        "stale_broken": 'Digest realm="hostile.test", stale=true'}[step]
            return [(self._reply(data, "401 Unauthorized", [self._challenge(
                template, extra="" if step == "stale_broken" else ", stale=true")]), False)]
        if step == "423":
            self.books.allowance += 1  # RFC 3261 §10.3: expiry is checked after auth
            return [(self._reply(data, "423 Interval Too Brief",
                                 [f"Min-Expires: {p.min_expires}"]), False)]
        if step == "401_plain":
            return [(self._reply(data, "401 Unauthorized", [self._challenge(p.challenge)]), False)]
        if step == "401_no_challenge":
            return [(self._reply(data, "401 Unauthorized"), False)]
        if step == "401_no_nonce":
            return [(self._reply(data, "401 Unauthorized", [self._challenge(BAD_CHALLENGES[3])]),
                     False)]
        if step == "401_broken":
            return [(self._reply(data, "401 Unauthorized", [self._challenge(BAD_CHALLENGES[4])]),
                     False)]
        if step == "407_empty":
            return [(self._reply(data, "407 Proxy Authentication Required",
                                 ["Proxy-Authenticate: "]), False)]
        if step == "403_reflect":
            resp = self.last_digest.get("response", "")
            return [(self._reply(data, f"403 Forbidden {resp}",
                                 [f'Warning: 399 hostile "bad response {resp}"']), False)]
        if step in ("403", "404", "500"):
            return [(self._reply(data, f"{step} No"), False)]
        if step == "503":
            return [(self._reply(data, "503 Busy", [f"Retry-After: {p.retry_after}"]), False)]
        if step == "garbage":
            return [(b"\x16\x03\x01garbage\r\n\r\n", False)]
        return []  # silence

    def _granted(self, data: bytes, authed: bool) -> list[tuple[bytes, bool]]:
        """The 2xx that creates a binding, dressed per the plan, then the plan's break."""
        p = self.plan
        self.books.bound = True
        self.books.removal_asked = False
        self.books.bindings_made += 1
        if authed:
            self.books.proven = True
        lines = _lines(data)
        contact = re.search(r"<([^>]+)>", (_header(lines, "contact", "m") or [""])[0])
        extra = []
        if contact and p.contact_expires is not None:
            extra.append(f"Contact: <{contact.group(1)}>" + (f";expires={p.contact_expires}"
                                                             if p.contact_expires else ""))
        extra += p.contact_extra
        if p.header_expires is not None:
            extra.append(f"Expires: {p.header_expires}")
        extra += p.via_extra
        for name in p.duplicate:
            extra.append({"To": "To: <sip:dup@hostile.test>;tag=dup", "Call-ID": "Call-ID: dup",
                          "Expires": "Expires: 7", "Server": "Server: dup",
                          "Content-Length": "Content-Length: 0"}[name])
        if p.overlong:
            extra.append("X-Long: " + "a" * p.overlong)
        resp = self.last_digest.get("response", "")
        cnonce = self.last_digest.get("cnonce", "")
        reason = "OK"
        for how in p.reflect if authed else ():
            if how == "reason":
                reason = f"OK {resp}"
            elif how == "warning":
                extra.append(f'Warning: 399 hostile "{resp} {cnonce}"')
            elif how == "header":
                extra.append(f"X-Echo: {cnonce or resp}")
            elif how == "server_upper":
                extra.append(f"Server: hostile {resp.upper()}")
        out = self._reply(data, f"200 {reason}", extra, via=p.via_top)
        self.granted.set()
        if p.brk == "close":
            return [(out, True)]
        if p.brk == "drop_next":
            self.dropping = 1
        elif p.brk == "garbage_next":
            return [(out, False), (b"garbage after the 200\r\n\r\n", False)]
        elif p.brk == "silent_after":
            self.silent = True  # silent to everything but the removal
        return [(out, False)]

    def _reply(self, data: bytes, status: str, extra: list[str] = (), via: str = "keep") -> bytes:
        """A response echoing Via/From/To/Call-ID/CSeq (RFC 3261 §8.2.6.2), the top Via
        mutated as ``via`` says (the branch kept, or the transaction could not match)."""
        out = [f"SIP/2.0 {status}"]
        first_via = True
        for line in _lines(data)[1:]:
            name = line.split(":", 1)[0].strip().lower()
            if name in ("via", "v") and first_via:
                first_via = False
                out.append(_mutate_via(line, via))
            elif name in ("via", "v", "from", "f", "call-id", "i", "cseq"):
                out.append(line)
            elif name in ("to", "t"):
                out.append(line if "tag=" in line else line + ";tag=hostile")
        out += list(extra)
        out += ["Content-Length: 0", "", ""]
        return "\r\n".join(out).encode("utf-8")


def _mutate_via(line: str, how: str) -> str:
    rport = re.compile(r";rport(=[^;]*)?")
    if how == "bare_rport":
        return rport.sub("", line) + ";rport"
    if how == "rport_text":
        return rport.sub("", line) + ";rport=abc"
    if how == "rport_unicode":
        return rport.sub("", line) + ";rport=⁵⁰⁶⁰"
    if how == "rport_big":
        return rport.sub("", line) + ";rport=99999"
    if how == "received_text":
        return line + ";received=not-an-address"
    if how == "received_v6_broken":
        return line + ";received=[::1"
    if how == "received_v6":
        return line + ";received=::1"
    if how == "nat":
        return rport.sub("", line) + ";received=203.0.113.7;rport=40001"
    if how == "sent_by_changed":
        return re.sub(r"(SIP/2\.0/[A-Z]+ )[^;]+", r"\g<1>198.51.100.9:5999", line)
    return line
