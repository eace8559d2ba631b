"""outside_reach: the registrar as the internet sees it, through a sipkit reflector.

On the LAN a PBX may answer while the cloud cannot reach it: no port forward, a firewall that
drops SIP from outside, split-horizon DNS, or a PBX rule that refuses registrations from
non-LAN addresses. The reflector sends OPTIONS and one REGISTER *without credentials* (it never
gets the password) to the registrar's public address and compares with the LAN checks
(transport, register, dns) that ran before.
"""

from __future__ import annotations

from ..net.addresses import address_kind, hostport
from ..report import CheckResult
from .base import CheckContext
from .reflected import NO_REFLECTOR_FIX, open_reflector, vantage

ID = "outside_reach"
TITLE = "Reach from the internet"
DEPENDS = ("config",)
AFTER = ("dns", "transport", "register")
KINDS = ("pbx_extension",)
NOT_FOR = {"sip_trunk": "a provider's gateway is on the internet already"}
BUDGET = 120


def _lan(ctx: CheckContext, cid: str):
    r = ctx.results.get(cid)
    return r if r is not None and r.status != "skip" else None


async def run(ctx: CheckContext) -> CheckResult:
    from ..reflector.client import ReflectorError

    client, why = open_reflector(ctx)
    if client is None:
        return ctx.result("skip", why, NO_REFLECTOR_FIX)
    ep = ctx.endpoint
    port = ep.effective_port
    transports = [ep.transport] + (["tcp"] if ep.transport == "udp" else [])
    url = ctx.site.check.reflector
    try:
        async with client:
            data = await client.reach(ep.host, port, transports, ep.username, ep.sip_domain)
    except ReflectorError as exc:
        if exc.code == "target_not_allowed":
            outside = exc.body.get("dns", {}).get("addresses", [])
            return ctx.result(
                "fail", f"{ep.host} is {', '.join(outside)} from the internet, but this site "
                f"reaches the internet as {exc.body.get('caller')}: the name points elsewhere "
                "(or sipkit does not run behind the PBX's router)",
                f"point {ep.host} at the router's public address {exc.body.get('caller')}, or "
                "run sipkit on the PBX's network; a reflector token may list other addresses",
                outside_dns=exc.body.get("dns"), caller=exc.body.get("caller"), reflector=url)
        status = "error" if exc.status in (None, 401, 429) or (exc.status or 0) >= 500 \
            else "fail"
        return ctx.result(status, f"the reflector did not probe: {exc}",
                          "check check.reflector, its token and that the reflector runs",
                          reflector=url, reflector_status=exc.status, code=exc.code)
    return verdict(ctx, data, url)


