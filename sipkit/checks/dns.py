"""dns: the registrar name resolves (RFC 3263) to addresses the cloud connector can reach.

The connector is given registrar_server *and* port, so for it the port is explicit: it will
look up A/AAAA of the name and use the configured port (RFC 3263 §4.2). The check resolves
the same way, and also asks NAPTR/SRV at the same time — not to pick targets, but to warn
when the domain advertises a different port (see sipkit.net.resolver).

The verdict is a pure function of the resolution (``judge``), so every rule is unit-tested
without a network; ``run`` only resolves, records evidence and calls it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..net.addresses import address_kind
from ..net.resolver import Lookup, NameserverError, Resolution, resolve_sip
from ..report import CheckResult, Status
from .base import CheckContext

ID = "dns"
TITLE = "Registrar DNS"
DEPENDS = ("config",)

# Outcomes that mean DNS itself is broken (as opposed to "no such record").
_BROKEN = ("servfail", "timeout", "refused", "error")

_NO_ADDRESS = {
    # outcome -> (what happened, the fix); {host} {types} {server} {timeout} {error} filled in
    "nxdomain": ("registrar name {host} does not exist (NXDOMAIN)",
                 "check the spelling of registrar_server, or create an A record for {host} "
                 "with the PBX's public address"),
    "nodata": ("{host} exists but has no A or AAAA record",
               "create an A record for {host} with the PBX's public address"),
    "servfail": ("{host} could not be resolved: the DNS server failed (SERVFAIL for {types})",
                 "the domain's DNS is broken (DNSSEC, a lame or missing delegation): fix it "
                 "at the DNS host; `dig {host}` shows the same"),
    "timeout": ("{host} could not be resolved: no DNS answer within {timeout:g} s for {types} "
                "(resolver {server} unreachable?)",
                "check this machine's DNS (/etc/resolv.conf or --nameserver) and that UDP 53 "
                "to it is open; if other names resolve, the domain's name servers are down"),
    "refused": ("{host} could not be resolved: the DNS server {server} refused the query "
                "(REFUSED for {types})",
                "that server does not resolve for this machine: use another resolver "
                "(/etc/resolv.conf or --nameserver)"),
    "error": ("{host} could not be resolved: {error}",
              "check this machine's DNS (/etc/resolv.conf or --nameserver)"),
}


@dataclass
class Verdict:
    status: Status
    summary: str
    hint: str | None = None
    facts: dict[str, Any] = field(default_factory=dict)


def _kind(ip: str) -> str:
    return address_kind(ip) or "public"


def _plural(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _address_lookups(res: Resolution) -> list[Lookup]:
    """The lookups that decide the targets: A/AAAA (of the host, or of SRV targets)."""
    return [lk for lk in res.lookups if lk.rdtype in ("A", "AAAA")]


def _answers_text(res: Resolution) -> str:
    """'1.2.3.4 (A, TTL 300 s), ...' for every address lookup that answered."""
    parts = []
    for lk in _address_lookups(res):
        if lk.ok:
            shown = lk.answers[:6] + ([f"+{len(lk.answers) - 6} more"]
                                      if len(lk.answers) > 6 else [])
            parts.append(f"{', '.join(shown)} ({lk.rdtype}, TTL {lk.ttl} s)")
    return "; ".join(parts)


def judge(res: Resolution, *, port: int | None, allow_private: bool, timeout: float = 0.0
          ) -> Verdict:
    """The dns verdict for a resolution of the endpoint's host with its port (None: the
    port came from RFC 3263, NAPTR → SRV, as a trunk gateway without a port has it)."""
    host = res.host
    addresses = res.addresses
    failed = [lk for lk in res.lookups if lk.outcome in _BROKEN]
    facts: dict[str, Any] = {
        "addresses": [{"ip": ip, "kind": _kind(ip)} for ip in addresses],
        "failed_lookups": [{"qname": lk.qname, "rdtype": lk.rdtype, "outcome": lk.outcome}
                           for lk in failed],
    }

    # 1. No address at all: say why, per record type.
    if not addresses:
        addr = _address_lookups(res)
        outcomes = [lk.outcome for lk in addr]
        # The most telling outcome first: a broken DNS beats "no such name".
        outcome = next((o for o in ("timeout", "servfail", "refused", "error", "nxdomain")
                        if o in outcomes), "nodata")
        types = [lk.rdtype for lk in addr if lk.outcome == outcome]
        error = next((lk.error for lk in addr if lk.outcome == outcome and lk.error), outcome)
        what, fix = _NO_ADDRESS[outcome]
        fill = {"host": host, "types": _plural(types or ["A"]), "server": res.server or "?",
                "timeout": timeout, "error": error}
        summary, hint = what.format(**fill), fix.format(**fill)
        usable_srv = [s for s in res.srv if s.target != "."]
        if outcome == "nodata" and usable_srv:
            best = usable_srv[0]
            summary += (f"; its SRV record points at {best.target.rstrip('.')}:{best.port}, but "
                        "the connector is given host and port, so it does not look up SRV")
            hint = (f"set registrar_server: {best.target.rstrip('.')} and port: {best.port}, "
                    f"or create an A record for {host}")
        return Verdict("fail", summary, hint, facts)

    # 2. Where the addresses are: the cloud reaches only public space.
    private = [ip for ip in addresses if address_kind(ip)]
    public = [ip for ip in addresses if not address_kind(ip)]
    if res.source == "ip-literal":
        summary = f"IP literal {addresses[0]}, no DNS"
    else:
        summary = (f"{host} → {_answers_text(res)}; {len(res.lookups)} lookups in "
                   f"{res.ms:.0f} ms")
    warnings: list[tuple[str, str]] = []  # (problem, fix)
    notes: list[str] = []
    if private and not public:
        what = ", ".join(f"{ip} ({address_kind(ip)})" for ip in private)
        if not allow_private:
            lead = (f"{host} is" if res.source == "ip-literal"
                    else f"{host} resolves only to")
            return Verdict(
                "fail", f"{lead} {what}: the cloud connector cannot reach it",
                "publish the PBX's public address: point registrar_server (or its A record) "
                "at the public IP and forward the SIP port to the PBX; set "
                "check.allow_private_registrar only if the cloud reaches it over a private "
                "link", facts)
        notes.append(f"{what} is not reachable from the internet; accepted because "
                     "check.allow_private_registrar is set")
    elif private:
        warnings.append((
            f"{host} resolves to public and non-public addresses ({', '.join(private)} is "
            f"{_plural(sorted({address_kind(ip) or '' for ip in private}))}): split-horizon "
            "DNS or a stale record",
            "the cloud gets the same answers: make public DNS return only the PBX's public "
            "address"))

    # 3. What the domain advertises vs the configured port (advisory SRV, RFC 3263 §4.2).
    srv_ports = res.srv_ports
    if port is None:
        if res.targets:
            t = res.targets[0]
            notes.append(f"RFC 3263 chose {t.transport.upper()} port {t.port}"
                         + (" from SRV" if res.srv else " (no SRV: the default port)"))
    elif srv_ports and port not in srv_ports:
        names = sorted({s.name for s in res.srv if s.target != "."})
        warnings.append((
            f"DNS SRV {_plural([n.rstrip('.') for n in names])} advertises port "
            f"{_plural([str(p) for p in srv_ports])}, but port is {port}",
            f"check which port the PBX listens on; if DNS is right, set port: {srv_ports[0]}"))
    elif srv_ports:
        notes.append(f"SRV agrees on port {port}")

    # 4. DNS half broken: the addresses came, but some lookups failed.
    if failed:
        which = _plural([f"{lk.qname.rstrip('.')} {lk.rdtype} ({lk.outcome})" for lk in failed])
        warnings.append((f"some lookups failed: {which}",
                         "a DNS server that fails or drops some record types slows down or "
                         "breaks other resolvers (the cloud's): fix the domain's DNS"))
    cnames = [lk for lk in _address_lookups(res) if lk.cname]
    if cnames:
        notes.append("via CNAME " + ", ".join(f"{lk.qname.rstrip('.')} → "
                                              f"{lk.cname.rstrip('.')}" for lk in cnames[:2]))

    text = summary + "".join(f"; {n}" for n in notes)
    if warnings:
        return Verdict("warn", text + "".join(f"; {w[0]}" for w in warnings),
                       "; ".join(w[1] for w in warnings), facts)
    return Verdict("pass", text, None, facts)


async def run(ctx: CheckContext) -> CheckResult:
    ep = ctx.endpoint
    host, port, transport = ep.host, ep.port, ep.transport
    try:
        # An explicit port (a connector always has one): A/AAAA decide, NAPTR/SRV are asked
        # alongside only to compare ports. No port (a trunk gateway): the full RFC 3263 chain
        # decides, as the connector's SIP stack will. See the module docstring.
        res = await resolve_sip(host, transport=transport, port=port or ep.default_port,
                                explicit_port=ep.explicit_port,
                                nameserver=ctx.options.nameserver, timeout=ctx.options.timeout,
                                advisory_srv=ep.explicit_port)
    except NameserverError as exc:
        return ctx.result("fail", str(exc), "pass --nameserver as IP or IP:PORT, "
                          "e.g. --nameserver 127.0.0.1:5353")
    for lk in res.lookups:
        ctx.record("dns", lk.text(), text="\n".join(lk.answers) or None, peer=res.server)
    allow_private = bool(ctx.site and ctx.site.check.allow_private_registrar)
    v = judge(res, port=port, allow_private=allow_private, timeout=ctx.options.timeout)
    ctx.facts.targets = list(res.targets)
    details = {
        "source": res.source,
        "targets": [t.as_dict() for t in res.targets],
        "lookups": [lk.as_dict() for lk in res.lookups],
        "lookup_ms": res.ms,
        "nameserver": res.server,
        "port": port,
        "explicit_port": ep.explicit_port,
        "srv": [s.as_dict() for s in res.srv],
        "srv_ports": res.srv_ports,
        "naptr": [n.as_dict() for n in res.naptr],
        **v.facts,
    }
    return ctx.result(v.status, v.summary, v.hint, **details)
