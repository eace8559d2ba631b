"""call_via_pbx_inbound: a call from the test extension to the connector's extension, through
the PBX, reached the cloud and carried audio both ways.

The call itself is cloud_registration's (one call, one authenticated attempt): this check
judges its path (answered by the connector server, not by whatever else the PBX routes the
extension to) and its media, with the call checks' loss/jitter/MOS verdicts.
"""

from __future__ import annotations

from ..report import CheckResult
from .base import CheckContext
from .calls import judge_audio
from .via_pbx import answer_contact_host, call_facts, cloud_ips, hung_up, via_budget

ID = "call_via_pbx_inbound"
TITLE = "Call through the PBX to the agent"
DEPENDS = ("cloud_registration",)
KINDS = ("pbx_extension",)
NOT_FOR = {"sip_trunk": "a trunk has no PBX extension to call"}
BUDGET = via_budget


async def run(ctx: CheckContext) -> CheckResult:
    site, r, conn = ctx.site, ctx.facts.via_pbx_call, ctx.facts.connector
    if site.setup_mode == "outbound":
        return ctx.result("skip", "setup_mode is outbound: no inbound calls")
    if r is None:
        return ctx.result("skip", "cloud_registration placed no call through the PBX")
    ext = site.username_extension
    answered_by = answer_contact_host(r)
    cloud = await cloud_ips(conn)
    path = {"signalling_peer": r.signalling_peer, "answered_by": answered_by,
            "connector_server": sorted(cloud), "expected": answered_by in cloud}
    details = {"call": r.model_dump(), **call_facts(r, **path)}
    if r.status != "answered":
        return ctx.result("fail", f"the call to extension {ext} was not answered "
                          f"({r.code} {r.reason})", "see cloud_registration", **details)
    if cloud and answered_by not in cloud:
        return ctx.result("fail", f"the PBX sent the call for extension {ext} to "
                          f"{answered_by}, not to the connector server "
                          f"({', '.join(sorted(cloud))})",
                          f"extension {ext} forwards or rings elsewhere: remove call forwarding, "
                          "follow-me, ring groups, DND or voicemail on it, and any other device "
                          "registered as it", **details)
    summary = (f"extension {ext} through the PBX reached the agent ({hung_up(r)}, "
               f"{r.media_seconds:.1f} s of media)")
    return judge_audio(ctx, r, summary, **details)
