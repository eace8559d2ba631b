"""The number rule (sipkit.normalize): every combination of conditions, comma lists,
formatting, a leading +, and the rules that cannot match."""

from __future__ import annotations

import pytest

from sipkit.errors import UsageError
from sipkit.normalize import (
    clean,
    describe,
    is_set,
    normalize,
    rule_notes,
    rule_problems,
)
from sipkit.settings import Normalizer


def rule(prefix="0", length=None, cprefix=None) -> Normalizer:
    return Normalizer(default_prefix=prefix, condition_length=length, condition_prefix=cprefix)


@pytest.mark.parametrize("r,number,expect,applied", [
    # no condition set: every number without +
    (rule(), "5321234567", "05321234567", True),
    (rule(), "123", "0123", True),
    # length only
    (rule(length="10"), "5321234567", "05321234567", True),
    (rule(length="10"), "532123456", "532123456", False),
    (rule(length="10"), "53212345678", "53212345678", False),
    # prefix only
    (rule(cprefix="5"), "5321234567", "05321234567", True),
    (rule(cprefix="5"), "4321234567", "4321234567", False),
    (rule(cprefix="53"), "5", "5", False),  # shorter than the prefix
    # both: both must hold
    (rule(length="10", cprefix="5"), "5321234567", "05321234567", True),
    (rule(length="10", cprefix="5"), "4321234567", "4321234567", False),  # prefix fails
    (rule(length="10", cprefix="5"), "53212345678", "53212345678", False),  # length fails
    (rule(length="10", cprefix="5"), "432123456", "432123456", False),  # both fail
    # comma lists, with and without spaces
    (rule(length="7,10", cprefix="2,5"), "2123456", "02123456", True),
    (rule(length="7,10", cprefix="2,5"), "5321234567", "05321234567", True),
    (rule(length="7,10", cprefix="2,5"), "3321234567", "3321234567", False),
    (rule(length="7,10", cprefix="2,5"), "21234567", "21234567", False),
    (rule(length="7, 10", cprefix=" 2 ,5"), "5321234567", "05321234567", True),
    (rule(cprefix="53,5"), "5321234567", "05321234567", True),  # overlapping prefixes
    # formatting characters are removed before anything else
    (rule(length="10", cprefix="5"), "(532) 123-45.67", "05321234567", True),
    (rule(length="10", cprefix="5"), "[532] 123 45 67", "05321234567", True),
    (rule(length="10", cprefix="5"), " 532\t1234567 ", "05321234567", True),
    (rule(length="10", cprefix="5"), "(432) 123-45.67", "4321234567", False),
    # a leading +: international, never rewritten, whatever the conditions
    (rule(), "+905321234567", "+905321234567", False),
    (rule(length="12"), "+905321234567", "+905321234567", False),
    (rule(length="13"), "+905321234567", "+905321234567", False),
    (rule(cprefix="90"), "+905321234567", "+905321234567", False),
    (rule(prefix="00", cprefix="+90"), "+905321234567", "+905321234567", False),
    (rule(length="10", cprefix="5"), "+90 (532) 123-45-67", "+905321234567", False),
    # a + default_prefix turns a national number into E.164
    (rule(prefix="+90", length="10"), "5321234567", "+905321234567", True),
    # empty strings are "not set", like None
    (rule(length="", cprefix=""), "5321234567", "05321234567", True),
    # no default_prefix: matches but changes nothing
    (rule(prefix=None, length="10"), "5321234567", "5321234567", False),
    (rule(prefix="", cprefix="5"), "5321234567", "5321234567", False),
])
def test_rule(r, number, expect, applied):
    out = normalize(number, r)
    assert (out.result, out.applied) == (expect, applied)
    assert out.original == number and out.reasons
    assert out.cleaned == clean(number)


def test_matched_is_separate_from_applied():
    out = normalize("5321234567", rule(prefix=None, length="10"))
    assert out.matched and not out.applied
    assert not normalize("1", rule(length="10")).matched


def test_explain_names_each_condition():
    out = normalize("5321234567", rule(length="10", cprefix="5"))
    assert out.reasons == ["10 digits: condition_length 10 holds",
                           "starts with 5: condition_prefix 5 holds",
                           "default_prefix 0 put in front"]
    out = normalize("4321", rule(length="10,11", cprefix="5,6"))
    assert out.reasons == ["4 digits: condition_length 10,11 fails",
                           "does not start with 5 or 6: condition_prefix 5,6 fails",
                           "a condition fails: unchanged"]


