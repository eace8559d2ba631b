"""transport: each resolved address answers SIP on the port.

UDP: OPTIONS over a connected socket, so an ICMP port-unreachable shows as "refused" (REJECT)
and silence as "no answer" (DROP); several samples for RTT; padded OPTIONS of ~1400 and ~3200
bytes, because a path that loses IP fragments drops big INVITEs while small OPTIONS pass
(RFC 3261 §18.1.1). TLS: the TCP connect (refused vs SYN dropped), then OPTIONS over TLS
without verification — trust is the tls check's business.
"""

from __future__ import annotations

import asyncio
import statistics

from ..net.addresses import hostport
from ..net.outcome import Outcome, of_exception, of_exchange
from ..report import CheckResult
from .base import CheckContext, Target
from .sipio import Dialogless, open_target, server_of

ID = "transport"
TITLE = "SIP reachability"
DEPENDS = ("dns",)
LARGE_SIZES = (1400, 3200)


def BUDGET(options, site) -> float:
    return 4 * options.timeout * (options.samples + len(LARGE_SIZES) + 2) + 5


async def tcp_connect(ip: str, port: int, timeout: float, local_ip: str | None) -> str:
    """'open', 'refused' or 'timeout' for a bare TCP connect."""
    try:
        _, writer = await asyncio.wait_for(
            asyncio.open_connection(ip, port, local_addr=(local_ip, 0) if local_ip else None),
            timeout)
    except (TimeoutError, OSError) as exc:
        return "refused" if of_exception(exc).outcome is Outcome.REFUSED else "timeout"
    writer.close()
    try:
        await writer.wait_closed()
    except OSError:
        pass
    return "open"


def _classify(ex) -> str:
    return of_exchange(ex).value


async def probe(ctx: CheckContext, target: Target) -> dict:
    """One address: the row the verdict is made of (public: the probers use it too)."""
    row: dict = {"target": target.as_dict(), "reachable": False}
    opts = ctx.options
    if target.transport == "tls":
        tcp = await tcp_connect(target.ip, target.port, opts.timeout, opts.source_ip)
        row["tcp"] = tcp
        if tcp != "open":
            row["verdict"] = f"tcp_{tcp}"
            return row
    rtts: list[float] = []
    first = None
    try:
        async with open_target(ctx, target, verify=False) as conn:
            row["local"] = hostport(conn.local[0], conn.local[1])
            d = Dialogless(conn, target)
            for _ in range(max(1, opts.samples)):
                ex = await conn.request(d.options(), timeout=opts.timeout, t1=opts.t1)
                verdict = _classify(ex)
                first = first or ex
                if verdict != "answered":
                    row["verdict"] = verdict
                    row["garbage"] = ex.garbage
                    row["provisionals"] = len(ex.provisionals)
                    break
                rtts.append(ex.rtt_ms)
            else:
                row["verdict"] = "answered"
                row["reachable"] = True
                row["status"] = first.final.status
                row["reason"] = first.final.reason
                row["server"] = server_of(first.final)
                row["rtt_ms"] = {"min": round(min(rtts), 2), "avg": round(statistics.mean(rtts), 2),
                                 "max": round(max(rtts), 2), "samples": len(rtts)}
                if target.transport == "udp":
                    row["large_udp"] = await _large(conn, d, opts)
    except (TimeoutError, OSError) as exc:  # ssl.SSLError is an OSError
        failure = of_exception(exc)
        row["verdict"] = failure.outcome.value
        if failure.detail:
            row["error"] = failure.detail
    if target.transport == "udp" and row["verdict"] in ("no_answer", "refused"):
        # "UDP silent but TCP answers" is the signature of a SIP ALG or a UDP-only filter.
        row["tcp_same_port"] = await tcp_connect(target.ip, target.port, min(opts.timeout, 2),
                                                  opts.source_ip)
    return row


