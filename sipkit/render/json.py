"""--json: the Report, as-is, and nothing else."""

from __future__ import annotations

from ..redact import Redactor
from ..report import Report


def render(report: Report, redactor: Redactor) -> str:
    return redactor(report.model_dump_json(indent=2))
