"""sip_alg: does something on the way to the internet rewrite SIP (a "SIP ALG")?

sipkit sends a REGISTER and an INVITE with SDP to the reflector over UDP and over TCP; the
reflector hands back the exact bytes that arrived. NAT changes only the IP/UDP headers, so
any difference in the SIP text — Via sent-by, Contact, SDP c=/o=/m=, Max-Forwards, headers
added or dropped — was made by an application-level gateway. Many routers' ALGs break calls
(one-way audio, failed re-registrations); a connector handles NAT itself and needs none.
"""

from __future__ import annotations

import asyncio
import base64
import time

from ..net.addresses import hostport, split_hostport
from ..net.outcome import of_exception
from ..net.target import Target
from ..net.transport import connect
from ..report import CheckResult
from ..sip.errors import SipParseError
from ..sip.message import Request, parse
from ..sip.sdp import audio_offer
from .base import CheckContext
from .reflected import NO_REFLECTOR_FIX, open_reflector, vantage
from .sipio import Dialogless

ID = "sip_alg"
TITLE = "SIP ALG on the way out"
DEPENDS = ("config",)
TRANSPORTS = ("udp", "tcp")
METHODS = ("REGISTER", "INVITE")
MEDIA_PORT = 40000  # named in the SDP only: no media is sent
BUDGET = 60
_SDP_FIELDS = ("c=", "o=", "m=")
# The clearest example of a rewrite for the summary: the media address first (one-way audio).
_EXAMPLE_ORDER = ("SDP c=", "Contact", "SDP m=", "SDP o=", "Via", "Max-Forwards")


def _short(text: str, limit: int = 90) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"


def build(conn, ruri_user: str, host: str, port: int, user: str, domain: str) -> dict:
    """The REGISTER and INVITE as they leave this machine (bytes), for one connection."""
    lip, lport = conn.local[0], conn.local[1]
    d = Dialogless(conn, Target(host, host, port, conn.transport), user=user, domain=domain)
    ruri = f"sip:{ruri_user}@{hostport(host, port)}"
    contact = f"<sip:{user}@{hostport(lip, lport)};transport={conn.transport}>"
    reg = d.build("REGISTER", ruri, to_user=user, contact=contact, expires=60)
    inv = d.build("INVITE", ruri, contact=contact, extra=[("Content-Type", "application/sdp")])
    inv.body = audio_offer(lip, MEDIA_PORT)
    return {"REGISTER": reg.to_bytes(), "INVITE": inv.to_bytes()}


def _sdp_lines(body: bytes) -> dict[str, list[str]]:
    lines = body.decode("utf-8", "replace").replace("\r\n", "\n").split("\n")
    return {f: [ln for ln in lines if ln.startswith(f)] for f in _SDP_FIELDS}


def diff(sent: bytes, arrived: bytes) -> list[dict]:
    """What changed between two SIP messages: [{field, sent, arrived}]; [] if identical."""
    if sent == arrived:
        return []
    try:
        a, b = parse(sent), parse(arrived)
    except SipParseError as exc:
        return [{"field": "message", "sent": f"{len(sent)} bytes of SIP",
                 "arrived": f"garbled, no longer valid SIP ({exc})"}]
    out: list[dict] = []
    if isinstance(a, Request) and isinstance(b, Request) and (a.method, a.uri) != (b.method, b.uri):
        out.append({"field": "Request-URI", "sent": a.uri, "arrived": b.uri})
    names = list(dict.fromkeys(n for m in (a, b) for n, _ in m.headers.items()))
    for name in names:
        if name == "Content-Length":
            continue
        va, vb = a.headers.get_all(name), b.headers.get_all(name)
        if va != vb:
            out.append({"field": name, "sent": "; ".join(va) or "(absent)",
                        "arrived": "; ".join(vb) or "(absent)"})
    sa, sb = _sdp_lines(a.body), _sdp_lines(b.body)
    for f in _SDP_FIELDS:
        if sa[f] != sb[f]:
            out.append({"field": f"SDP {f}", "sent": " | ".join(sa[f]) or "(absent)",
                        "arrived": " | ".join(sb[f]) or "(absent)"})
    if not out and a.body != b.body:
        out.append({"field": "SDP", "sent": f"{len(a.body)} bytes",
                    "arrived": f"{len(b.body)} bytes"})
    if not out:  # the same fields, other bytes (folding, spacing, header order)
        out.append({"field": "formatting", "sent": f"{len(sent)} bytes",
                    "arrived": f"{len(arrived)} bytes"})
    return out


async def _send_all(ctx: CheckContext, mirror: dict) -> tuple[dict, dict]:
    ep = ctx.endpoint
    host, port = split_hostport(mirror["udp"], 5060)
    host = host.strip("[]")
    sent: dict = {}
    errors: dict = {}
    for transport in TRANSPORTS:
        try:
            conn = await connect(host, port, transport, local_ip=ctx.options.source_ip,
                                 timeout=ctx.options.timeout)
        except (OSError, TimeoutError) as exc:
            errors[transport] = str(of_exception(exc, connecting=True))
            continue
        try:
            msgs = build(conn, mirror["ruri_user"], host, port, ep.username or "sipkit",
                         ep.sip_domain)
            for method, data in msgs.items():
                conn.send_raw(data)
                sent[(transport, method)] = {"data": data,
                                             "local": hostport(conn.local[0], conn.local[1])}
            await asyncio.sleep(0.2)  # let TCP flush before the close
        finally:
            await conn.close()
    return sent, errors


