"""nat_binding (opt-in): how long the site's NAT keeps an idle UDP flow open.

sipkit opens a UDP flow to the reflector; the reflector sends an OPTIONS back on it after
growing idle times (check.nat_binding.idle_s, bounded by budget_s) and sipkit answers each.
The longest idle still answered is what the NAT kept; it is compared with the connector's
keep-alive interval and the registration refresh: a NAT that forgets the flow sooner makes
requests towards the site (an incoming call, a BYE) vanish.
"""

from __future__ import annotations

import asyncio

from ..net.addresses import hostport, split_hostport
from ..report import CheckResult
from ..sip.builder import build_request, new_call_id, response_to
from ..sip.errors import SipParseError
from ..sip.message import Request, Response, parse
from .base import CheckContext
from .reflected import NO_REFLECTOR_FIX, open_reflector, vantage

ID = "nat_binding"
TITLE = "NAT binding lifetime"
DEPENDS = ("config",)
AFTER = ("register",)
HELLO_TRIES = 3


def BUDGET(options, site) -> float:
    nb = getattr(getattr(site, "check", None), "nat_binding", None)
    return (nb.budget_s + 60) if nb is not None else 30


class _Flow(asyncio.DatagramProtocol):
    """The agent's end of the flow: answers the reflector's OPTIONS, notes the hello's 200."""

    def __init__(self) -> None:
        self.transport = None
        self.hello_ok = asyncio.Event()
        self.probes_answered = 0

    def connection_made(self, transport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr) -> None:
        try:
            msg = parse(data)
        except SipParseError:
            return
        if isinstance(msg, Response):
            if msg.status == 200:
                self.hello_ok.set()
        elif isinstance(msg, Request) and msg.method == "OPTIONS":
            self.transport.sendto(response_to(msg, 200, "OK", "sipkit").to_bytes())
            self.probes_answered += 1

    def error_received(self, exc: Exception) -> None:
        pass


async def run(ctx: CheckContext) -> CheckResult:
    from ..reflector.client import ReflectorError

    client, why = open_reflector(ctx)
    if client is None:
        return ctx.result("skip", why, NO_REFLECTOR_FIX)
    nb = ctx.site.check.nat_binding
    if nb is None:
        await client.aclose()
        return ctx.result("skip", "opt-in: set check.nat_binding: {} to measure how long the "
                          "site's NAT keeps an idle UDP flow (it takes up to budget_s)")
    url = ctx.site.check.reflector
    loop = asyncio.get_running_loop()
    transport = None
    try:
        async with client:
            b = await client.binding_open()
            host, port = split_hostport(b["udp"], 5060)
            host = host.strip("[]")
            transport, flow = await loop.create_datagram_endpoint(
                _Flow, remote_addr=(host, port),
                local_addr=(ctx.options.source_ip, 0) if ctx.options.source_ip else None)
            lip, lport = transport.get_extra_info("sockname")[:2]
            hello = build_request(
                "OPTIONS", f"sip:{b['ruri_user']}@{hostport(host, port)}",
                from_uri=f"sip:sipkit@{hostport(lip, lport)}", to_uri=f"sip:{hostport(host, port)}",
                call_id=new_call_id(lip), cseq=1, via_host=lip, via_port=lport, transport="UDP")
            for _ in range(HELLO_TRIES):
                transport.sendto(hello.to_bytes())
                try:
                    await asyncio.wait_for(flow.hello_ok.wait(), 1.0)
                    break
                except TimeoutError:
                    continue
            if not flow.hello_ok.is_set():
                return ctx.result("fail", f"no answer from the reflector's UDP {b['udp']}: "
                                  "outbound UDP is blocked here", "allow outbound UDP 5060",
                                  reflector=url)
            res = await client.binding_run(b["id"], list(nb.idle_s), nb.budget_s)
    except ReflectorError as exc:
        return ctx.result("error", f"the reflector did not run the binding test: {exc}",
                          "check check.reflector, its token and that the reflector runs",
                          reflector=url, code=exc.code)
    finally:
        if transport is not None:
            transport.close()
    return verdict(ctx, res, url)


def verdict(ctx: CheckContext, res: dict, url: str) -> CheckResult:
    nb = ctx.site.check.nat_binding
    reg = ctx.results.get("register")
    refresh = reg.details.get("granted_expires") if reg is not None else None
    kept, lost = res.get("longest_kept_s"), res.get("first_lost_s")
    details = {"reflector": url, **res, "keepalive_s": nb.keepalive_s,
               "registration_refresh_s": refresh}
    tail = f"; keep-alive every {nb.keepalive_s:g} s" + (
        f", registration refresh {refresh} s" if refresh else "") + f" ({vantage(url)})"
    if lost is None:
        return ctx.result("pass", f"the site's NAT kept an idle UDP flow for {kept:g} s, the "
                          f"longest tried{tail}", **details)
    span = f"between {kept:g} and {lost:g} s" if kept else f"within {lost:g} s"
    fix = (f"raise the router's UDP session timeout above {max(nb.keepalive_s, refresh or 0):g}"
           " s (180 s is common), or use connection_type: tls (TCP flows live longer)")
    if not kept or kept < nb.keepalive_s:
        return ctx.result("fail", f"the site's NAT forgets an idle UDP flow {span}: shorter "
                          f"than the connector's keep-alive interval{tail}", fix, **details)
    if refresh and lost < refresh:
        return ctx.result("warn", f"the site's NAT forgets an idle UDP flow {span}: shorter "
                          f"than the registration refresh; only the keep-alives hold it{tail}",
                          fix, **details)
    return ctx.result("pass", f"the site's NAT keeps an idle UDP flow {span}{tail}", **details)
