"""config: the settings validate (that happened while loading) and are sane for a go-live."""

from __future__ import annotations

from ..net.addresses import address_kind, hostport, parse_ip
from ..report import CheckResult
from .base import CheckContext

ID = "config"
TITLE = "Settings"
DEPENDS: tuple[str, ...] = ()


async def run(ctx: CheckContext) -> CheckResult:
    site = ctx.site
    warnings: list[tuple[str, str]] = []  # (problem, fix)
    lab = site.check.allow_private_registrar

    kind = address_kind(site.allowed_ip)
    if kind and not lab:
        warnings.append((f"allowed_ip {site.allowed_ip} is a {kind} address, but the cloud sees the "
                         "PBX's public address, so inbound calls from it will be refused",
                         "set allowed_ip to the PBX's public source IP (the allowed_ip check "
                         "measures it)"))
    if site.connection_type == "tls" and site.port == 5060:
        warnings.append(("connection_type is tls but port is 5060, the UDP/TCP port",
                         "use the PBX's TLS port, usually 5061"))
    if site.connection_type == "udp" and site.port == 5061:
        warnings.append(("connection_type is udp but port is 5061, the usual TLS port",
                         "use 5060 for UDP, or set connection_type: tls"))
    if site.check.ca_file and not site.check.ca_file.is_file():
        warnings.append((f"check.ca_file {site.check.ca_file} does not exist",
                         "give the path of a PEM file with the PBX's CA certificate"))
    if site.setup_mode in ("both", "outbound") and not site.check.outbound_test_number:
        ctx.note("no check.outbound_test_number: the outbound test call will not run")

    details = {"setup_mode": site.setup_mode, "connection_type": site.connection_type,
               "port": site.port, "registrar_server": site.registrar_server,
               "registrar_is_ip": parse_ip(site.registrar_server) is not None,
               "digest_username": site.digest_username,
               "separate_auth_credentials": site.auth_username is not None,
               "problems": [w[0] for w in warnings]}
    if warnings:
        return ctx.result(ID, "warn", warnings[0][0] + (f" (+{len(warnings) - 1} more)"
                                                        if len(warnings) > 1 else ""),
                          "; ".join(w[1] for w in warnings), **details)
    return ctx.result(ID, "pass", f"settings valid: {site.connection_type.upper()} "
                      f"{hostport(site.registrar_server, site.port)}, extension "
                      f"{site.username_extension}, setup_mode {site.setup_mode}", **details)
