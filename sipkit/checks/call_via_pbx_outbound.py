"""call_via_pbx_outbound: the agent calls the test extension through the connector and the PBX.

sipkit registers as the test extension, waits, and asks the Mihu API to place a call from the
agent to it (sipkit.mihu.endpoints CALLS, inference). The cloud dials the number through the
connector's normalizer and the PBX, with the connector's credentials: a wrong rule shows as
the PBX's 404/484, read back from the API's view of the call. The INVITE must come from the
PBX, not straight from the cloud; then audio both ways, as the call checks measure it.
"""

from __future__ import annotations

import asyncio
import time

from ..report import CheckResult
from .base import CheckContext
from .calls import call_target, ipv6_skip, judge_audio, place
from .via_pbx import (
    call_facts,
    challenged,
    cloud_ips,
    first_invite,
    hung_up,
    pbx_targets,
    test_extension_problem,
    test_params,
    via_budget,
)

ID = "call_via_pbx_outbound"
TITLE = "Call from the agent through the PBX"
DEPENDS = ("cloud_registration",)
KINDS = ("pbx_extension",)
NOT_FOR = {"sip_trunk": "a trunk's outbound call is the trunk_call check"}
BUDGET = via_budget
WAIT_S = 20.0  # for the agent's call to arrive
POLL_S = 0.5
_REFUSED = {404: "the PBX does not know this number", 484: "the number is incomplete for the "
            "PBX's dial plan", 403: "the PBX forbids the connector's extension to call it",
            401: "the PBX refused the connector's credentials", 407: "the PBX refused the "
            "connector's credentials", 480: "the test extension is unavailable", 486: "busy"}


class _ApiCall:
    """The API side of the call, run beside the answering worker."""

    def __init__(self, ctx: CheckContext, number: str):
        self.ctx, self.number = ctx, number
        self.call = None  # sipkit.mihu.models.Call, last seen
        self.error = None  # (status, words) when the API refused or did not answer
        self.asked_at: float | None = None  # wall clock of the request
        self.task: asyncio.Task | None = None
        self.done = asyncio.Event()

    def start(self, stop) -> None:
        self.task = asyncio.ensure_future(self._run(stop))

    async def _run(self, stop) -> None:
        from ..mihu.client import MihuClient
        from ..mihu.errors import ApiError, TransportError

        ctx, conn = self.ctx, self.ctx.facts.connector
        seconds = ctx.site.check.call_seconds + 15  # the cloud hangs up after this anyway

        def ask():
            with MihuClient.from_settings(ctx.options.api, timeout=5.0) as client:
                return client.place_call(conn.agent_uuid, self.number, conn.uuid, seconds)

        def look(cid):
            with MihuClient.from_settings(ctx.options.api, timeout=5.0) as client:
                return client.get_call(cid)

        try:
            self.asked_at = time.time()
            self.call = await asyncio.to_thread(ask)
            while not self.done.is_set() and self.call.status not in ("failed", "completed"):
                await asyncio.sleep(POLL_S)
                self.call = await asyncio.to_thread(look, self.call.id)
        except TransportError as exc:
            self.error = ("error", f"the Mihu API did not answer: {exc}")
        except ApiError as exc:
            self.error = ("fail" if exc.status in (404, 422) else "error",
                          f"the Mihu API refused the call ({exc.status}): {exc}")
        if self.error or (self.call and self.call.status == "failed"):
            stop()  # nothing will come: the worker stops waiting and un-registers


async def run(ctx: CheckContext) -> CheckResult:
    site, conn = ctx.site, ctx.facts.connector
    if site.setup_mode == "inbound":
        return ctx.result("skip", "setup_mode is inbound: no outbound calls")
    if conn is None:
        return ctx.result("skip", "no connector (see cloud_registration)")
    if why := test_extension_problem(ctx):
        return ctx.result("skip", why)
    test = site.check.test_extension
    pbx = call_target(await pbx_targets(ctx))
    if skipped := ipv6_skip(ctx, pbx.ip):
        return skipped
    api = _ApiCall(ctx, test.dial)
    params = test_params(ctx, pbx, f"sip:{test.username}@{pbx.hostport}",
                         registrar=f"sip:{pbx.hostport}", answer=True, wait_timeout=WAIT_S)
    try:
        r = await place(ctx, params, pbx.ip, on_ready=api.start)
    finally:
        api.done.set()
        if api.task is not None:
            await api.task
    call = api.call
    dialled = call.to if call and call.to else None
    shown = f"{test.dial} → {dialled}" if dialled and dialled != test.dial else test.dial
    details = {"call": r.model_dump(), "number": test.dial, "dialled": dialled,
               "api_call": call.model_dump() if call else None}
    if r.registration is not None and not 200 <= r.registration < 300:
        if r.registration in (401, 403, 407) or challenged(r):
            ctx.facts.test_extension_refused = True
            return ctx.result("fail", f"the PBX refused the test extension {test.username}'s "
                              f"REGISTER ({r.registration} {r.registration_reason}); sipkit "
                              "tried once and stops", f"give extension {test.username}'s "
                              "password on the PBX in check.test_extension.password", **details)
        return ctx.result("error", f"the test extension could not register: {r.error}",
                          "check that sipkit reaches the PBX (sipkit check)", **details)
    if api.error:
        status, words = api.error
        return ctx.result(status, words, "check that the connector exists and places calls "
                          "(setup_mode both or outbound); run verify again later if the API "
                          "was down", **details)
    invite = first_invite(r)
    if r.status != "answered" or invite is None:
        code = call.sip_code if call else None
        if code and code >= 300:
            meaning = _REFUSED.get(code, "the PBX refused the call")
            fix = ("fix the connector's normalizer so numbers reach the PBX in the form its "
                   "dial plan expects (`sipkit normalize --explain`)" if code in (404, 484)
                   else "check the connector extension's outbound permissions on the PBX")
            return ctx.result("fail", f"the PBX refused the agent's call to {shown} with "
                              f"{code} {call.sip_reason}: {meaning}", fix, **details)
        return ctx.result("fail", f"the agent's call to {shown} did not reach extension "
                          f"{test.username} in {WAIT_S:.0f} s"
                          + (f" (the API says '{call.status}')" if call else ""),
                          "check the PBX's routing of the number to the test extension and "
                          "that the connector may call out (setup_mode)", **details)
    source, arrived, _ = invite
    pbx_ips = {t.ip for t in await pbx_targets(ctx)}
    cloud = await cloud_ips(conn)
    path = {"invite_from": source, "pbx": sorted(pbx_ips), "expected": source in pbx_ips}
    setup_ms = round((arrived - api.asked_at) * 1000) if api.asked_at else None
    details |= call_facts(r, **path) | {"setup_ms": setup_ms}
    if source not in pbx_ips:
        where = "straight from the cloud" if source in cloud else f"from {source}"
        return ctx.result("fail", f"the agent's call reached extension {test.username} "
                          f"{where}, not through the PBX ({', '.join(sorted(pbx_ips))})",
                          "the test extension must be registered only on this PBX; see -v",
                          **details)
    summary = (f"the agent called {shown} through the PBX in "
               f"{setup_ms if setup_ms is not None else '?'} ms ({hung_up(r)})")
    return judge_audio(ctx, r, summary, **details)
