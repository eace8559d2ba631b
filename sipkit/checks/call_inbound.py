"""call_inbound: a test call from this site to the SIP connector server, with media.

What the PBX will do for every inbound call: INVITE the connector from the site's address.
Before the connector exists the server refuses the source (403): reachable, not yet allowed.
"""

from __future__ import annotations

from ..media.model import CallParams
from ..net.addresses import uri_host
from ..report import CheckResult
from .base import CheckContext
from .calls import (
    budget,
    call_features,
    extra_calls,
    ipv6_skip,
    judge_audio,
    local_ip_towards,
    place,
    tls_params,
)
from .cloud import connector_server

ID = "call_inbound"
TITLE = "Test call to the connector"
DEPENDS = ("allowed_ip",)
KINDS = ("pbx_extension",)
NOT_FOR = {"sip_trunk": "a trunk's inbound calls come from the provider, not from this site"}
BUDGET = budget


async def run(ctx: CheckContext) -> CheckResult:
    site = ctx.site
    if site.setup_mode == "outbound":
        return ctx.result("skip", "setup_mode is outbound: no inbound calls")
    lookup = await connector_server(ctx)
    if lookup.target is None:
        return ctx.result("skip", lookup.reason or "no connector server address")
    t = lookup.target
    if skipped := ipv6_skip(ctx, t.ip):
        return skipped
    uri = f"sip:{site.phone_number}@{t.hostport}" + (";transport=tls" if t.transport == "tls"
                                                        else "")
    params = CallParams(target=uri, transport=t.transport, local_ip=local_ip_towards(ctx, t.ip),
                        from_uri=f"sip:{site.username_extension}@{uri_host(site.registrar_server)}",
                        setup_timeout=max(5.0, ctx.options.timeout * 2), **tls_params(ctx),
                        **call_features(site))
    r = await place(ctx, params, t.ip)
    details = {"target": uri}
    if r.status == "answered":
        extra = await extra_calls(ctx, params, t.ip)
        return judge_audio(ctx, r, f"call to {site.phone_number} at {t.hostport}",
                           dtmf_role="inbound", extra_findings=extra, **details)
    if r.status == "rejected" and r.code == 403:
        from ..mihu.lookup import connector_exists

        exists = await connector_exists(ctx.options.api, site.phone_number)
        if exists:
            return ctx.result("fail", f"the connector server refused the call from "
                              f"{params.local_ip} (403 {r.reason}) although the connector "
                              "exists", "allowed_ip does not match this site's address: see "
                              "the allowed_ip check", call=r.model_dump(), **details)
        return ctx.result("warn", f"the connector server {t.hostport} is reachable but "
                          f"does not allow this site yet (403 {r.reason})",
                          "expected before the connector exists: create it with "
                          "`sipkit check --create`, which calls again afterwards",
                          call=r.model_dump(), **details)
    if r.status == "rejected":
        return ctx.result("fail", f"the connector server answered {r.code} {r.reason}",
                          "see -v; if it persists, send the JSON report to Mihu support",
                          call=r.model_dump(), **details)
    if r.status == "no_answer":
        return ctx.result("fail", f"no answer to the INVITE from {t.hostport}",
                          "INVITEs from this site do not reach the connector server, or its "
                          "answers do not come back: check the firewall for "
                          f"{t.transport.upper()} {t.port}", call=r.model_dump(), **details)
    return ctx.result("error", f"the test call could not run: {r.error}",
                      "report this with the -v --json output", call=r.model_dump(), **details)
