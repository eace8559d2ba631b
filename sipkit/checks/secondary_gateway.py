"""secondary_gateway: the trunk's failover answers too. A failover that is down is a FAIL:
it is found on the day the gateway fails, which is the worst day to find it.

The secondary gets the same dns, transport (and tls) checks as the gateway, run on its own
endpoint. Its credentials are the gateway's: they are proven once, by the credentials check
(one authenticated attempt per credential per run).
"""

from __future__ import annotations

from ..report import CheckResult
from . import dns, tls, transport
from .base import CheckContext

ID = "secondary_gateway"
TITLE = "Secondary gateway"
DEPENDS = ("config",)
KINDS = ("sip_trunk",)
NOT_FOR = {"pbx_extension": "a connector has one registrar"}


def BUDGET(options, site) -> float:
    return transport.BUDGET(options, site) + 12 * options.timeout


async def run(ctx: CheckContext) -> CheckResult:
    endpoints = ctx.site.endpoints() if ctx.site is not None else []
    if len(endpoints) < 2:
        return ctx.result("skip", "no secondary_gateway: calls have no failover")
    ep = endpoints[1]
    sub = CheckContext(endpoint=ep, site=ctx.site, options=ctx.options, redactor=ctx.redactor,
                       recorder=ctx.recorder, evidence=ctx.evidence)
    steps = [dns, transport] + ([tls] if ep.transport == "tls" else [])
    summaries: dict[str, str] = {}
    for mod in steps:
        r = await mod.run(sub)
        summaries[mod.ID] = f"{r.status}: {r.summary}"
        if not r.ok:
            return ctx.result("fail", f"secondary gateway {ep.display}: {r.summary}",
                              "calls fail over to it when the gateway is down: "
                              + (r.hint or "see -v"), endpoint=ep.display, failed=mod.ID,
                              steps=summaries)
    answered = summaries["transport"].split(": ", 1)[1]
    status = "warn" if any(v.startswith("warn") for v in summaries.values()) else "pass"
    return ctx.result(status, f"secondary gateway {ep.display} answers: {answered}",
                      None if status == "pass" else "see the steps in --json / -v",
                      endpoint=ep.display, steps=summaries)
