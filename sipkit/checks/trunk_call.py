"""trunk_call: one test call through the trunk to ``check.outbound_test_number``, the way the
agent will call out: an INVITE to the gateway answered with the trunk's digest credentials.

A call through a trunk can be billed, so it runs only when the site file names a number, and
only after the credentials check has not refused them (at most one refused attempt per run).
"""

from __future__ import annotations

from ..report import CheckResult
from .base import CheckContext
from .call_outbound import MEANING
from .calls import budget, judge_audio, outbound_params, outbound_target, place

ID = "trunk_call"
TITLE = "Test call through the trunk"
DEPENDS = ("credentials",)
KINDS = ("sip_trunk",)
NOT_FOR = {"pbx_extension": "the connector's test calls are call_inbound and call_outbound"}
BUDGET = budget


async def run(ctx: CheckContext) -> CheckResult:
    trunk = ctx.site
    number = trunk.check.outbound_test_number
    if not number:
        return ctx.result("skip", "no check.outbound_test_number: no call placed (a call "
                          "through a trunk can be billed)")
    if trunk.direction == "inbound":
        return ctx.result("skip", "direction is inbound: the agent places no calls")
    t = outbound_target(ctx, "gateway")
    if isinstance(t, CheckResult):
        return t
    params = outbound_params(ctx, t, number, register=False)
    r = await place(ctx, params, t.ip)
    details = {"number": number, "target": params.target}
    if r.status == "answered":
        return judge_audio(ctx, r, f"the trunk connected {number}", **details)
    if r.status == "rejected":
        if r.code in (401, 407, 403):
            return ctx.result("fail", f"the gateway refused the call: {r.code} {r.reason}",
                              "check the trunk's username and password, and that the "
                              "account may call out from this address", call=r.model_dump(),
                              **details)
        return ctx.result("fail", f"the gateway rejected {number} with {r.code} {r.reason}: "
                          f"{MEANING.get(r.code or 0, 'the provider refused the call')}",
                          "write check.outbound_test_number in E.164 (+ and country code) "
                          "unless the provider documents another format; check the account "
                          "may call that destination", call=r.model_dump(), **details)
    if r.status == "no_answer":
        return ctx.result("fail", f"no answer from the gateway for {number}",
                          "see the transport check and -v", call=r.model_dump(), **details)
    return ctx.result("error", f"the test call could not run: {r.error}",
                      "report this with the -v --json output", call=r.model_dump(), **details)
