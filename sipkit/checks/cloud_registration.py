"""cloud_registration: the created connector is there, and the PBX really has the cloud's binding.

Two views. The Mihu API's: the connector exists and its status settles (polled to a deadline;
where the API reports the cloud's own REGISTER outcome it says why it failed). The PBX's:
the test extension calls the connector's extension through the PBX. Only a binding the
cloud's REGISTER made lets the PBX route that call; 404/480 means it never succeeded. The call,
with its media, is kept for call_via_pbx_inbound (one call, one authenticated attempt).
"""

from __future__ import annotations

import asyncio
import time

from ..report import CheckResult
from .base import CheckContext
from .calls import call_target, ipv6_skip, place
from .via_pbx import (
    answer_contact_host,
    challenged,
    cloud_ips,
    pbx_targets,
    test_extension_problem,
    test_params,
    via_budget,
)

ID = "cloud_registration"
TITLE = "The cloud's registration on the PBX"
DEPENDS = ()
KINDS = ("pbx_extension",)
NOT_FOR = {"sip_trunk": "a trunk does not register to a PBX extension"}
BUDGET = via_budget
SETTLE_S = 20.0  # how long the cloud may take to register after creation
POLL_S = 0.5
UNSETTLED = {"pending", "provisioning", "creating", "registering"}

CAUSES = ("remote registration is disabled for the extension (it accepts only LAN devices)",
          ("an IP restriction on the extension (permit/deny, 'allowed networks') leaves out "
           "the connector server"),
          "the firewall or port-forward does not let SIP in from the internet",
          "fail2ban / auto-defense / SIP guard has banned the connector server's address")
NO_BINDING = {404, 480, 410, 408, 503}
_CLOUD_SAYS = {  # cause: (what, fix)
    "password": (
        "the PBX refused the connector's password ({code} {reason} after its challenge)",
        ("the password sent to Mihu is not extension {ext}'s password on the PBX: re-create "
         "the connector with the right pbx_password (`sipkit check --create --replace`), or "
         "set the extension's secret to it")),
    "address": (
        ("the PBX refused the cloud's REGISTER from {server} ({code} {reason}) before any "
         "challenge: it does not accept this extension from that address"),
        ("allow remote registration for extension {ext} and add the connector server "
         "{server} to its permitted networks; whitelist it in fail2ban/auto-defense")),
    "silent": (
        "the cloud's REGISTER from {server} got no answer from the PBX",
        ("SIP from the internet does not reach the PBX: open/forward {transport} {port} to "
         "it, and check fail2ban/auto-defense has not banned {server}")),
    "unknown_ext": (
        "the PBX does not know extension {ext} ({code} {reason})",
        "create extension {ext} on the PBX, or correct username_extension"),
}


def _cloud_cause(reg: dict) -> str:
    code = reg.get("code")
    if code in (None, 408) or (code or 0) >= 500 and code != 503:
        return "silent"
    if code == 404:
        return "unknown_ext"
    if code == 403 and not reg.get("challenged"):
        return "address"
    return "password"


async def _connector(ctx: CheckContext):
    """(connector, problem result): the API's connector for this phone number, settled."""
    from ..mihu.client import MihuClient
    from ..mihu.errors import ApiError, RateLimitError, ServerError, TransportError

    site, api = ctx.site, ctx.options.api

    def find():
        with MihuClient.from_settings(api, timeout=5.0) as client:
            return client.find_connector(site.phone_number)

    def get(uid):
        with MihuClient.from_settings(api, timeout=5.0) as client:
            return client.get_connector(uid)

    try:
        conn = await asyncio.to_thread(find)
        if conn is None:
            return None, ctx.result("fail", f"the Mihu API has no connector for "
                                    f"{site.phone_number}", "create it first: `sipkit check "
                                    "--create -c <site file>`")
        ctx.facts.connector = conn
        deadline = time.monotonic() + SETTLE_S
        while _unsettled(conn) and time.monotonic() < deadline:
            await asyncio.sleep(POLL_S)
            conn = await asyncio.to_thread(get, conn.uuid)
        ctx.facts.connector = conn
    except (TransportError, ServerError, RateLimitError) as exc:
        return None, ctx.result("error", f"the Mihu API did not answer: {exc}",
                                "check --api-url and the network; run verify again later",
                                api_exit=exc.exit_code)
    except ApiError as exc:
        return None, ctx.result("error", f"the Mihu API refused: {exc}",
                                exc.fix or "check the API token (--token-file)",
                                api_exit=exc.exit_code)
    return conn, None


def _unsettled(conn) -> bool:
    reg = conn.registration or {}
    return conn.status in UNSETTLED or reg.get("state") == "pending"


