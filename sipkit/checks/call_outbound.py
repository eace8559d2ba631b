"""call_outbound: register with the connector's credentials and call the test number, in the
form the connector's number rule gives it, through the PBX — as the connector will.

It runs after the register check has shown the password right, so its REGISTER cannot add to
a lockout (pjsua2 is told never to retry it).
"""

from __future__ import annotations

from ..normalize import normalize
from ..report import CheckResult
from .base import CheckContext
from .calls import (
    AUDIT_CODECS,
    budget,
    codec_audit,
    extra_calls,
    judge_audio,
    outbound_params,
    outbound_target,
    place,
)

ID = "call_outbound"
TITLE = "Test call through the PBX"
DEPENDS = ("register",)
KINDS = ("pbx_extension",)
NOT_FOR = {"sip_trunk": "the trunk's own test call is the trunk_call check"}
BUDGET = budget

MEANING = {404: "the PBX does not know this number", 484: "the number is incomplete for "
            "the PBX's dial plan", 403: "the PBX forbids this extension to call it",
            480: "the destination is unavailable", 486: "busy", 488: "no common codec",
            503: "the PBX has no route (trunk down?)", 603: "declined"}


async def run(ctx: CheckContext) -> CheckResult:
    site = ctx.site
    if site.setup_mode == "inbound":
        return ctx.result("skip", "setup_mode is inbound: no outbound calls")
    raw = site.check.outbound_test_number
    if not raw:
        return ctx.result("skip", "no check.outbound_test_number in the site file")
    number = normalize(raw, site.normalizer).result if site.normalizer else raw
    t = outbound_target(ctx, "PBX")
    if isinstance(t, CheckResult):
        return t
    params = outbound_params(ctx, t, number, register=True)
    r = await place(ctx, params, t.ip)
    details = {"number": number, "raw_number": raw, "target": params.target}
    shown = f"{raw} → {number}" if number != raw else number
    if r.status == "answered":
        extra = await extra_calls(ctx, params, t.ip)
        return judge_audio(ctx, r, f"the PBX connected {shown}", dtmf_role="outbound",
                           extra_findings=extra, **details)
    if r.status == "rejected" and r.code == 488 and site.check.codec_audit:
        audit = await codec_audit(ctx, params, t.ip)
        return ctx.result(audit["status"], f"the PBX rejected {shown} with 488 "
                          f"{r.reason}; {audit['summary']}", audit.get("hint"),
                          call=r.model_dump(), codec_audit=audit["details"], **details)
    if r.status == "rejected":
        meaning = MEANING.get(r.code or 0, "the PBX refused the call")
        if r.code == 488:
            meaning += (" with this side (set check.codec_audit: true to see which of "
                        f"{', '.join(AUDIT_CODECS)} it takes)")
        return ctx.result("fail", f"the PBX rejected {shown} with {r.code} {r.reason}: "
                          f"{meaning}", "fix the connector's normalizer so numbers reach the "
                          "PBX in the form its dial plan expects (`sipkit normalize --explain`)"
                          if r.code in (404, 484) else "check the PBX's outbound routes and "
                          "the extension's permissions", call=r.model_dump(), **details)
    if r.status == "no_answer":
        return ctx.result("fail", f"no answer from the PBX for {shown}",
                          "the PBX or its trunk does not answer: check its logs",
                          call=r.model_dump(), **details)
    return ctx.result("fail" if r.registration else "error",
                      f"the test call could not run: {r.error}",
                      "the registration failed for the media engine although the register "
                      "check passed: compare with -v" if r.registration else
                      "report this with the -v --json output", call=r.model_dump(), **details)