def verdict(ctx: CheckContext, data: dict, url: str) -> CheckResult:
    ep = ctx.endpoint
    dns = data.get("dns") or {}
    outside_ips = dns.get("addresses") or []
    inside_ips = list(dict.fromkeys(t.ip for t in ctx.targets))
    details = {"reflector": url, "caller": data.get("caller"), "outside_dns": dns,
               "lan_dns": inside_ips, "probes": data.get("probed", [])}
    notes: list[str] = []
    split = bool(inside_ips and outside_ips and set(inside_ips) != set(outside_ips))
    if split:
        details["split_horizon"] = True
        notes.append(f"split horizon: the LAN resolves {ep.host} to {', '.join(inside_ips)}, "
                     f"the internet to {', '.join(outside_ips)}")
    if not outside_ips:
        return ctx.result("fail", f"{ep.host} does not resolve from the internet "
                          f"({dns.get('error', 'no address')}; {vantage(url)})",
                          f"publish a public A record for {ep.host} (the router's public "
                          "address), or set registrar_server to that address", **details)
    private = [] if getattr(ctx.site.check, "allow_private_registrar", False) else \
        [ip for ip in outside_ips if address_kind(ip) is not None]
    rows = [r for r in data.get("probed", []) if r.get("transport") == ep.transport]
    if not rows:
        return ctx.result("fail", f"the reflector probed nothing ({', '.join(outside_ips)})",
                          "see details", **details)
    row = rows[0]
    where = f"{ep.transport.upper()} {hostport(row['ip'], row['port'])}"
    lan_t, lan_r = _lan(ctx, "transport"), _lan(ctx, "register")
    lan_ok = lan_t is not None and lan_t.ok
    details["lan_transport"] = lan_t.status if lan_t else None
    tcp_row = next((r for r in data.get("probed", []) if r["transport"] == "tcp"
                    and ep.transport == "udp"), None)
    outcome = row.get("outcome")
    if outcome != "answered":
        prefix = "the PBX answers on the LAN but not from the internet: " if lan_ok else ""
        proto = "TCP" if ep.transport == "tls" else ep.transport.upper()
        if outcome in ("refused", "tcp_refused"):
            summary = (f"{prefix}{where} refuses SIP from outside (ICMP port unreachable / "
                       "TCP reset): nothing is forwarded to the PBX")
            hint = (f"forward {proto} {row['port']} on the router ({row['ip']}) to the PBX, "
                    "and allow the connector server's address")
        elif outcome in ("no_answer", "tcp_timeout"):
            summary = (f"{prefix}{where} is silent from outside: a firewall drops SIP from "
                       "the internet")
            hint = (f"allow {proto} {row['port']} from the connector server's address in the "
                    "router's (and the PBX's) firewall, and forward it to the PBX")
        else:
            summary = f"{prefix}{where} from outside: {outcome} {row.get('error') or ''}".strip()
            hint = "see the details; compare with the transport check"
        if tcp_row and tcp_row.get("outcome") == "answered":
            summary += "; TCP on the same port answers"
        return ctx.result("fail", f"{summary} ({vantage(url)})", hint,
                          **details, notes=notes)
    opts = row.get("options") or {}
    reg = row.get("register") or {}
    lan_unauth = lan_r.details.get("unauthenticated_status") if lan_r else None
    summary = (f"from the internet {where} answers OPTIONS {opts.get('status')} "
               f"{opts.get('reason') or ''}").rstrip() if opts.get("status") else \
        f"from the internet {where} ignores OPTIONS but answers REGISTER"
    if reg.get("status") == 403:
        lan_says = f", on the LAN {lan_unauth}" if lan_unauth else ""
        return ctx.result(
            "fail", f"registrations from outside get 403 {reg.get('reason', '')}".rstrip()
            + f"{lan_says}: the extension is restricted to the LAN ({vantage(url)})",
            f"allow extension {ep.username} to register from the connector server's address "
            "(the PBX's per-extension 'allowed networks' / ACL, or its 'LAN only' option)",
            **details, notes=notes)
    if reg.get("status") == 404:
        return ctx.result("fail", f"from outside the registrar does not know extension "
                          f"{ep.username} (404) ({vantage(url)})",
                          "the public address reaches another SIP server than the LAN one: "
                          "check the port forward's target", **details, notes=notes)
    warns: list[tuple[str, str]] = []
    if reg.get("status") in (401, 407):
        realm = (reg.get("challenge") or {}).get("realm")
        summary += f"; REGISTER is challenged ({reg['status']}, realm {realm})"
    elif reg:
        warns.append((f"REGISTER from outside got {reg.get('status') or reg.get('outcome')}",
                      ("a registrar challenges an unauthenticated REGISTER with 401; check "
                       "what answers on the public address")))
    lan_server = ctx.facts.server_header
    if lan_server and opts.get("server") and opts["server"] != lan_server:
        warns.append(((f"a different SIP server answers from outside ({opts['server']}) "
                       f"than on the LAN ({lan_server})"),
                      "the router's own SIP service may hold the port: forward it to the PBX"))
    tls = row.get("tls") or {}
    if ep.transport == "tls" and tls and not tls.get("verified"):
        warns.append((f"the certificate served to the internet does not verify: "
                       f"{tls.get('verify_error')}".strip(),
                      f"install a certificate from a public CA for {ep.host} on the PBX"))
    if private:
        named = ", ".join(f"{ip} ({address_kind(ip)})" for ip in private)
        warns.append((f"{ep.host} resolves to {named} from outside",
                      "publish the router's public address"))
    summary += f" ({vantage(url)})"
    if notes:
        summary += "; " + "; ".join(notes)
    if warns:
        return ctx.result("warn", "; ".join(w[0] for w in warns) + " — " + summary,
                          "; ".join(w[1] for w in warns), **details)
    return ctx.result("pass", summary, **details)
