"""The normalizer check's verdicts on a site (pure: no network)."""

from __future__ import annotations

import asyncio

import pytest

from sipkit.checks import normalizer
from sipkit.checks.base import CheckContext, RunOptions
from sipkit.redact import Redactor
from sipkit.settings import Site

TR = {"agent_uuid": "3c90c3cc-0d44-4b50-8888-8dd25736052a", "phone_number": "+902124439178",
      "registrar_server": "pbx.example.com", "username_extension": "100",
      "pbx_password": "Norm-Secret-77", "allowed_ip": "198.51.100.7"}
LAB_RULE = {"default_prefix": "0", "condition_length": "10", "condition_prefix": "5"}


def check(normalizer_rule=None, test_number="5321234567", **site):
    data = {**TR, **site, "check": {"outbound_test_number": test_number}}
    if normalizer_rule is not None:
        data["normalizer"] = normalizer_rule
    s = Site.model_validate(data)
    ctx = CheckContext.for_site(s, RunOptions(), Redactor([s.pbx_password.get_secret_value()]))
    result = asyncio.run(normalizer.run(ctx))
    assert "Norm-Secret-77" not in result.model_dump_json()
    return result


def previews(result) -> dict:
    return {p["sample"]: p for p in result.details["previews"]}


def test_contract():
    assert (normalizer.ID, normalizer.TITLE, normalizer.DEPENDS) == (
        "normalizer", "Number rules", ("config",))


@pytest.mark.parametrize("rule", [None, {}, {"default_prefix": "", "condition_length": None}])
def test_no_rule_skips(rule):
    r = check(rule)
    assert r.status == "skip" and "no normalizer" in r.summary


def test_good_rule_passes_with_previews():
    r = check(LAB_RULE)
    assert r.status == "pass", r.summary
    p = previews(r)
    assert p["outbound_test_number"]["result"] == "05321234567"
    assert p["outbound_test_number"]["applied"] and p["outbound_test_number"]["valid"]
    # the E.164 phone number stays as it is; its national form does not match the rule
    assert p["phone_number"]["result"] == "+902124439178" and not p["phone_number"]["applied"]
    assert p["phone_number (national)"]["result"] == "2124439178"
    assert r.details["region"] == "TR" and "5321234567 → 05321234567" in r.summary
    assert any("5321234567 → 05321234567" in e.summary for e in r.evidence)


def test_rule_that_does_not_touch_the_test_number_still_passes_and_says_so():
    r = check(LAB_RULE, test_number="05321234567")
    assert r.status == "pass" and "does not change the test number" in r.summary


@pytest.mark.parametrize("rule,fragment", [
    ({"default_prefix": "0", "condition_length": "4", "condition_prefix": "12345"},
     "longer than every condition_length"),
    ({"default_prefix": "0", "condition_prefix": "+90"}, "can never match"),
    ({"condition_length": "10"}, "default_prefix is empty"),
])
def test_rule_that_cannot_match_fails(rule, fragment):
    r = check(rule)
    assert r.status == "fail" and fragment in r.summary and "sipkit normalize" in r.hint
    assert r.details["problems"]


def test_invalid_result_warns_in_the_sites_country():
    # a US site with an outside-line "9" in front: 9 + 10 digits is not a US number
    r = check({"default_prefix": "9", "condition_length": "10"}, test_number="2084439100",
              phone_number="+12084439178")
    assert r.status == "warn" and r.details["region"] == "US"
    assert "92084439100" in r.summary and "not a valid US number" in r.summary
    assert previews(r)["outbound_test_number"]["valid"] is False


def test_same_rule_valid_in_another_country_passes():
    # TR: trunk prefix 0 + 10 digits is a valid national number
    r = check({"default_prefix": "0", "condition_length": "10"}, test_number="2124439100")
    assert r.status == "pass", r.summary


def test_rule_with_no_condition_warns_that_it_applies_twice():
    r = check({"default_prefix": "0"})
    assert r.status == "warn" and "applies again to its own result" in r.summary


def test_test_number_that_is_not_a_number_fails():
    r = check(LAB_RULE, test_number="53x1234567")
    assert r.status == "fail" and "outbound_test_number" in r.summary


def test_no_test_number_previews_the_phone_number_only():
    data = {**TR, "normalizer": LAB_RULE}
    s = Site.model_validate(data)
    ctx = CheckContext.for_site(s, RunOptions(), Redactor())
    r = asyncio.run(normalizer.run(ctx))
    assert r.status == "pass" and set(previews(r)) == {"phone_number", "phone_number (national)"}


def test_region_helpers():
    assert normalizer.region_of("+902124439178") == "TR"
    assert normalizer.region_of("+12084439178") == "US"
    assert normalizer.region_of("nonsense") is None
    assert normalizer.is_valid("05321234567", "TR") is True
    assert normalizer.is_valid("0532", "TR") is False
    assert normalizer.is_valid("5321234567", None) is None  # cannot judge without a country
    assert normalizer.is_valid("+905321234567", None) is True
