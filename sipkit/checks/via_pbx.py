"""What the three after-creation checks share: the test extension, the PBX's and the cloud's
addresses, and reading the path a call took from its own SIP.

Vantage point: the real cloud. The calls go through the customer's PBX to and from the
created connector, so a PASS here proves what the site-side checks cannot: the cloud's
REGISTER reached the PBX, the PBX routes the extension to it, and the agent's calls enter it.
"""

from __future__ import annotations

import asyncio
import socket

from ..media.model import CallParams, CallResult
from ..net.addresses import parse_ip, uri_host
from ..sip.errors import SipParseError
from ..sip.message import Request, Response, parse
from ..sip.uri import parse_name_addr
from .base import CheckContext, Target
from .calls import budget, local_ip_towards, tls_params

CHALLENGES = (401, 407)


def via_budget(options, site) -> float:
    """A call, the API round trips and waiting for the cloud: generous, but bounded."""
    return budget(options, site) + 30


def test_extension_problem(ctx: CheckContext) -> str | None:
    """Why the test extension cannot be used (None: it can)."""
    test = ctx.site.check.test_extension
    if test is None:
        return ("no check.test_extension in the site file: give a second extension on the same "
                "PBX, e.g. check: {test_extension: {username: \"200\", password: "
                "${TEST_EXT_PASSWORD}}}")
    if test.username in (ctx.site.username_extension, ctx.site.auth_username):
        return ("check.test_extension is the connector's own extension: give another one (a "
                "second registration would ring both and could displace the cloud's)")
    if ctx.facts.test_extension_refused:
        return ("the PBX refused check.test_extension's password earlier in this run; sipkit "
                "does not try it again (one attempt per credential)")
    return None


async def resolve(host: str, port: int, transport: str) -> list[Target]:
    """A host as Targets, IPv4 first (the media engine has no IPv6)."""
    if parse_ip(host.strip("[]")):
        return [Target(host=host, ip=host.strip("[]"), port=port, transport=transport)]
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_DGRAM)
    ips = sorted(dict.fromkeys(i[4][0] for i in infos), key=lambda ip: ":" in ip)
    return [Target(host=host, ip=ip, port=port, transport=transport) for ip in ips]


async def pbx_targets(ctx: CheckContext) -> list[Target]:
    site = ctx.site
    return await resolve(site.registrar_server, site.port, site.connection_type)


async def cloud_ips(connector) -> set[str]:
    """The connector server's addresses, as the API names it."""
    server = getattr(connector, "sip_connector_server", None)
    if not server:
        return set()
    host = server.rsplit(":", 1)[0] if server.count(":") == 1 else server
    try:
        return {t.ip for t in await resolve(host, 5060, "udp")}
    except OSError:
        return set()


def test_params(ctx: CheckContext, pbx: Target, target: str, **kw) -> CallParams:
    """A call as the test extension, through the PBX (digest with its own credentials)."""
    site, test = ctx.site, ctx.site.check.test_extension
    tp = ";transport=tls" if pbx.transport == "tls" else ""
    return CallParams(
        target=target + tp, transport=pbx.transport, local_ip=local_ip_towards(ctx, pbx.ip),
        from_uri=f"sip:{test.username}@{uri_host(site.registrar_server)}",
        username=test.username, password=test.password.get_secret_value(),
        seconds=site.check.call_seconds, setup_timeout=max(8.0, ctx.options.timeout * 2),
        **tls_params(ctx), **kw)


def _messages(r: CallResult, direction: str):
    for m in r.sip:
        if m.direction != direction:
            continue
        try:
            yield m, parse(m.data.encode("latin-1"))
        except SipParseError:
            continue


def challenged(r: CallResult) -> bool:
    """Whether the PBX challenged our INVITE or REGISTER (so a later 403 judged the password)."""
    return any(isinstance(msg, Response) and msg.status in CHALLENGES
               for _, msg in _messages(r, "in"))


def answer_contact_host(r: CallResult) -> str | None:
    """The host in the Contact of the 2xx to our INVITE: who answered (a proxy that
    record-routes keeps the answerer's Contact)."""
    for _, msg in _messages(r, "in"):
        if isinstance(msg, Response) and 200 <= msg.status < 300 and msg.cseq[1] == "INVITE":
            try:
                return parse_name_addr(msg.headers.get("Contact") or "").uri.host.strip("[]")
            except (SipParseError, ValueError):
                return None
    return None


def first_invite(r: CallResult):
    """(source ip, wall time, From header) of the first INVITE we received, or None."""
    for m, msg in _messages(r, "in"):
        if isinstance(msg, Request) and msg.method == "INVITE":
            return m.remote[0], m.ts, msg.headers.get("From", "")
    return None


def hung_up(r: CallResult) -> str:
    if r.ended_by == "remote":
        return "the far end hung up"
    return "sipkit hung up after the planned time" if r.ended_by == "local" else "not answered"


def call_facts(r: CallResult, **path) -> dict:
    """Who hung up, setup time and the path: the details both calls report."""
    return {"hung_up_by": {"remote": "far end", "local": "sipkit"}.get(r.ended_by or ""),
            "setup_ms": r.answer_ms, "path": path}
