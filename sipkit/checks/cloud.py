"""Where the SIP connector server is: from the site file, or from the Mihu API (``auto``).

Looked up once a run: the first check that needs it (register, allowed_ip, call_inbound)
starts the lookup, the others await the same one (``Facts.connector_server``), so ``auto``
costs one API request per run, not one per check.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from ..net.addresses import canonical_ip, parse_ip, split_hostport
from .base import CheckContext, Target


@dataclass(frozen=True)
class ServerLookup:
    target: Target | None
    source: str  # "site file" | "api"
    reason: str | None = None  # why there is no target
    addresses: tuple[str, ...] = ()  # every address the server's name resolves to

    @property
    def names(self) -> frozenset[str]:
        """What names the connector server in a Contact: its host name and its addresses,
        lower-case and canonical (empty when it is not known)."""
        if self.target is None:
            return frozenset()
        return frozenset({canonical_ip(self.target.host).lower(),
                          *(canonical_ip(a) for a in (self.addresses or (self.target.ip,)))})


def lookup(ctx: CheckContext) -> asyncio.Future[ServerLookup]:
    """The run's one lookup: started by the first check that asks, shared by the others."""
    if ctx.facts.connector_server is None:
        ctx.facts.connector_server = asyncio.ensure_future(_lookup(ctx))
    return ctx.facts.connector_server


async def connector_server(ctx: CheckContext) -> ServerLookup:
    """The connector server as a Target over the site's transport (5060 UDP / 5061 TLS).
    Shielded: a check cancelled while waiting does not cancel the others' lookup."""
    return await asyncio.shield(lookup(ctx))


async def _lookup(ctx: CheckContext) -> ServerLookup:
    transport = ctx.site.connection_type
    default_port = 5061 if transport == "tls" else 5060
    value = ctx.site.check.connector_server
    source = "site file"
    if value == "auto":
        source = "api"
        api = ctx.options.api
        if api is None or not api.configured:
            return ServerLookup(None, source, "check.connector_server is auto but the Mihu API "
                                "is not configured: give --api-url and --token-file (or "
                                "SIPKIT_API_URL and SIPKIT_API_TOKEN), or the server's address "
                                "in check.connector_server")
        from ..mihu.lookup import assigned_server  # lazy: httpx only when needed

        value, reason = await assigned_server(api)
        if value is None:
            return ServerLookup(None, source, reason)
    host, port = split_hostport(value, default_port)
    if parse_ip(host) is None:
        import socket

        try:
            infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_DGRAM)
        except OSError as exc:
            return ServerLookup(None, source, f"connector server {host} does not resolve ({exc})")
        ips = tuple(dict.fromkeys(i[4][0] for i in infos))
    else:
        ips = (host.strip("[]"),)
    return ServerLookup(Target(host=host, ip=ips[0], port=port, transport=transport), source,
                        addresses=ips)
