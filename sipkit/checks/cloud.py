"""Where the SIP connector server is: from the site file, or from the Mihu API (``auto``)."""

from __future__ import annotations

from dataclasses import dataclass

from ..net.addresses import parse_ip, split_hostport
from .base import CheckContext, Target


@dataclass(frozen=True)
class ServerLookup:
    target: Target | None
    source: str  # "site file" | "api"
    reason: str | None = None  # why there is no target


async def connector_server(ctx: CheckContext) -> ServerLookup:
    """The connector server as a Target over the site's transport (5060 UDP / 5061 TLS)."""
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
        import asyncio
        import socket

        try:
            infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_DGRAM)
        except OSError as exc:
            return ServerLookup(None, source, f"connector server {host} does not resolve ({exc})")
        ip = infos[0][4][0]
    else:
        ip = host.strip("[]")
    return ServerLookup(Target(host=host, ip=ip, port=port, transport=transport), source)