def test_explain_says_no_condition_means_every_number():
    out = normalize("123", rule())
    assert "every number" in out.reasons[0]
    assert "always (no condition set)" in describe(rule())


def test_explain_plus():
    assert "E.164" in normalize("+12084439178", rule(length="11")).reasons[0]


def test_digit_count_of_a_plus_number_excludes_the_plus():
    # the count is never used to rewrite a + number, but clean() keeps the + out of digits
    assert clean("+90 532") == "+90532" and len(clean("+90 532").lstrip("+")) == 5


@pytest.mark.parametrize("bad", ["12a34", "", "   ", "++12", "12+34", "1/2", "+", "١٢٣"])
def test_not_a_number(bad):
    with pytest.raises(UsageError) as exc:
        normalize(bad, rule())
    assert "not a phone number" in str(exc.value)


@pytest.mark.parametrize("r,fragment", [
    (rule(length="4", cprefix="12345"), "longer than every condition_length"),
    (rule(length="3,4", cprefix="12345,99999"), "nothing can match"),
    (rule(prefix=None, length="10"), "default_prefix is empty"),
    (rule(prefix="", cprefix="5"), "default_prefix is empty"),
    (rule(prefix="0", cprefix="+90"), "can never match"),
    (rule(prefix="0", cprefix="+90,+1"), "can never match"),
    # the settings model refuses 0, but a rule from elsewhere (API answer) may carry it
    (Normalizer.model_construct(default_prefix="0", condition_length="0",
                                condition_prefix=None), "no number has 0 digits"),
])
def test_rules_that_cannot_match(r, fragment):
    problems = rule_problems(r)
    assert any(fragment in p for p in problems), problems
    assert rule_notes(r) == []  # the problem is the verdict; no notes on top


def test_prefix_as_long_as_the_length_can_still_match():
    r = rule(length="5", cprefix="12345")
    assert rule_problems(r) == [] and normalize("12345", r).applied


def test_good_rules_have_no_problem_and_no_note():
    for r in (rule(length="10", cprefix="5"), rule(length="10,11", cprefix="5,12345"),
              rule(prefix="+90", length="10"), rule(prefix="+90")):
        assert rule_problems(r) == [] and rule_notes(r) == [], r


def test_empty_rule_is_no_rule():
    assert not is_set(Normalizer()) and not is_set(None)
    assert not is_set(rule(prefix="", length="", cprefix=""))
    assert rule_problems(Normalizer()) == [] and rule_notes(Normalizer()) == []


@pytest.mark.parametrize("r,fragment", [
    (rule(length="10", cprefix="5,+90"), "condition_prefix +90 never matches"),
    (rule(length="4,10", cprefix="5,12345678901"), "condition_prefix 12345678901 is longer"),
    (Normalizer.model_construct(default_prefix="0", condition_length="0,10",
                                condition_prefix="5"), "condition_length 0 never holds"),
])
def test_dead_list_entries_are_notes(r, fragment):
    assert rule_problems(r) == []
    assert any(fragment in n for n in rule_notes(r)), rule_notes(r)


@pytest.mark.parametrize("r,twice", [
    (rule(), "0011"),  # no condition: applies to its own result, every time
    (rule(length="10,11"), "00"),  # 10 digits -> 11 digits -> matches again
    (rule(cprefix="0"), "00"),  # the prefix it adds is the one it looks for
    (rule(prefix="05", cprefix="0,5"), "0505"),
])
def test_rule_that_applies_to_its_own_result(r, twice):
    notes = rule_notes(r)
    assert any("applies again to its own result" in n for n in notes), notes
    note = next(n for n in notes if "again" in n)
    once, again = note.split("(")[1].split(")")[0].split(" → ")[1:]
    assert again.startswith(twice) and normalize(once, r).result == again


def test_rule_that_does_not_apply_twice_has_no_such_note():
    # 10 digits starting with 5 -> 11 digits starting with 0: never again
    assert rule_notes(rule(length="10", cprefix="5")) == []
    # a + result is never rewritten again
    assert rule_notes(rule(prefix="+90")) == []


def test_settings_reject_malformed_rule_fields():
    from pydantic import ValidationError

    for kw in ({"condition_length": "ten"}, {"condition_length": "0"},
               {"condition_prefix": "5a"}, {"default_prefix": "0-"}):
        with pytest.raises(ValidationError):
            Normalizer(**kw)
