"""HTTP Digest for SIP: RFC 2617, RFC 7616 (SHA-256, SHA-512-256, -sess), RFC 8760 (SIP).

Pure functions: parse the challenges of a 401/407, pick the strongest we can answer, compute
the Authorization value. The caller never logs the result (redact.py masks ``response=``).
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass, field

from .errors import DigestError
from .message import Response


def _sha512_256(data: bytes) -> str:
    return hashlib.new("sha512_256", data).hexdigest()


_HASHES = {
    "MD5": lambda b: hashlib.md5(b).hexdigest(),  # noqa: S324 - the protocol's choice
    "SHA-256": lambda b: hashlib.sha256(b).hexdigest(),
    "SHA-512-256": _sha512_256,
}
# RFC 8760 §2.4: a UAC picks the strongest algorithm it supports.
_STRENGTH = {"MD5": 1, "SHA-256": 2, "SHA-512-256": 3}

_PARAM = re.compile(r'\s*([A-Za-z0-9_-]+)\s*=\s*("((?:[^"\\]|\\.)*)"|[^,\s]*)\s*(?:,|$)')


@dataclass
class Challenge:
    scheme: str
    realm: str
    nonce: str
    algorithm: str | None = None  # as offered; None means MD5 (RFC 2617 §3.2.1)
    qop: list[str] = field(default_factory=list)
    opaque: str | None = None
    stale: bool = False
    domain: str | None = None
    header: str = "WWW-Authenticate"

    @property
    def base_algorithm(self) -> str:
        return (self.algorithm or "MD5").upper().removesuffix("-SESS")

    @property
    def sess(self) -> bool:
        return (self.algorithm or "").upper().endswith("-SESS")

    @property
    def supported(self) -> bool:
        return self.scheme.lower() == "digest" and self.base_algorithm in _HASHES


def parse_challenge(value: str, header: str = "WWW-Authenticate") -> Challenge:
    scheme, _, rest = value.strip().partition(" ")
    params: dict[str, str] = {}
    pos = 0
    rest = rest.strip()
    while pos < len(rest):
        m = _PARAM.match(rest, pos)
        if not m:
            raise DigestError(f"malformed {header} parameters")
        raw = m.group(3) if m.group(3) is not None else m.group(2)
        params[m.group(1).lower()] = raw.replace('\\"', '"')
        pos = m.end()
    if "realm" not in params or "nonce" not in params:
        raise DigestError(f"{header} without realm or nonce")
    qop = [q.strip().lower() for q in params.get("qop", "").split(",") if q.strip()]
    return Challenge(scheme=scheme, realm=params["realm"], nonce=params["nonce"],
                     algorithm=params.get("algorithm"), qop=qop, opaque=params.get("opaque"),
                     stale=params.get("stale", "").lower() == "true", domain=params.get("domain"),
                     header=header)


def parse_challenges(resp: Response) -> list[Challenge]:
    out = []
    for header in ("WWW-Authenticate", "Proxy-Authenticate"):
        for value in resp.headers.get_all(header):
            if value.lower().startswith("digest"):
                out.append(parse_challenge(value, header))
    if not out:
        raise DigestError(f"{resp.status} without a Digest challenge")
    return out


def pick_strongest(challenges: list[Challenge]) -> Challenge:
    usable = [c for c in challenges if c.supported]
    if not usable:
        offered = ", ".join(sorted({c.algorithm or "MD5" for c in challenges}))
        raise DigestError(f"no supported digest algorithm offered ({offered})")
    return max(usable, key=lambda c: _STRENGTH[c.base_algorithm])


def _q(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def digest_response(ch: Challenge, *, method: str, uri: str, username: str, password: str,
                    body: bytes = b"", cnonce: str | None = None, nc: int = 1,
                    qop: str | None = None) -> str:
    """The ``response`` value (RFC 7616 §3.4.1)."""
    h = _HASHES[ch.base_algorithm]
    ha1 = h(f"{username}:{ch.realm}:{password}".encode())
    if ch.sess:
        ha1 = h(f"{ha1}:{ch.nonce}:{cnonce}".encode())
    a2 = f"{method}:{uri}"
    if qop == "auth-int":
        a2 += ":" + h(body)
    ha2 = h(a2.encode())
    if qop:
        return h(f"{ha1}:{ch.nonce}:{nc:08x}:{cnonce}:{qop}:{ha2}".encode())
    return h(f"{ha1}:{ch.nonce}:{ha2}".encode())


def authorization(ch: Challenge, *, method: str, uri: str, username: str, password: str,
                  body: bytes = b"", cnonce: str | None = None, nc: int = 1) -> tuple[str, str]:
    """(header name, value) answering ``ch``: Authorization for 401, Proxy-Authorization for 407."""
    if not ch.supported:
        raise DigestError(f"cannot answer {ch.scheme} {ch.algorithm}")
    qop = None
    if ch.qop:
        # RFC 7616 §3.4: prefer auth; auth-int only if it is all that is offered.
        qop = "auth" if "auth" in ch.qop else ("auth-int" if "auth-int" in ch.qop else None)
        if qop is None:
            raise DigestError(f"unsupported qop {','.join(ch.qop)}")
    if (qop or ch.sess) and cnonce is None:
        cnonce = os.urandom(8).hex()
    resp = digest_response(ch, method=method, uri=uri, username=username, password=password,
                           body=body, cnonce=cnonce, nc=nc, qop=qop)
    parts = [f"username={_q(username)}", f"realm={_q(ch.realm)}", f"nonce={_q(ch.nonce)}",
             f"uri={_q(uri)}", f"response={_q(resp)}"]
    if ch.algorithm:
        parts.append(f"algorithm={ch.algorithm}")
    if ch.opaque is not None:
        parts.append(f"opaque={_q(ch.opaque)}")
    if qop:
        parts += [f"qop={qop}", f"nc={nc:08x}", f"cnonce={_q(cnonce or '')}"]
    name = "Proxy-Authorization" if ch.header == "Proxy-Authenticate" else "Authorization"
    return name, "Digest " + ", ".join(parts)