async def run(ctx: CheckContext) -> CheckResult:
    site = ctx.site
    conn, problem = await _connector(ctx)
    if problem is not None:
        return problem
    ext = conn.pbx.username_extension
    details = {"connector": conn.uuid, "connector_status": conn.status, "extension": ext,
               "sip_connector_server": conn.sip_connector_server,
               "cloud_registration": conn.registration}
    if ext != site.username_extension:
        return ctx.result("fail", f"the connector registers as extension {ext}, the site file "
                          f"says {site.username_extension}", "re-create it from this site "
                          "file: `sipkit check --create --replace`", **details)
    reg = conn.registration or {}
    words = {"ext": ext, "server": conn.sip_connector_server, "transport":
             site.connection_type.upper(), "port": site.port, "code": reg.get("code"),
             "reason": reg.get("reason")}
    if conn.status in UNSETTLED:
        return ctx.result("fail", f"the connector is still '{conn.status}' after "
                          f"{SETTLE_S:.0f} s", "wait a minute and run `sipkit verify` again; if "
                          "it stays so, contact Mihu support", **details)
    # A REGISTER still pending after SETTLE_S: the PBX has not answered it (a silent drop
    # runs into the transaction timeout, 32 s). The call below shows the PBX's side.
    if reg.get("state") == "failed":
        cause = _cloud_cause(reg)
        what, fix = _CLOUD_SAYS[cause]
        return ctx.result("fail", "the Mihu API reports " + what.format(**words),
                          fix.format(**words), cause=cause, **details)
    if site.setup_mode == "outbound":
        return ctx.result("pass", f"connector {conn.uuid} is {conn.status}"
                          + (", the cloud is registered" if reg.get("state") == "registered"
                             else "") + "; setup_mode outbound: no call to the extension",
                          **details)
    if why := test_extension_problem(ctx):
        return ctx.result("skip", f"connector {conn.uuid} is {conn.status}; not seen from the "
                          f"PBX side: {why}", **details)
    targets = await pbx_targets(ctx)
    pbx = call_target(targets)
    if skipped := ipv6_skip(ctx, pbx.ip):
        return skipped
    params = test_params(ctx, pbx, f"sip:{ext}@{pbx.hostport}")
    r = await place(ctx, params, pbx.ip)
    ctx.facts.via_pbx_call = r
    details |= {"test_extension": site.check.test_extension.username, "call": r.model_dump(),
                "target": params.target}
    if r.status == "answered":
        answered_by = answer_contact_host(r)
        cloud = await cloud_ips(conn)
        by_cloud = answered_by in cloud
        details["answered_by"] = answered_by
        if by_cloud or reg.get("state") == "registered":
            return ctx.result("pass", f"the PBX has the cloud's binding: extension {ext} "
                              f"answered through {pbx.hostport}"
                              + (f" from the connector server {answered_by}" if by_cloud
                                 else " (the Mihu API reports it registered)"), **details)
        return ctx.result("warn", f"a call to extension {ext} was answered by {answered_by}, "
                          f"not by the connector server ({', '.join(sorted(cloud)) or '?'}): "
                          "the cloud's binding is not seen from here",
                          "see call_via_pbx_inbound", **details)
    code, reason = r.code, r.reason
    if r.status == "rejected" and code in (401, 403, 407) and challenged(r):
        ctx.facts.test_extension_refused = True
        user = site.check.test_extension.username
        return ctx.result("fail", f"the PBX refused the test extension {user}'s password "
                          f"({code} {reason}); sipkit tried once and stops",
                          f"give extension {user}'s password on the PBX in "
                          "check.test_extension.password", **details)
    if code in NO_BINDING or r.status == "no_answer":
        got = f"{code} {reason}" if r.status == "rejected" else "no answer"
        if reg.get("state") == "pending":  # the cloud is still waiting for an answer
            what, fix = _CLOUD_SAYS["silent"]
            return ctx.result("fail", f"{what.format(**words)} in {SETTLE_S:.0f} s, and a call "
                              f"to extension {ext} through the PBX got {got}: the PBX has no "
                              "binding", fix.format(**words), cause="silent", **details)
        return ctx.result("fail", f"the PBX has no binding for extension {ext}: a call to it "
                          f"through {pbx.hostport} got {got}, so the cloud's REGISTER never "
                          f"succeeded. Likely: " + "; ".join(CAUSES),
                          f"on the PBX, let extension {ext} register from the connector server "
                          f"{conn.sip_connector_server} over the internet (remote registration, "
                          f"permitted networks, the firewall/port-forward for "
                          f"{site.connection_type.upper()} {site.port}, fail2ban whitelist)",
                          **details)
    if r.status == "rejected":
        return ctx.result("fail", f"the PBX answered the call to extension {ext} with {code} "
                          f"{reason}", "check that the test extension may call extension "
                          f"{ext}, and the extension's call handling on the PBX", **details)
    return ctx.result("error", f"the call to extension {ext} could not run: {r.error}",
                      "report this with the -v --json output", **details)
