"""The connector's number rule: three strings, and sipkit's documented reading of them.

The API gives ``default_prefix``, ``condition_length`` and ``condition_prefix`` and no
definition. sipkit's reading (README, "Number normalization"):

1. Strip formatting: spaces, dashes, dots, brackets. Anything else but digits and one leading
   ``+`` is an error.
2. The rule *applies* when every condition that is set holds:
   - ``condition_length``: the digit count (a leading ``+`` does not count) equals the value,
     or one of a comma list (``"10,11"``);
   - ``condition_prefix``: the number starts with the value, or one of a comma list (``"5,6"``).
3. When it applies, ``default_prefix`` is put in front. Otherwise the number is unchanged.

A number in international form (leading ``+``) only matches a ``condition_prefix`` that itself
starts with ``+``: a national rule never rewrites an E.164 number. A rule with no condition set
applies to every national number.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .errors import UsageError
from .settings import Normalizer

_FORMATTING = re.compile(r"[\s.\-()\[\]]")


@dataclass
class Normalized:
    original: str
    cleaned: str
    result: str
    applied: bool
    reasons: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return self.__dict__.copy()


def _values(text: str | None) -> list[str]:
    return [v.strip() for v in (text or "").split(",") if v.strip()]


def clean(number: str) -> str:
    cleaned = _FORMATTING.sub("", number)
    if not re.fullmatch(r"\+?[0-9]+", cleaned):
        raise UsageError(f"{number!r} is not a phone number: only digits, one leading +, and "
                         "spaces, dashes, dots or brackets for formatting")
    return cleaned


def normalize(number: str, rule: Normalizer) -> Normalized:
    cleaned = clean(number)
    digits = cleaned.lstrip("+")
    lengths, prefixes = _values(rule.condition_length), _values(rule.condition_prefix)
    reasons: list[str] = []
    applies = True
    if lengths:
        if str(len(digits)) in lengths:
            reasons.append(f"{len(digits)} digits = condition_length {rule.condition_length}")
        else:
            applies = False
            reasons.append(f"{len(digits)} digits ≠ condition_length {rule.condition_length}")
    if prefixes:
        hit = next((p for p in prefixes if cleaned.startswith(p)), None)
        if hit is not None:
            reasons.append(f"starts with {hit} (condition_prefix {rule.condition_prefix})")
        else:
            applies = False
            why = (" (international numbers only match a + prefix)"
                   if cleaned.startswith("+") else "")
            reasons.append(f"does not start with {' or '.join(prefixes)}{why}")
    if not lengths and not prefixes:
        if cleaned.startswith("+"):
            applies = False
            reasons.append("international number: a rule without conditions leaves it alone")
        else:
            reasons.append("no condition set: the rule applies to every national number")
    prefix = rule.default_prefix or ""
    if applies and not prefix:
        reasons.append("no default_prefix: nothing to add")
    result = prefix + cleaned if applies else cleaned
    return Normalized(number, cleaned, result, applies and bool(prefix), reasons)


def rule_problems(rule: Normalizer) -> list[str]:
    """Rules that can never change a number."""
    problems = []
    lengths = [int(v) for v in _values(rule.condition_length)]
    prefixes = _values(rule.condition_prefix)
    if lengths and prefixes:
        # A prefix of n digits needs a number of at least n digits.
        if not any(len(p.lstrip("+")) <= n for p in prefixes for n in lengths):
            problems.append(f"condition_prefix {rule.condition_prefix} is longer than every "
                            f"condition_length ({rule.condition_length}): nothing can match")
    if (lengths or prefixes) and not rule.default_prefix:
        problems.append("conditions are set but default_prefix is empty: the rule changes "
                        "nothing")
    if rule.default_prefix and prefixes and all(p.startswith("+") for p in prefixes) \
            and not rule.default_prefix.startswith("+"):
        problems.append(f"putting {rule.default_prefix} in front of an international (+) "
                        "number makes it invalid")
    return problems