async def _large(conn, d: Dialogless, opts) -> dict:
    out = {}
    for size in LARGE_SIZES:
        req = d.options()
        pad = max(0, size - len(req.to_bytes()) - len("X-Sipkit-Padding: \r\n"))
        req.headers.add("X-Sipkit-Padding", "x" * pad)
        ex = await conn.request(req, timeout=opts.timeout, t1=opts.t1)
        out[str(size)] = "answered" if ex.final is not None else _classify(ex)
    return out


_EXPLAIN = {
    "refused": ("nothing listens on {t} (ICMP port unreachable / TCP reset)",
                "start the PBX's SIP service on port {port}, or fix the port in the site file"),
    "no_answer": ("no answer from {t}: packets are silently dropped",
                  "open {proto} {port} to the PBX in its firewall (and any cloud firewall); "
                  "check the PBX listens on this address"),
    "garbage": ("{t} answers, but not with SIP",
                "another service holds this port: point the connector at the PBX's SIP port"),
    "provisional_only": ("{t} answers 1xx but never a final response",
                         "the PBX or a proxy in front of it is stuck; check its logs"),
    "tcp_refused": ("TCP connection to {t} refused",
                    "enable the PBX's TLS listener on port {port}, or fix the port"),
    "tcp_timeout": ("TCP connection to {t} timed out: SYN dropped",
                    "open TCP {port} to the PBX in its firewall"),
    "tls_handshake_failed": ("TLS handshake with {t} failed ({error})",
                             "see the tls check; the PBX's TLS settings do not match a modern "
                             "client"),
    "network_error": ("cannot send to {t} ({error})",
                      "check this machine's network and the --source-ip address"),
}


async def run(ctx: CheckContext) -> CheckResult:
    targets = ctx.targets
    if not targets:
        return ctx.result("skip", "no address to try (dns found none)")
    rows = await asyncio.gather(*(probe(ctx, t) for t in targets))
    good = [r for r in rows if r["reachable"]]
    bad = [r for r in rows if not r["reachable"]]
    details = {"addresses": rows}
    ctx.facts.answering = [t for t, r in zip(targets, rows) if r["reachable"]]
    ctx.facts.server_header = next((r["server"] for r in good if r.get("server")), None)
    if not good:
        r = bad[0]
        t = f"{r['target']['transport'].upper()} {hostport(r['target']['ip'], r['target']['port'])}"
        problem, fix = _EXPLAIN.get(r["verdict"], ("{t}: " + r["verdict"], "see -v evidence"))
        fmt = {"t": t, "port": r["target"]["port"], "proto": r["target"]["transport"].upper(),
               "error": r.get("error", "")}
        summary, hint = problem.format(**fmt), fix.format(**fmt)
        if r.get("tcp_same_port") == "open":
            summary += "; TCP on the same port answers"
            hint = ("UDP SIP is filtered while TCP passes: disable the SIP ALG / SIP helper on "
                    "the router, or use connection_type: tls")
        return ctx.result("fail", summary, hint, **details)

    r = good[0]
    t = f"{r['target']['transport'].upper()} {hostport(r['target']['ip'], r['target']['port'])}"
    rtt = r["rtt_ms"]
    summary = (f"{t} answered {r['status']} {r['reason']} in {rtt['avg']:.1f} ms "
               f"(min {rtt['min']:.1f}, max {rtt['max']:.1f}, n={rtt['samples']})")
    if r.get("server"):
        summary += f"; server: {r['server']}"
    lost_large = [size for size, v in (r.get("large_udp") or {}).items() if v != "answered"]
    if lost_large:
        return ctx.result("warn", summary + f"; padded OPTIONS of {', '.join(lost_large)} "
                          "bytes got no answer (IP fragments dropped)",
                          "large INVITEs (many codecs, long headers) will be lost over UDP: use "
                          "connection_type: tls, or allow IP fragments on the path", **details)
    if bad:
        return ctx.result("warn", summary + f"; {len(bad)} of {len(rows)} addresses do not "
                          "answer", "remove the dead addresses from DNS, or bring them up",
                          **details)
    return ctx.result("pass", summary, **details)
