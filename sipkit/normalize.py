"""The connector's number rule: three strings, and sipkit's documented reading of them.

The Mihu API gives ``default_prefix``, ``condition_length`` and ``condition_prefix`` and no
definition. sipkit reads them like this (README, "Number normalization"):

1. **Clean.** Spaces, dashes, dots and brackets ``()[]`` are formatting and are removed. What
   is left must be digits, optionally after one leading ``+``; anything else is an error.
2. **A leading ``+`` means the number is already international (E.164).** It is never
   rewritten: putting a prefix in front of ``+`` can only make it undialable, and the rule has
   no way to remove digits. So a ``condition_prefix`` entry that starts with ``+`` can never
   match (``rule_problems`` / ``rule_notes`` say so). A ``default_prefix`` may start with ``+``:
   ``"+90"`` in front of a national number gives an E.164 number.
3. **The rule matches** when every condition that is *set* holds (empty or missing = not set):
   - ``condition_length``: the number of digits equals the value, or one value of a comma
     list (``"10,11"``);
   - ``condition_prefix``: the number starts with the value, or with one value of a comma list
     (``"5,6"``).
   A rule with no condition set matches every number that does not start with ``+``.
4. **When it matches, ``default_prefix`` is put in front.** Otherwise the number is unchanged.

Pure functions, no I/O: ``normalize``, ``rule_problems`` (the rule can never change any
number: the ``normalizer`` check FAILs) and ``rule_notes`` (it works, but part of it is dead or
it applies again to its own output: the check WARNs).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field

from .errors import UsageError
from .settings import Normalizer

# Formatting people type into numbers: "(0532) 123-45.67", "[0212] 443 91 78".
_FORMATTING = re.compile(r"[\s.\-()\[\]]")
_NUMBER = re.compile(r"\+?[0-9]+")


@dataclass
class Normalized:
    """One number through one rule. ``reasons`` is the --explain text, one step per line."""

    original: str
    cleaned: str
    result: str
    applied: bool  # the rule changed the number (it matched and default_prefix is not empty)
    reasons: list[str] = field(default_factory=list)
    matched: bool = False  # every condition that is set held

    def as_dict(self) -> dict:
        return asdict(self)


def values(text: str | None) -> list[str]:
    """A condition field as its list of values: None, "" and " , " are 'not set'."""
    return [v.strip() for v in (text or "").split(",") if v.strip()]


def is_set(rule: Normalizer | None) -> bool:
    """True when the rule has anything in it; an all-empty rule means 'no normalizer'."""
    return rule is not None and any((rule.default_prefix, rule.condition_length,
                                     rule.condition_prefix))


def clean(number: str) -> str:
    """Remove formatting; UsageError when what is left is not ``+``? digits."""
    cleaned = _FORMATTING.sub("", number)
    if not _NUMBER.fullmatch(cleaned):
        raise UsageError(f"{number!r} is not a phone number: use digits, optionally one leading "
                         "+, and spaces, dashes, dots or brackets for formatting")
    return cleaned


def _lengths(rule: Normalizer) -> list[int]:
    out = []
    for v in values(rule.condition_length):
        try:
            out.append(int(v))
        except ValueError:  # the settings model rejects this; a rule built around it may not
            raise UsageError(f"condition_length {rule.condition_length!r} must be a digit count "
                             "or a comma list of them") from None
    return out


def describe(rule: Normalizer) -> str:
    """The rule in one sentence, for --explain and the check's evidence."""
    conds = []
    if values(rule.condition_length):
        conds.append(f"it has {' or '.join(values(rule.condition_length))} digits")
    if values(rule.condition_prefix):
        conds.append(f"it starts with {' or '.join(values(rule.condition_prefix))}")
    when = " and ".join(conds) if conds else "always (no condition set)"
    if not rule.default_prefix:
        return f"put nothing in front (no default_prefix), {when}"
    return (f"put {rule.default_prefix} in front of a number without + "
            f"{'when ' + when if conds else when}")


