"""dns: the registrar name resolves (RFC 3263) to addresses the cloud can reach."""

from __future__ import annotations

from ..net.addresses import address_kind
from ..net.resolver import Resolution, _ask, make_resolver, resolve_sip
from ..report import CheckResult
from .base import CheckContext, Target

ID = "dns"
TITLE = "Registrar DNS"
DEPENDS = ("config",)

_FAIL_WORDS = {
    "nxdomain": ("does not exist (NXDOMAIN)",
                 "check the spelling of registrar_server, or create its A record"),
    "servfail": ("could not be resolved: the DNS server failed (SERVFAIL)",
                 "the domain's DNS is broken (DNSSEC, lame delegation): fix it at the DNS host"),
    "timeout": ("could not be resolved: no DNS answer in time",
                "check this machine's resolver (or --nameserver), or the domain's name servers"),
    "nodata": ("has no A or AAAA record", "create an A record for the PBX's public address"),
}


async def _srv_targets(ctx: CheckContext, res: Resolution) -> list[str]:
    """Addresses of the SRV targets, for a name that has SRV but no A/AAAA of its own."""
    resolver = make_resolver(ctx.options.nameserver, ctx.options.timeout)
    out: list[str] = []
    for srv in res.srv:
        for rdtype in ("A", "AAAA"):
            look, rrs = await _ask(resolver, srv.target, rdtype)
            res.lookups.append(look)
            out += [r.address for r in rrs]
    return out


async def run(ctx: CheckContext) -> CheckResult:
    site = ctx.site
    host, port, transport = site.registrar_server, site.port, site.connection_type
    res = await resolve_sip(host, transport=transport, nameserver=ctx.options.nameserver,
                            timeout=ctx.options.timeout)
    for look in res.lookups:
        ctx.record("dns", f"{look.qname} {look.rdtype}: {look.outcome}"
                   + (f" {', '.join(look.answers)} (TTL {look.ttl})" if look.answers else "")
                   + f" in {look.ms:.1f} ms")
    addresses = list(res.addresses)
    notes: list[tuple[str, str]] = []
    if not addresses and res.srv:
        addresses = await _srv_targets(ctx, res)
        if addresses:
            notes.append((f"{host} has no A/AAAA record, only SRV records",
                          "give registrar_server the SRV target's host name, or add an A "
                          "record: the connector registers to host:port"))
    targets = [Target(host=host, ip=ip, port=port, transport=transport) for ip in addresses]
    details = {"source": res.source, "targets": [t.as_dict() for t in targets],
               "lookups": [look.as_dict() for look in res.lookups],
               "srv": [s.__dict__ for s in res.srv], "naptr_services": res.naptr_services}
    if not addresses:
        a = next((look for look in res.lookups if look.rdtype == "A"), None)
        outcome = a.outcome if a is not None else "nodata"
        words, fix = _FAIL_WORDS.get(outcome, (f"could not be resolved ({outcome})",
                                               "check the DNS of the registrar name"))
        return ctx.result(ID, "fail", f"{host} {words}", fix, **details)

    kinds = {ip: address_kind(ip) for ip in addresses}
    unreachable = [ip for ip, kind in kinds.items() if kind]
    if res.source == "ip-literal":
        summary = f"{host} is an IP address: no DNS needed"
    else:
        a = next(look for look in res.lookups if look.rdtype in ("A", "AAAA")
                 and look.outcome == "answer") if res.addresses else None
        ttl = f", TTL {a.ttl} s" if a else ""
        summary = (f"{host} → {', '.join(addresses)}{ttl} "
                   f"({sum(look.ms for look in res.lookups):.0f} ms of lookups)")
    if unreachable and len(unreachable) == len(addresses):
        what = ", ".join(f"{ip} ({kinds[ip]})" for ip in unreachable)
        if site.check.allow_private_registrar:
            notes.append((f"{what}: not reachable from the internet, accepted because "
                          "check.allow_private_registrar is set", ""))
        else:
            return ctx.result(ID, "fail", f"{host} resolves only to {what}: the cloud "
                              "connector cannot reach it",
                              "publish the PBX's public address (or port-forward to it) and "
                              "point registrar_server at that", **details)
    elif unreachable:
        notes.append((f"{', '.join(unreachable)} among the answers are not public "
                      "(split-horizon DNS?)",
                      "the cloud resolves this name too: make public DNS return only public "
                      "addresses"))
    srv_ports = sorted({s.port for s in res.srv})
    if srv_ports and port not in srv_ports:
        notes.append((f"SRV for {transport.upper()} advertises port "
                      f"{', '.join(map(str, srv_ports))}, the site says {port}",
                      f"check which port the PBX listens on; set port: {srv_ports[0]} if DNS "
                      "is right"))
    warn = [n for n in notes if n[1]]
    if warn:
        return ctx.result(ID, "warn", summary + "; " + "; ".join(n[0] for n in warn),
                          "; ".join(n[1] for n in warn), **details)
    if notes:
        summary += "; " + "; ".join(n[0] for n in notes)
    return ctx.result(ID, "pass", summary, **details)
