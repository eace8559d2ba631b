"""HTTP Digest for SIP: RFC 2617, RFC 7616 (SHA-256, SHA-512-256, -sess), RFC 8760 (SIP).

Pure functions: parse the challenges of a 401/407, pick the strongest we can answer, compute
the Authorization value. The caller never logs the result (redact.py masks ``response=``).
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from .errors import DigestError
from .message import Response


def _hasher(name: str) -> Callable[[bytes], str]:
    return lambda data: hashlib.new(name, data).hexdigest()


# RFC 7616 §3.2 / RFC 8760 §2: the algorithms; SHA-512-256 is SHA-512/256 (FIPS 180-4 §6.7),
# not a truncated SHA-512.
_HASHES: dict[str, Callable[[bytes], str]] = {
    "MD5": _hasher("md5"),
    "SHA-256": _hasher("sha256"),
    "SHA-512-256": _hasher("sha512_256"),
}
# RFC 8760 §2.4: a UAC picks the strongest algorithm it supports.
_STRENGTH = {"MD5": 1, "SHA-256": 2, "SHA-512-256": 3}
_QOPS = ("auth", "auth-int")

# auth-param = token "=" ( token / quoted-string ), comma-separated, empty elements allowed
_PARAM = re.compile(r'[ \t]*([A-Za-z0-9_-]+)[ \t]*=[ \t]*("((?:[^"\\]|\\.)*)"|[^,\s"]*)[ \t]*'
                    r'(?:,[ \t,]*|$)')
_UNESCAPE = re.compile(r"\\(.)")


@dataclass
class Challenge:
    scheme: str
    realm: str
    nonce: str
    opaque: str | None = None
    algorithm: str | None = None  # as offered; None means MD5 (RFC 2617 §3.2.1)
    qop: list[str] = field(default_factory=list)
    stale: bool = False
    domain: str | None = None
    header: str = "WWW-Authenticate"  # or "Proxy-Authenticate" (a 407's challenge)

    @property
    def base_algorithm(self) -> str:
        """MD5, SHA-256, SHA-512-256 (or whatever else was offered), without -sess."""
        alg = (self.algorithm or "MD5").upper()
        return alg[:-5] if alg.endswith("-SESS") else alg

    @property
    def sess(self) -> bool:
        return (self.algorithm or "").upper().endswith("-SESS")

    @property
    def supported(self) -> bool:
        """Digest, a known algorithm, and no qop or one we can do (auth / auth-int)."""
        return (self.scheme.lower() == "digest" and self.base_algorithm in _HASHES
                and (not self.qop or any(q in _QOPS for q in self.qop)))


def parse_challenge(value: str, header: str = "WWW-Authenticate") -> Challenge:
    """One WWW-Authenticate / Proxy-Authenticate value; DigestError if malformed."""
    parts = value.strip().split(None, 1)
    if not parts:
        raise DigestError(f"empty {header}")
    scheme, rest = parts[0], (parts[1] if len(parts) > 1 else "")
    params: dict[str, str] = {}
    pos = 0
    rest = rest.strip().lstrip(",")
    while pos < len(rest):
        m = _PARAM.match(rest, pos)
        if not m or m.end() == pos:
            raise DigestError(f"malformed {header} parameters")
        quoted = m.group(3)
        params[m.group(1).lower()] = (_UNESCAPE.sub(r"\1", quoted) if quoted is not None
                                      else m.group(2))
        pos = m.end()
    if "realm" not in params or "nonce" not in params:
        raise DigestError(f"{header} without realm or nonce")
    qop = [q.strip().lower() for q in params.get("qop", "").split(",") if q.strip()]
    return Challenge(scheme=scheme, realm=params["realm"], nonce=params["nonce"],
                     opaque=params.get("opaque"), algorithm=params.get("algorithm"), qop=qop,
                     stale=params.get("stale", "").lower() == "true",
                     domain=params.get("domain"), header=header)


def parse_challenges(resp: Response) -> list[Challenge]:
    """Every Digest challenge of a 401/407, in order (RFC 8760 §2.4: a server may offer one
    per algorithm). A malformed one is skipped when others parse; DigestError if none does."""
    out: list[Challenge] = []
    errors: list[str] = []
    for header in ("WWW-Authenticate", "Proxy-Authenticate"):
        for value in resp.headers.get_all(header):
            if not value.lower().startswith("digest"):
                continue
            try:
                out.append(parse_challenge(value, header))
            except DigestError as exc:
                errors.append(str(exc))
    if not out:
        what = getattr(resp, "status", "message")
        raise DigestError(errors[0] if errors else f"{what} without a Digest challenge")
    return out


def pick_strongest(challenges: list[Challenge]) -> Challenge:
    """SHA-512-256 > SHA-256 > MD5 (RFC 8760 §2.4); at equal strength prefer one with qop
    (cnonce protects against chosen-plaintext) and plain over -sess. Order breaks ties."""
    usable = [c for c in challenges if c.supported]
    if not usable:
        offered = ", ".join(sorted({c.algorithm or "MD5" for c in challenges})) or "nothing"
        raise DigestError(f"no supported digest algorithm offered ({offered})")
    return max(usable, key=lambda c: (_STRENGTH[c.base_algorithm], bool(c.qop), not c.sess))


def _q(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def digest_response(ch: Challenge, *, method: str, uri: str, username: str, password: str,
                    body: bytes = b"", cnonce: str | None = None, nc: int = 1,
                    qop: str | None = None) -> str:
    """The ``response`` value (RFC 7616 §3.4.1; RFC 2617 §3.2.2 without qop)."""
    if ch.base_algorithm not in _HASHES:
        raise DigestError(f"unsupported digest algorithm {ch.algorithm}")
    if (qop or ch.sess) and cnonce is None:
        raise DigestError("qop and -sess need a cnonce")
    h = _HASHES[ch.base_algorithm]
    ha1 = h(f"{username}:{ch.realm}:{password}".encode())
    if ch.sess:  # §3.4.2: A1 = H(user:realm:pass):nonce:cnonce
        ha1 = h(f"{ha1}:{ch.nonce}:{cnonce}".encode())
    a2 = f"{method}:{uri}"
    if qop == "auth-int":  # §3.4.3: A2 adds H(entity-body), the empty body included
        a2 += ":" + h(body)
    ha2 = h(a2.encode())
    if qop:
        return h(f"{ha1}:{ch.nonce}:{nc:08x}:{cnonce}:{qop}:{ha2}".encode())
    return h(f"{ha1}:{ch.nonce}:{ha2}".encode())


def authorization(ch: Challenge, *, method: str, uri: str, username: str, password: str,
                  body: bytes = b"", cnonce: str | None = None, nc: int = 1) -> tuple[str, str]:
    """(header name, value) answering ``ch``: Authorization for 401, Proxy-Authorization for 407.
    ``uri`` must be the Request-URI exactly as sent (§22.4)."""
    if not ch.supported:
        raise DigestError(f"cannot answer {ch.scheme} {ch.algorithm or 'MD5'} "
                          f"qop={','.join(ch.qop) or '-'}")
    qop = None
    if ch.qop:
        # Prefer auth; auth-int only when it is all that is offered (it needs the body).
        qop = "auth" if "auth" in ch.qop else "auth-int"
    if (qop or ch.sess) and cnonce is None:
        cnonce = os.urandom(12).hex()
    resp = digest_response(ch, method=method, uri=uri, username=username, password=password,
                           body=body, cnonce=cnonce, nc=nc, qop=qop)
    parts = [f"username={_q(username)}", f"realm={_q(ch.realm)}", f"nonce={_q(ch.nonce)}",
             f"uri={_q(uri)}", f"response={_q(resp)}"]
    if ch.algorithm:
        parts.append(f"algorithm={ch.algorithm}")
    if cnonce is not None and (qop or ch.sess):
        parts.append(f"cnonce={_q(cnonce)}")
    if ch.opaque is not None:
        parts.append(f"opaque={_q(ch.opaque)}")
    if qop:
        parts += [f"qop={qop}", f"nc={nc:08x}"]
    name = "Proxy-Authorization" if ch.header == "Proxy-Authenticate" else "Authorization"
    return name, "Digest " + ", ".join(parts)
