"""allowed_ip: the source address the SIP connector server sees from this site is allowed_ip.

The connector trusts inbound calls only from allowed_ip. The only opinion that counts is the
cloud's: an OPTIONS with ``;rport`` to the connector server comes back with ``received`` and
``rport`` in its Via (RFC 3581 §4), i.e. the address after every NAT on the way. Several probes,
each from a fresh socket, expose multi-WAN setups whose egress address changes per flow.
"""

from __future__ import annotations

from dataclasses import replace

from ..net.addresses import address_kind, canonical_ip, hostport, parse_ip, split_hostport
from ..report import CheckResult
from .base import CheckContext, Target
from .cloud import connector_server
from .sipio import Dialogless, open_target, server_of

ID = "allowed_ip"
TITLE = "Source IP seen by the cloud"
DEPENDS = ("transport",)
KINDS = ("pbx_extension",)
NOT_FOR = {"sip_trunk": "a SIP trunk has no allowed_ip"}
AFTER = ("register",)  # for the fallback: the address the PBX saw in its REGISTER answer
PROBES = 3


async def _seen_from(ctx: CheckContext, target: Target) -> dict:
    try:
        async with open_target(ctx, target, verify=False) as conn:
            d = Dialogless(conn, target)
            ex = await conn.request(d.options(), timeout=ctx.options.timeout, t1=ctx.options.t1)
            local = conn.local
    except ConnectionRefusedError:
        return {"error": "refused"}
    except OSError as exc:
        return {"error": exc.strerror or str(exc)}
    except ValueError as exc:  # asyncio: a local address the destination's family cannot use
        return {"error": str(exc)}
    if ex.final is None:
        return {"error": "refused" if ex.refused else "no answer"}
    via = ex.final.top_via
    received = canonical_ip((via.received if via is not None else None) or local[0])
    rport = via.rport_port if via is not None else None  # a bare ;rport is no port
    return {"local": hostport(local[0], local[1]), "ip": received, "port": rport,
            "status": ex.final.status, "server": server_of(ex.final),
            "reflected": via is not None and (via.received is not None or rport is not None)}


async def run(ctx: CheckContext) -> CheckResult:
    site = ctx.site
    if site.setup_mode == "outbound":
        return ctx.result("skip", "setup_mode is outbound: the connector accepts no inbound "
                          "calls, allowed_ip is not used")
    lookup = await connector_server(ctx)
    if lookup.target is None:
        return _fallback(ctx, lookup.reason or "no connector server address")
    target = lookup.target
    probe_ctx, other_family = _source_for(ctx, target.ip)
    probes = []
    for _ in range(PROBES):  # one after the other: each a new flow through any NAT
        probes.append(await _seen_from(probe_ctx, target))
    details: dict = {"connector_server": target.as_dict(), "server_from": lookup.source,
                     "allowed_ip": site.allowed_ip, "probes": probes}
    if other_family:
        details["source_family"] = other_family
    answered = [p for p in probes if "ip" in p]
    if not answered:
        err = probes[0].get("error")
        seen = _pbx_view(ctx)
        if other_family:
            v = _version(target.ip)
            return ctx.result("fail", f"no IPv{v} source on this machine reaches the SIP "
                              f"connector server {target.hostport}: {err}; {other_family}",
                              f"give this machine (or the PBX) an IPv{v} route to {target.ip}, "
                              f"or ask Mihu for a connector server reachable over "
                              f"IPv{_version(ctx.options.source_ip)}", pbx_seen_as=seen,
                              **details)
        return ctx.result("fail", f"the SIP connector server {target.hostport} "
                          f"({target.transport.upper()}) does not answer from here: {err}"
                          + (f"; the PBX sees this site as {seen}" if seen else ""),
                          f"allow outbound {target.transport.upper()} {target.port} to "
                          f"{target.ip} in this site's firewall", pbx_seen_as=seen, **details)
    seen = sorted({p["ip"] for p in answered})
    details["seen_ips"] = seen
    status, summary, hint = verdict(site.allowed_ip, seen, any(p["reflected"] for p in answered),
                                    {t.ip for t in ctx.targets}, target.hostport)
    if other_family:  # measured, but not from the configured source
        summary += f" ({other_family})"
        if status == "pass":
            status, hint = "warn", ("check that the PBX's own IPv4 egress is allowed_ip: "
                                    "source_ip could not be used for this server")
    return ctx.result(status, summary, hint, **details)