def normalize(number: str, rule: Normalizer) -> Normalized:
    """Apply ``rule`` to ``number`` as the module docstring defines. UsageError on a
    number that is not one."""
    cleaned = clean(number)
    if cleaned.startswith("+"):
        return Normalized(number, cleaned, cleaned, False, [
            "starts with +: already international (E.164); the rule never rewrites it"])
    lengths, prefixes = _lengths(rule), values(rule.condition_prefix)
    reasons: list[str] = []
    matched = True
    if not lengths and not prefixes:
        reasons.append("no condition set: the rule applies to every number without +")
    if lengths:
        ok = len(cleaned) in lengths
        matched &= ok
        reasons.append(f"{len(cleaned)} digits: condition_length {rule.condition_length} "
                       f"{'holds' if ok else 'fails'}")
    if prefixes:
        hit = next((p for p in prefixes if cleaned.startswith(p)), None)
        matched &= hit is not None
        reasons.append(f"starts with {hit}: condition_prefix {rule.condition_prefix} holds"
                       if hit is not None else
                       f"does not start with {' or '.join(prefixes)}: condition_prefix "
                       f"{rule.condition_prefix} fails")
    prefix = rule.default_prefix or ""
    if not matched:
        reasons.append("a condition fails: unchanged")
    elif prefix:
        reasons.append(f"default_prefix {prefix} put in front")
    else:
        reasons.append("no default_prefix: nothing to put in front")
    applied = matched and bool(prefix)
    return Normalized(number, cleaned, prefix + cleaned if applied else cleaned, applied,
                      reasons, matched)


def _live(rule: Normalizer) -> tuple[list[int], list[str]]:
    """The condition values that can hold for some number: positive lengths, prefixes
    without + (see the module docstring, rule 2)."""
    return ([n for n in _lengths(rule) if n > 0],
            [p for p in values(rule.condition_prefix) if not p.startswith("+")])


def rule_problems(rule: Normalizer) -> list[str]:
    """Why the rule can never change any number (empty: it can). An all-empty rule is no
    rule, not a broken one."""
    if not is_set(rule):
        return []
    problems = []
    lengths, prefixes = _lengths(rule), values(rule.condition_prefix)
    live_lengths, live_prefixes = _live(rule)
    if lengths and not live_lengths:
        problems.append(f"condition_length {rule.condition_length}: no number has 0 digits")
    if prefixes and not live_prefixes:
        problems.append(f"condition_prefix {rule.condition_prefix} can never match: numbers "
                        "that start with + are international and never rewritten")
    if live_lengths and live_prefixes and not any(
            len(p) <= n for p in live_prefixes for n in live_lengths):
        problems.append(f"condition_prefix {rule.condition_prefix} is longer than every "
                        f"condition_length ({rule.condition_length}): nothing can match")
    if not rule.default_prefix:
        problems.append("default_prefix is empty: even when the conditions hold, the rule "
                        "puts nothing in front")
    return problems


def _reapplies(rule: Normalizer) -> str | None:
    """A number the rule rewrites whose result it would rewrite again, or None.

    Applying a rule twice (the PBX and the connector both apply it, or a number that is
    already in the PBX's form) adds the prefix twice. We look for a number N that matches
    with the result D+N matching too; only the first digits and the length matter, so
    candidates are each live prefix (or nothing) padded with a digit that keeps them apart.
    """
    prefix = rule.default_prefix or ""
    if not prefix or prefix.startswith("+"):
        return None  # a + result is international: never rewritten again
    lengths, prefixes = _live(rule)
    if values(rule.condition_length) and not lengths or \
            values(rule.condition_prefix) and not prefixes:
        return None  # cannot match at all: rule_problems says so
    for n in lengths or [10]:
        for p in prefixes or [""]:
            if len(p) > n:
                continue
            for fill in "1234567890":
                number = (p + fill * n)[:n]
                first = normalize(number, rule)
                if first.applied and normalize(first.result, rule).applied:
                    return number
    return None


def rule_notes(rule: Normalizer) -> list[str]:
    """Parts of a working rule that look wrong: dead list entries, and a rule that applies
    again to its own result."""
    if not is_set(rule) or rule_problems(rule):
        return []
    notes = []
    dead_len = [v for v in values(rule.condition_length) if int(v) <= 0]
    dead_pre = [v for v in values(rule.condition_prefix) if v.startswith("+")]
    lengths, prefixes = _live(rule)
    if dead_len:
        notes.append(f"condition_length {', '.join(dead_len)} never holds")
    if dead_pre:
        notes.append(f"condition_prefix {', '.join(dead_pre)} never matches: numbers with + "
                     "are never rewritten")
    if lengths and prefixes:
        too_long = [p for p in prefixes if all(len(p) > n for n in lengths)]
        if too_long:
            notes.append(f"condition_prefix {', '.join(too_long)} is longer than every "
                         f"condition_length: never matches")
    again = _reapplies(rule)
    if again is not None:
        once = normalize(again, rule).result
        twice = normalize(once, rule).result
        notes.append(f"the rule applies again to its own result ({again} → {once} → {twice}): "
                     "a number already in the PBX's form gets the prefix twice"
                     + ("; set a condition_length or condition_prefix" if
                        not values(rule.condition_length) and not values(rule.condition_prefix)
                        else ""))
    return notes
