"""Build out-of-dialog requests with the fields RFC 3261 §8.1.1 requires."""

from __future__ import annotations

import secrets

from .headers import Headers
from .message import Request, Response

MAGIC_COOKIE = "z9hG4bK"  # RFC 3261 §8.1.1.7


def new_branch() -> str:
    return MAGIC_COOKIE + secrets.token_hex(8)


def new_tag() -> str:
    return secrets.token_hex(5)


def new_call_id(host: str) -> str:
    return f"{secrets.token_hex(10)}@{host}"


def build_request(method: str, request_uri: str, *, from_uri: str, to_uri: str, call_id: str,
                  cseq: int, via_host: str, via_port: int, transport: str,
                  branch: str | None = None, from_tag: str | None = None,
                  contact: str | None = None, expires: int | None = None,
                  extra: list[tuple[str, str]] = (), body: bytes = b"",
                  content_type: str | None = None, user_agent: str | None = "sipkit") -> Request:
    """An out-of-dialog request (OPTIONS, REGISTER, INVITE...). ``from_uri``/``to_uri`` are bare
    URIs; ``transport`` goes into the Via (UDP/TCP/TLS). Content-Length is set by to_bytes()."""
    host = f"[{via_host}]" if ":" in via_host and not via_host.startswith("[") else via_host
    h = Headers()
    # rport: ask the server to tell us the source port it saw (RFC 3581 §3).
    h.add("Via", f"SIP/2.0/{transport.upper()} {host}:{via_port};"
                 f"branch={branch or new_branch()};rport")
    h.add("Max-Forwards", "70")
    h.add("From", f"<{from_uri}>;tag={from_tag or new_tag()}")
    h.add("To", f"<{to_uri}>")
    h.add("Call-ID", call_id)
    h.add("CSeq", f"{cseq} {method}")
    if contact:
        h.add("Contact", contact)
    if expires is not None:
        h.add("Expires", str(expires))
    if user_agent:
        h.add("User-Agent", user_agent)
    for name, value in extra:
        h.add(name, value)
    if content_type:
        h.add("Content-Type", content_type)
    return Request(method, request_uri, h, body)


def response_to(request: Request, status: int, reason: str, server: str | None = None
                ) -> Response:
    """A stateless response (RFC 3261 §8.2.6.2): Via, From, To, Call-ID, CSeq copied."""
    h = Headers()
    for name in ("Via", "From", "To", "Call-ID", "CSeq"):
        for value in request.headers.get_all(name):
            h.add(name, value)
    if server:
        h.add("Server", server)
    return Response(status, reason, h)