def _version(ip: str | None) -> int | None:
    parsed = parse_ip(ip) if ip else None
    if parsed is None:
        return None
    return 4 if parsed.version == 6 and parsed.ipv4_mapped is not None else parsed.version


def _source_for(ctx: CheckContext, server_ip: str) -> tuple[CheckContext, str | None]:
    """A context whose source address can reach ``server_ip``: source_ip when its family
    matches, else none (the system picks one of the server's family), with a note saying so.
    An IPv6 site (source_ip ::1) and an IPv4 connector server cannot share a source."""
    src = ctx.options.source_ip
    mine, theirs = _version(src), _version(server_ip)
    if mine is None or theirs is None or mine == theirs:
        return ctx, None
    note = (f"source_ip {src} is IPv{mine} and the connector server is IPv{theirs}, so this "
            f"machine's own IPv{theirs} address was used")
    return replace(ctx, options=replace(ctx.options, source_ip=None)), note


def _pbx_view(ctx: CheckContext) -> str | None:
    seen = ctx.facts.seen_as
    return split_hostport(seen, 0)[0] if seen else None


def _fallback(ctx: CheckContext, why: str) -> CheckResult:
    """No connector server to ask: the PBX's view of this site is the next best thing."""
    seen = _pbx_view(ctx)
    allowed = ctx.site.allowed_ip
    if seen is None:
        return ctx.result("skip", why)
    if address_kind(seen) and not address_kind(allowed):
        # the PBX is on the LAN: it saw the private address, which says nothing about the WAN
        return ctx.result("skip", f"{why}; the PBX sees this site as {seen}, a LAN "
                          "address, which tells nothing about the public one", pbx_seen_as=seen)
    same = seen == allowed
    return ctx.result("warn", f"{why}; the PBX sees this site as {seen}"
                      + (" = allowed_ip" if same else f", not allowed_ip {allowed}"),
                      "run again with the connector server known (SIPKIT_API_URL, or "
                      "check.connector_server) to measure what the cloud sees",
                      pbx_seen_as=seen, from_pbx=True)


def verdict(allowed_ip: str, seen: list[str], reflected: bool, pbx_ips: set[str],
            server: str) -> tuple[str, str, str | None]:
    """Pure: (status, summary, hint) from what the connector server saw."""
    where = f"the connector server {server} sees this site as {', '.join(seen)}"
    if len(seen) > 1:
        return ("warn" if allowed_ip in seen else "fail",
                f"{where}: the source address changes between connections (multi-WAN or "
                "load-balanced NAT)",
                "pin SIP traffic to one WAN link with a fixed public IP, and set allowed_ip to it")
    seen_ip = seen[0]
    if _version(allowed_ip) and _version(seen_ip) and _version(allowed_ip) != _version(seen_ip):
        return ("fail", f"allowed_ip {allowed_ip} is IPv{_version(allowed_ip)}, but {where}: "
                f"an IPv{_version(seen_ip)} connector server never sees an "
                f"IPv{_version(allowed_ip)} source",
                f"set allowed_ip to the site's public IPv{_version(seen_ip)} address "
                f"({seen_ip} if the PBX leaves through the same link as this machine)")
    if seen_ip != allowed_ip:
        mine, theirs = address_kind(allowed_ip), address_kind(seen_ip)
        reason = (f"allowed_ip {allowed_ip} is a {mine} address, but " if mine and not theirs
                  else f"allowed_ip is {allowed_ip}, but ")
        return ("fail", f"{reason}{where}",
                f"set allowed_ip: {seen_ip} in the connector (if the PBX leaves through the "
                "same link as this machine)")
    warns = []
    if not reflected:
        warns.append("the server did not add received/rport (RFC 3581), so this is this "
                     "machine's own address")
    if pbx_ips and allowed_ip not in pbx_ips:
        warns.append(f"the registrar resolves to {', '.join(sorted(pbx_ips))}, not allowed_ip: "
                     "inbound calls come from the PBX, so its egress must be allowed_ip too")
    summary = f"{where} = allowed_ip"
    if warns:
        return ("warn", summary + "; " + "; ".join(warns),
                "make sure the PBX's own egress address is allowed_ip (run sipkit on the PBX "
                "host to be sure)")
    return "pass", summary, None
