"""normalizer: the connector's number rule does what the PBX and the agent expect.

Previews the rule on the site's phone number and outbound test number, fails rules that can
never change anything, and warns when a result is not a valid number (libphonenumber, in the
country of the site's E.164 phone_number).
"""

from __future__ import annotations

import phonenumbers

from ..normalize import normalize, rule_problems
from ..report import CheckResult
from .base import CheckContext

ID = "normalizer"
TITLE = "Number rule"
DEPENDS = ("config",)


def _valid(number: str, region: str | None) -> bool:
    try:
        parsed = phonenumbers.parse(number, None if number.startswith("+") else region)
    except phonenumbers.NumberParseException:
        return False
    return phonenumbers.is_valid_number(parsed)


async def run(ctx: CheckContext) -> CheckResult:
    site = ctx.site
    rule = site.normalizer
    if rule is None or not any((rule.default_prefix, rule.condition_length,
                                rule.condition_prefix)):
        return ctx.result(ID, "skip", "no normalizer in the site file: numbers pass unchanged")
    region = phonenumbers.region_code_for_number(phonenumbers.parse(site.phone_number))
    samples = {"phone_number": site.phone_number}
    if site.check.outbound_test_number:
        samples["outbound_test_number"] = site.check.outbound_test_number
    previews = {name: normalize(num, rule).as_dict() for name, num in samples.items()}
    details = {"rule": rule.model_dump(), "region": region, "previews": previews}
    for name, p in previews.items():
        ctx.note(f"{name}: {p['original']} → {p['result']} ({'; '.join(p['reasons'])})")
    problems = rule_problems(rule)
    shown = ", ".join(f"{p['original']} → {p['result']}" for p in previews.values())
    if problems:
        return ctx.result(ID, "fail", "; ".join(problems),
                          "fix the normalizer in the site file; README 'Number normalization' "
                          "explains the three fields", **details)
    invalid = [p["result"] for p in previews.values() if not _valid(p["result"], region)]
    if invalid:
        return ctx.result(ID, "warn", f"{shown}; not a valid {region} number: "
                          f"{', '.join(invalid)}",
                          "check default_prefix and the conditions against the PBX's dial "
                          "plan; `sipkit normalize --explain` shows each step", **details)
    test = previews.get("outbound_test_number")
    if test is not None and not test["applied"]:
        return ctx.result(ID, "warn", f"{shown}; the rule does not apply to the test number",
                          "pick a check.outbound_test_number the rule is meant for, or fix "
                          "the conditions", **details)
    return ctx.result(ID, "pass", f"{shown} (valid {region} numbers)", **details)