def _arrivals(messages: list[dict]) -> dict:
    """(transport, method) -> what arrived; keyed by the start line, so a message an ALG
    garbled into something that no longer parses still counts (and shows as changed)."""
    out = {}
    for m in messages:
        if "data_b64" not in m:
            continue
        data = base64.b64decode(m["data_b64"])
        method = data.split(b" ", 1)[0].decode("ascii", "replace")
        if method in METHODS:
            out.setdefault((m["transport"], method), {**m, "data": data})
    return out


async def run(ctx: CheckContext) -> CheckResult:
    from ..reflector.client import ReflectorError

    client, why = open_reflector(ctx)
    if client is None:
        return ctx.result("skip", why, NO_REFLECTOR_FIX)
    url = ctx.site.check.reflector
    try:
        async with client:
            mirror = await client.mirror_open()
            sent, errors = await _send_all(ctx, mirror)
            arrived: dict = {}
            deadline = time.monotonic() + max(3.0, 2 * ctx.options.timeout)
            while time.monotonic() < deadline:  # polls count against the token's rate limit
                await asyncio.sleep(0.3)
                arrived = _arrivals((await client.mirror_get(mirror["id"]))["messages"])
                if set(sent) <= set(arrived):
                    break
    except ReflectorError as exc:
        return ctx.result("error", f"the reflector did not mirror: {exc}",
                          "check check.reflector, its token and that the reflector runs",
                          reflector=url, code=exc.code)
    return verdict(ctx, sent, arrived, errors, url)


def verdict(ctx: CheckContext, sent: dict, arrived: dict, errors: dict, url: str) -> CheckResult:
    rows = []
    for (transport, method), s in sent.items():
        a = arrived.get((transport, method))
        row = {"transport": transport, "method": method, "local": s["local"],
               "arrived": a is not None}
        if a is not None:
            row["seen_from"] = a["source"]
            row["changes"] = diff(s["data"], a["data"])
            if ctx.options.verbose:
                ctx.note(f"{transport.upper()} {method} as sent",
                         s["data"].decode("utf-8", "replace"))
                ctx.note(f"{transport.upper()} {method} as it arrived",
                         a["data"].decode("utf-8", "replace"))
        rows.append(row)
    details = {"reflector": url, "messages": rows, "connect_errors": errors}
    if not rows or not any(r["arrived"] for r in rows):
        why = "; ".join(f"{t}: {e}" for t, e in errors.items())
        return ctx.result("fail", "no SIP request reached the reflector's SIP port "
                          f"({vantage(url)}){': ' + why if why else ''}",
                          "allow outbound UDP and TCP 5060 from this site (the PBX must reach "
                          "the connector server)", **details)
    changed = [r for r in rows if r.get("changes")]
    lost = [r for r in rows if not r["arrived"]]
    seen = next(r["seen_from"] for r in rows if r["arrived"])
    fix = ("turn off the SIP ALG ('SIP helper', 'SIP transformations', 'SIP fixup') on the "
           "router or firewall of this site: the connector and the PBX handle NAT themselves; "
           "or use connection_type: tls, which an ALG cannot read")
    if changed:
        by_transport: dict[str, list[str]] = {}
        for r in changed:
            names = by_transport.setdefault(r["transport"].upper(), [])
            for c in r["changes"]:
                if c["field"] not in names:
                    names.append(c["field"])
        every = [c for r in changed for c in r["changes"]]
        first = min(every, key=lambda c: _EXAMPLE_ORDER.index(c["field"])
                    if c["field"] in _EXAMPLE_ORDER else len(_EXAMPLE_ORDER))
        what = "; ".join(f"{t}: {', '.join(f)}" for t, f in by_transport.items())
        # TLS hides SIP from an ALG: a TLS site only learns the router has one.
        status = "warn" if ctx.endpoint.transport == "tls" else "fail"
        return ctx.result(status, f"a SIP ALG rewrites SIP on the way out ({what}); e.g. "
                          f"{first['field']} {_short(first['sent'])!r} -> "
                          f"{_short(first['arrived'])!r} "
                          f"({vantage(url)})", fix, **details)
    if lost:
        names = ", ".join(f"{r['transport'].upper()} {r['method']}" for r in lost)
        return ctx.result("fail", f"{names} never reached the internet while the others did "
                          f"({vantage(url)}): a SIP ALG or filter drops them", fix, **details)
    return ctx.result("pass", f"no SIP ALG: REGISTER and INVITE with SDP reached the internet "
                      f"byte for byte over {' and '.join(t.upper() for t in TRANSPORTS)} "
                      f"(this site is {seen.rsplit(':', 1)[0]} outside; {vantage(url)})",
                      **details)
