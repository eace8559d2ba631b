"""What the SIP checks share: opening a connection to a target, building requests, recording
every message as (redacted) evidence."""

from __future__ import annotations

import re
import ssl
import time
from contextlib import asynccontextmanager

from .. import __version__
from ..net.addresses import hostport, uri_host
from ..net.transport import SipConnection, connect
from ..sip.builder import build_request, new_call_id, new_tag
from ..sip.message import Request, Response
from .base import CheckContext, Target

USER_AGENT = f"sipkit/{__version__}"
MAX_EVIDENCE_BYTES = 4000  # a padded probe is not worth printing whole
_PADDING = re.compile(r"(X-Sipkit-Padding: )(x+)")


def ssl_context(ctx: CheckContext, verify: bool) -> ssl.SSLContext:
    """TLS client context: system store or --ca-file; verification on unless told otherwise."""
    if not verify:
        c = ssl.create_default_context()
        c.check_hostname = False
        c.verify_mode = ssl.CERT_NONE
        return c
    return ssl.create_default_context(cafile=str(ctx.options.ca_file) if ctx.options.ca_file
                                      else None)


def tap_for(ctx: CheckContext, evidence: bool = True):
    """A transport tap: each message becomes an Evidence row (and a pcap packet with --pcap)
    and an entry of the run's request log."""
    recorder = ctx.recorder
    log = ctx.facts.requests  # the run's request log (PBX fingerprint, ban detection)

    def tap(direction: str, data: bytes, local: tuple, remote: tuple, transport: str,
            ts: float) -> None:
        log.tap(direction, data, local, remote, transport, ts)
        if recorder is not None:
            recorder.tap(direction, data, local, remote, transport, ts)
        if not evidence:
            return
        text = _PADDING.sub(lambda m: f"{m.group(1)}<{len(m.group(2))} bytes of padding>",
                            data[:MAX_EVIDENCE_BYTES].decode("utf-8", errors="replace"))
        first = text.split("\r\n", 1)[0][:120] or f"({len(data)} bytes)"
        if len(data) > MAX_EVIDENCE_BYTES:
            text += f"\n… ({len(data)} bytes in all)"
        ctx.record("sip", first, text=text, at_ms=ctx.at_ms(ts), direction=direction,
                   peer=_hp(remote), local=_hp(local), transport=transport)

    return tap


def _hp(addr: tuple) -> str:
    return hostport(addr[0], addr[1])


@asynccontextmanager
async def open_target(ctx: CheckContext, target: Target, *, transport: str | None = None,
                      verify: bool = False, record: bool = True):
    """Connect to ``target`` (over ``transport`` if given) and close afterwards."""
    proto = transport or target.transport
    sslctx = ssl_context(ctx, verify) if proto == "tls" else None
    try:
        conn: SipConnection = await connect(
            target.ip, target.port, proto, local_ip=ctx.options.source_ip, ssl_context=sslctx,
            server_hostname=target.host if sslctx is not None else None,
            timeout=ctx.options.timeout, tap=tap_for(ctx, evidence=record))
    except (TimeoutError, ConnectionRefusedError):  # the run's request log: a ban drops SYNs
        ctx.facts.requests.connect_failed(ctx.options.source_ip, target.ip, target.port, proto,
                                          time.time())
        raise
    try:
        yield conn
    finally:
        await conn.close()


class Dialogless:
    """Call-ID, tags and CSeq for a run of out-of-dialog requests (OPTIONS, REGISTER)."""

    def __init__(self, conn: SipConnection, target: Target, user: str | None = None,
                 domain: str | None = None):
        self.conn, self.target = conn, target
        self.call_id = new_call_id(conn.local[0])
        self.tag = new_tag()
        self.cseq = 0
        self.user = user or "sipkit"
        self.domain = uri_host(domain or target.host)

    # Always sip: with transport=tls where needed; many PBXs mishandle sips: (RFC 5630).
    scheme = "sip"

    def build(self, method: str, ruri: str, *, to_user: str | None = None,
              contact: str | None = None, expires: int | None = None,
              extra: list[tuple[str, str]] | None = None) -> Request:
        self.cseq += 1
        lip, lport = self.conn.local[0], self.conn.local[1]
        to_uri = f"{self.scheme}:{to_user}@{self.domain}" if to_user else ruri
        return build_request(
            method, ruri, from_uri=f"{self.scheme}:{self.user}@{self.domain}", to_uri=to_uri,
            call_id=self.call_id, cseq=self.cseq, via_host=lip, via_port=lport,
            transport=self.conn.transport.upper(), from_tag=self.tag, contact=contact,
            expires=expires, extra=list(extra or []), user_agent=USER_AGENT)

    def options(self) -> Request:
        """An OPTIONS to the server itself."""
        return self.build("OPTIONS", f"{self.scheme}:{self.target.hostport}")


def server_of(resp: Response | None) -> str | None:
    if resp is None:
        return None
    return resp.headers.get("Server") or resp.headers.get("User-Agent")
