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
    # the probes, the padded OPTIONS, then one round of alternatives when nothing answers
    return 4 * options.timeout * (options.samples + len(LARGE_SIZES) + 2) + 5 \
        + min(options.timeout, 2.0) * 2 + 2


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
_ALG_FIX = ("UDP SIP is filtered while TCP passes: disable the SIP ALG / SIP helper on the "
            "router, or use connection_type: tls")


def alternatives(transport: str, port: int) -> list[tuple[str, int]]:
    """What else to try when the configured transport fails: the usual mistakes are the other
    transport on the same port, or the standard port of a transport (RFC 3261 §19.1.2)."""
    if transport == "udp":
        alts = [("tcp", port), ("tls", port), ("udp", 5060), ("tls", 5061)]
    else:
        alts = [("tcp", port), ("udp", port), ("udp", 5060), ("tls", 5061)]
    out: list[tuple[str, int]] = []
    for alt in alts:
        if alt != (transport, port) and alt not in out:
            out.append(alt)
    return out


def explain(row: dict, alts: dict[str, str]) -> tuple[str, str]:
    """The summary and fix for an address that did not answer, weighing every fact gathered:
    the row of the configured transport and ``alts`` ("tls:5061" -> "answered" or the failure
    verdict of one OPTIONS there). Pure: unit-tested on its own."""
    tgt = row["target"]
    proto, port = tgt["transport"], tgt["port"]
    t = f"{proto.upper()} {hostport(tgt['ip'], port)}"
    verdict = row["verdict"]
    fmt = {"t": t, "port": port, "proto": proto.upper(), "error": row.get("error", "")}
    problem, fix = _EXPLAIN.get(verdict, ("{t}: " + verdict, "see -v evidence"))
    if proto == "tls" and row.get("tcp") == "open" and verdict == "no_answer":
        # The TCP connect succeeded, so nothing is "silently dropped": TLS itself got no answer.
        problem = "TCP {port} connects, but TLS on {t} gets no answer (handshake or OPTIONS)"
    summary, hint = problem.format(**fmt), fix.format(**fmt)

    def ok(transport: str, p: int) -> bool:
        return alts.get(f"{transport}:{p}") == "answered"

    answering = [f"{k.split(':')[0].upper()} {k.split(':')[1]}"
                 for k, v in alts.items() if v == "answered"]
    if answering:
        summary += "; SIP answers over " + ", ".join(answering)
    elif row.get("tcp_same_port") == "open":
        summary += "; TCP on the same port connects"
    if proto == "udp":
        also = " (or keep UDP and set port: 5060, where UDP answers)" if ok("udp", 5060) else ""
        if ok("tls", port):
            hint = f"port {port} speaks TLS, not UDP: set connection_type: tls{also}"
        elif ok("udp", 5060):
            hint = f"UDP SIP listens on 5060, not {port}: set port: 5060"
        elif ok("tls", 5061):
            hint = ("the PBX speaks TLS on 5061, not UDP: set connection_type: tls and "
                    "port: 5061")
        elif ok("tcp", port):
            hint = (_ALG_FIX if verdict == "no_answer" else
                    f"this port speaks TCP, not UDP: enable UDP SIP on the PBX's port {port} "
                    "(the connector speaks UDP or TLS), or use connection_type: tls")
        elif row.get("tcp_same_port") == "open" and verdict == "no_answer":
            hint = _ALG_FIX
    else:
        plain = [tr.upper() for tr in ("tcp", "udp") if ok(tr, port)]
        if ok("tls", 5061):
            hint = "TLS listens on 5061: set port: 5061"
        elif plain:
            hint = (f"port {port} speaks plain SIP ({'/'.join(plain)}), not TLS: set "
                    "connection_type: udp, or the port of the PBX's TLS listener (usually 5061)")
        elif ok("udp", 5060):
            hint = ("the PBX answers UDP on 5060 but not TLS: enable its TLS listener, or set "
                    "connection_type: udp and port: 5060")
    return summary, hint


async def _answers(ctx: CheckContext, target: Target) -> str:
    """One OPTIONS to an alternative: "answered" or the failure verdict."""
    opts = ctx.options
    try:
        async with open_target(ctx, target, verify=False) as conn:
            ex = await conn.request(Dialogless(conn, target).options(),
                                    timeout=min(opts.timeout, 2.0), t1=opts.t1)
            return _classify(ex)
    except (TimeoutError, OSError) as exc:
        return of_exception(exc).outcome.value


async def _alternatives(ctx: CheckContext, row: dict) -> dict[str, str]:
    tgt = row["target"]
    alts = alternatives(tgt["transport"], tgt["port"])
    found = await asyncio.gather(*(_answers(ctx, Target(tgt["host"], tgt["ip"], p, tr))
                                   for tr, p in alts))
    return {f"{tr}:{p}": v for (tr, p), v in zip(alts, found)}


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
        alts = await _alternatives(ctx, r)
        details["alternatives"] = alts
        summary, hint = explain(r, alts)
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
