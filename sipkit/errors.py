"""sipkit's exception hierarchy (one tree, like httpx).

    SipkitError
    ├── UsageError            bad input from the user: exit 2
    │   └── SettingsError     the site file / flags do not validate
    ├── LabError              the local lab could not start or stop
    └── ApiError              the Mihu API (see sipkit.mihu.errors for the subclasses)

Protocol-level errors of the sans-IO SIP layer live in ``sipkit.sip.errors`` because ``sip/``
imports nothing of sipkit. Messages never contain secrets: callers pass redacted values only.
"""

from __future__ import annotations

from dataclasses import dataclass


class SipkitError(Exception):
    """Base of every error sipkit raises on purpose."""

    exit_code = 3


class UsageError(SipkitError):
    exit_code = 2


@dataclass(frozen=True)
class FieldProblem:
    field: str  # dotted path, e.g. "normalizer.condition_length"
    problem: str  # what is wrong, in plain words
    fix: str  # what to do about it

    def __str__(self) -> str:
        return f"{self.field}: {self.problem}. Fix: {self.fix}"


class SettingsError(UsageError):
    def __init__(self, source: str, problems: list[FieldProblem]):
        self.source = source
        self.problems = problems
        lines = [f"invalid settings in {source}:"] + [f"  - {p}" for p in problems]
        super().__init__("\n".join(lines))


class LabError(SipkitError):
    exit_code = 3
