"""config: the settings validate (that happened while loading) and are sane for a go-live."""

from __future__ import annotations

from ..net.addresses import address_kind, hostport, parse_ip
from ..report import CheckResult
from .base import CheckContext

ID = "config"
TITLE = "Settings"
DEPENDS: tuple[str, ...] = ()


def _port_sanity(transport: str, port: int | None) -> list[tuple[str, str]]:
    if transport == "tls" and port == 5060:
        return [("transport is tls but port is 5060, the UDP/TCP port",
                 "use the TLS port, usually 5061")]
    if transport == "udp" and port == 5061:
        return [("transport is udp but port is 5061, the usual TLS port",
                 "use 5060 for UDP, or set the transport to tls")]
    return []


def _verdict(ctx: CheckContext, warnings: list[tuple[str, str]], ok: str, **details
             ) -> CheckResult:
    details["problems"] = [w[0] for w in warnings]
    if warnings:
        return ctx.result("warn", warnings[0][0] + (f" (+{len(warnings) - 1} more)"
                                                    if len(warnings) > 1 else ""),
                          "; ".join(w[1] for w in warnings), **details)
    return ctx.result("pass", ok, **details)


async def _trunk(ctx: CheckContext) -> CheckResult:
    trunk = ctx.site
    warnings = _port_sanity(trunk.transport, trunk.port)
    for ep in trunk.endpoints():
        warnings += [(f"{ep.role.replace('_', ' ')}: {p}", f) for p, f in
                     _port_sanity(ep.transport, ep.port) if ep.port != trunk.port]
    if trunk.check.ca_file and not trunk.check.ca_file.is_file():
        warnings.append((f"check.ca_file {trunk.check.ca_file} does not exist",
                         "give the path of a PEM file with the provider's CA certificate"))
    if not trunk.secondary_gateway:
        ctx.note("no secondary_gateway: calls have no failover if the gateway is down")
    if not trunk.check.outbound_test_number:
        ctx.note("no check.outbound_test_number: no test call is placed (a call through a "
                 "trunk can be billed)")
    gw = trunk.endpoints()[0]
    return _verdict(ctx, warnings, f"settings valid: trunk {trunk.name} ({trunk.api} API), "
                    f"{gw.transport.upper()} {gw.display}"
                    + (f", secondary {trunk.secondary_gateway}" if trunk.secondary_gateway
                       else ""),
                    api=trunk.api, transport=trunk.transport, gateway=trunk.gateway,
                    secondary_gateway=trunk.secondary_gateway, port=trunk.port,
                    has_credentials=trunk.username is not None)


async def run(ctx: CheckContext) -> CheckResult:
    if ctx.kind == "sip_trunk":
        return await _trunk(ctx)
    site = ctx.site
    warnings: list[tuple[str, str]] = []  # (problem, fix)
    lab = site.check.allow_private_registrar

    kind = address_kind(site.allowed_ip)
    if kind and not lab:
        warnings.append((f"allowed_ip {site.allowed_ip} is a {kind} address, but the cloud sees the "
                         "PBX's public address, so inbound calls from it will be refused",
                         "set allowed_ip to the PBX's public source IP (the allowed_ip check "
                         "measures it)"))
    warnings += [(p.replace("transport is", "connection_type is"),
                  f.replace("the transport to", "connection_type:"))
                 for p, f in _port_sanity(site.connection_type, site.port)]
    if site.check.ca_file and not site.check.ca_file.is_file():
        warnings.append((f"check.ca_file {site.check.ca_file} does not exist",
                         "give the path of a PEM file with the PBX's CA certificate"))
    if site.setup_mode in ("both", "outbound") and not site.check.outbound_test_number:
        ctx.note("no check.outbound_test_number: the outbound test call will not run")

    return _verdict(ctx, warnings, f"settings valid: {site.connection_type.upper()} "
                    f"{hostport(site.registrar_server, site.port)}, extension "
                    f"{site.username_extension}, setup_mode {site.setup_mode}",
                    setup_mode=site.setup_mode, connection_type=site.connection_type,
                    port=site.port, registrar_server=site.registrar_server,
                    registrar_is_ip=parse_ip(site.registrar_server) is not None,
                    digest_username=site.digest_username,
                    separate_auth_credentials=site.auth_username is not None)
