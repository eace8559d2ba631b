"""The number rule: every combination of conditions, comma lists, formatting, +, and the
rules that cannot match."""

from __future__ import annotations

import pytest

from sipkit.errors import UsageError
from sipkit.normalize import clean, normalize, rule_problems
from sipkit.settings import Normalizer


def rule(prefix="0", length=None, cprefix=None) -> Normalizer:
    return Normalizer(default_prefix=prefix, condition_length=length, condition_prefix=cprefix)


@pytest.mark.parametrize("r,number,expect,applied", [
    # no condition: every national number
    (rule(), "5321234567", "05321234567", True),
    # length only
    (rule(length="10"), "5321234567", "05321234567", True),
    (rule(length="10"), "532123456", "532123456", False),
    # prefix only
    (rule(cprefix="5"), "5321234567", "05321234567", True),
    (rule(cprefix="5"), "4321234567", "4321234567", False),
    # both: both must hold
    (rule(length="10", cprefix="5"), "5321234567", "05321234567", True),
    (rule(length="10", cprefix="5"), "4321234567", "4321234567", False),
    (rule(length="10", cprefix="5"), "53212345678", "53212345678", False),
    (rule(length="10", cprefix="5"), "432123456", "432123456", False),
    # comma lists
    (rule(length="7,10", cprefix="2,5"), "2123456", "02123456", True),
    (rule(length="7,10", cprefix="2,5"), "5321234567", "05321234567", True),
    (rule(length="7,10", cprefix="2,5"), "3321234567", "3321234567", False),
    # formatting characters are stripped before anything else
    (rule(length="10", cprefix="5"), "(532) 123-45.67", "05321234567", True),
    (rule(length="10", cprefix="5"), "[532] 123 45 67", "05321234567", True),
    # international numbers: digit count excludes +, and only a + prefix matches them
    (rule(length="12", cprefix="5"), "+905321234567", "+905321234567", False),
    (rule(prefix="00", cprefix="+90"), "+905321234567", "00+905321234567", True),
    (rule(), "+905321234567", "+905321234567", False),
    # no default_prefix: applies but changes nothing
    (rule(prefix=None, length="10"), "5321234567", "5321234567", False),
])
def test_rule(r, number, expect, applied):
    out = normalize(number, r)
    assert (out.result, out.applied) == (expect, applied)
    assert out.reasons


def test_explain_names_the_conditions():
    out = normalize("5321234567", rule(length="10", cprefix="5"))
    assert out.reasons == ["10 digits = condition_length 10",
                           "starts with 5 (condition_prefix 5)"]


@pytest.mark.parametrize("bad", ["12a34", "", "++12", "12+34", "1/2"])
def test_not_a_number(bad):
    with pytest.raises(UsageError):
        clean(bad)


@pytest.mark.parametrize("r,fragment", [
    (rule(length="4", cprefix="12345"), "longer than every condition_length"),
    (rule(length="3,4", cprefix="12345,99999"), "nothing can match"),
    (rule(prefix=None, length="10"), "changes nothing"),
    (rule(prefix="0", cprefix="+90"), "makes it invalid"),
])
def test_rules_that_cannot_work(r, fragment):
    assert any(fragment in p for p in rule_problems(r))


def test_good_rules_have_no_problem():
    assert rule_problems(rule(length="10,11", cprefix="5,12345")) == []
    assert rule_problems(rule()) == []


def test_settings_reject_malformed_rule_fields():
    from pydantic import ValidationError

    for kw in ({"condition_length": "ten"}, {"condition_length": "0"},
               {"condition_prefix": "5a"}, {"default_prefix": "0-"}):
        with pytest.raises(ValidationError):
            Normalizer(**kw)
