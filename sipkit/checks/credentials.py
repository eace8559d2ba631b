"""credentials: a trunk's username and password work, proven without placing a call.

Providers authenticate in different places (RFC 3261 §22): many challenge an OPTIONS sent with
the account's From user; some only INVITE; some offer registration. So: one OPTIONS without
credentials; a 401/407 is answered exactly once. If the OPTIONS is not challenged, a REGISTER
(where the provider offers it, ``check.registration``) goes through the register check's core
with its one-attempt rule. Never an INVITE: a call can be billed. When nothing challenges, the
verdict says the credentials are not verified, and why.
"""

from __future__ import annotations

from ..net.outcome import of_exchange
from ..report import CheckResult
from ..sip.digest import DigestError, authorization, parse_challenges, pick_strongest
from .base import CheckContext
from .sipio import Dialogless, open_target, server_of

ID = "credentials"
TITLE = "Trunk credentials"
DEPENDS = ("transport",)
KINDS = ("sip_trunk",)
NOT_FOR = {"pbx_extension": "an extension's credentials are proven by the register check"}

_REFUSED = "check the trunk's username and password with the provider; sipkit stopped after " \
           "one attempt so the account is not locked"
_UNVERIFIED = ("the provider proves credentials only on a call: set check.outbound_test_number "
               "to place one test call (it may be billed)")


async def run(ctx: CheckContext) -> CheckResult:
    ep = ctx.endpoint
    if ep.password is None:
        return ctx.result("skip", "the trunk has no username/password (IP-authenticated): "
                          "nothing to prove here; the provider must allow this site's address")
    targets = ctx.answering_targets
    if not targets:
        return ctx.result("skip", "no address answered in the transport check")
    target = targets[0]
    details: dict = {"target": target.as_dict(), "username": ep.digest_username,
                     "authenticated_attempts": 0}
    async with open_target(ctx, target, verify=False) as conn:
        d = Dialogless(conn, target, user=ep.username, domain=ep.sip_domain)
        first = d.options()
        ex = await conn.request(first, timeout=ctx.options.timeout, t1=ctx.options.t1)
        if ex.final is None:
            return ctx.result("fail", f"OPTIONS from {ep.username} got no final answer "
                              f"({of_exchange(ex).value})", "see the transport check", **details)
        details["options_status"] = ex.final.status
        details["server"] = server_of(ex.final)
        if ex.final.status in (401, 407):
            try:
                challenge = pick_strongest(parse_challenges(ex.final))
                header = authorization(challenge, method="OPTIONS", uri=str(first.uri),
                                       username=ep.digest_username,
                                       password=ep.password.get_secret_value())
            except DigestError as exc:
                return ctx.result("fail", f"the gateway's challenge cannot be answered: {exc}",
                                  "the provider offers no digest algorithm sipkit (and most "
                                  "SIP stacks) support; ask for MD5 or SHA-256", **details)
            ctx.redactor.add_digest(header[1])  # masked by value if the gateway echoes it
            retry = d.options()
            retry.headers.add(*header)
            details["authenticated_attempts"] = 1
            ex = await conn.request(retry, timeout=ctx.options.timeout, t1=ctx.options.t1)
            return _after_challenge(ctx, ex, details)
    if ep.registers is False:
        return ctx.result("warn", f"credentials not verified: the gateway answered OPTIONS "
                          f"{ex.final.status} without asking for credentials, and "
                          "check.registration is never", _UNVERIFIED, **details)
    return await _by_register(ctx, target, details)


def _after_challenge(ctx: CheckContext, ex, details: dict) -> CheckResult:
    if ex.final is None:
        return ctx.result("fail", "no answer to the authenticated OPTIONS "
                          f"({of_exchange(ex).value}): the gateway may have blocked this address",
                          "wait, then check the provider's portal for blocked IPs", **details)
    code = f"{ex.final.status} {ex.final.reason}"
    details["final_status"] = ex.final.status
    if ex.final.status in (401, 407, 403):
        return ctx.result("fail", f"credentials refused: {code} after answering the challenge "
                          f"for {ctx.endpoint.digest_username}", _REFUSED, **details)
    if ex.final.status < 300 or ex.final.status in (404, 405, 484, 501):
        # Past authentication: what the gateway thinks of OPTIONS itself does not matter.
        return ctx.result("pass", f"credentials accepted: challenged OPTIONS answered once, "
                          f"then {code}", **details)
    return ctx.result("warn", f"credentials not verified: the authenticated OPTIONS got {code}",
                      _UNVERIFIED, **details)


async def _by_register(ctx: CheckContext, target, details: dict) -> CheckResult:
    from . import register

    res = await register.attempt(ctx, target)
    attempts = res.details.get("authenticated_attempts", 0)
    details.update(register=res.details, authenticated_attempts=attempts,
                   options_unchallenged=True)
    if attempts == 0 and ctx.endpoint.registers is None:
        status = res.details.get("unauthenticated_status")
        return ctx.result("warn", "credentials not verified: OPTIONS is not challenged and "
                          + (f"REGISTER is answered {status} before any credentials"
                             if status else "REGISTER gets no answer")
                          + " (the provider does not offer registration)", _UNVERIFIED, **details)
    return ctx.result(res.status, f"REGISTER: {res.summary}", res.hint, **details)
