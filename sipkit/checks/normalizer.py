"""normalizer: the connector's number rule does what the PBX and the agent expect.

Previews the rule (``sipkit.normalize``) on the site's own numbers: ``phone_number`` as given
(E.164, so it must stay unchanged), the same number in national form (what the rule is usually
written for), and ``check.outbound_test_number`` (what ``call_outbound`` dials). Verdicts:

- skip: the site file has no normalizer (numbers pass unchanged);
- fail: the rule can never change any number (``rule_problems``), or a sample is not a number;
- warn: a result is not a valid number in the site's country (libphonenumber; the country is
  the one of the E.164 ``phone_number``), or part of the rule is dead / applies twice
  (``rule_notes``);
- pass otherwise.
"""

from __future__ import annotations

from ..errors import UsageError
from ..normalize import describe, is_set, normalize, rule_notes, rule_problems
from ..report import CheckResult
from .base import CheckContext

ID = "normalizer"
TITLE = "Number rules"
DEPENDS = ("config",)
KINDS = ("pbx_extension",)
NOT_FOR = {"sip_trunk": "a trunk has no connector normalizer"}

_HINT_FIX = ("fix the normalizer in the site file (README 'Number normalization' defines the "
             "three fields); `sipkit normalize --explain NUMBER -c SITE` shows each step")


def region_of(e164: str) -> str | None:
    """ISO country of an E.164 number ("+902124439178" -> "TR"), None when unknown."""
    import phonenumbers

    try:
        region = phonenumbers.region_code_for_number(phonenumbers.parse(e164, None))
    except phonenumbers.NumberParseException:
        return None
    return region if region and region != "ZZ" else None


def is_valid(number: str, region: str | None) -> bool | None:
    """libphonenumber's verdict on a dial string; None when it cannot judge (a national
    number and no region)."""
    import phonenumbers

    if not number.startswith("+") and region is None:
        return None
    try:
        parsed = phonenumbers.parse(number, None if number.startswith("+") else region)
    except phonenumbers.NumberParseException:
        return False
    return phonenumbers.is_valid_number(parsed)


def samples(site) -> dict[str, str]:
    """name -> number: the site's numbers the rule should be tried on."""
    import phonenumbers

    out = {"phone_number": site.phone_number}
    try:
        national = str(phonenumbers.parse(site.phone_number, None).national_number)
    except phonenumbers.NumberParseException:
        national = None
    if national and national != site.phone_number:
        out["phone_number (national)"] = national
    if site.check.outbound_test_number:
        out["outbound_test_number"] = site.check.outbound_test_number
    return out


async def run(ctx: CheckContext) -> CheckResult:
    site = ctx.site
    rule = site.normalizer
    if not is_set(rule):
        return ctx.result("skip", "no normalizer in the site file: numbers pass unchanged")
    region = region_of(site.phone_number)
    ctx.note(f"rule: {describe(rule)}")
    previews, bad = [], []
    for name, number in samples(site).items():
        try:
            n = normalize(number, rule)
        except UsageError:
            bad.append(f"{name} {number!r}")
            continue
        valid = is_valid(n.result, region)
        previews.append({"sample": name, **n.as_dict(), "valid": valid})
        ctx.note(f"{name}: {n.original} → {n.result} ({'; '.join(n.reasons)})"
                 + ("" if valid is not False else f"; not a valid {region} number"))
    details = {"rule": rule.model_dump(), "explained": describe(rule), "region": region,
               "previews": previews}
    shown = ", ".join(f"{p['original']} → {p['result']}" for p in previews)
    if bad:
        return ctx.result("fail", f"not a phone number: {', '.join(bad)}",
                          "write the number with digits (and an optional leading +) only",
                          **details)
    problems = rule_problems(rule)
    if problems:
        return ctx.result("fail", "the rule never changes a number: " + "; ".join(problems),
                          _HINT_FIX, problems=problems, **details)
    invalid = [p for p in previews if p["valid"] is False]
    notes = rule_notes(rule)
    if invalid:
        words = ", ".join(f"{p['result']} ({p['sample']})" for p in invalid)
        return ctx.result("warn", f"{shown}; not a valid {region} number: {words}",
                          "check default_prefix and the conditions against the PBX's dial "
                          "plan (an outside-line prefix such as 9 is expected to look "
                          "invalid here); " + _HINT_FIX.split("; ", 1)[1],
                          notes=notes, **details)
    if notes:
        return ctx.result("warn", f"{shown}; " + "; ".join(notes), _HINT_FIX, notes=notes,
                          **details)
    untouched = [p["sample"] for p in previews if p["sample"] == "outbound_test_number"
                 and not p["applied"]]
    tail = " (the rule does not change the test number)" if untouched else ""
    judged = f" (valid {region} numbers)" if region else ""
    return ctx.result("pass", f"{shown}{judged}{tail}", **details)
