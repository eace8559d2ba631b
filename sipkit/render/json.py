"""--json: the Report, as-is, and nothing else."""

from __future__ import annotations

import json

from ..redact import Redactor
from ..report import Report


def render(report: Report, redactor: Redactor) -> str:
    return json.dumps(redactor.walk(report.model_dump(mode="json")), indent=2)


def error_object(exc: Exception) -> str:
    """For scripts: a usage or settings error as one JSON object (``status: "error"``), with
    the field problems of a bad site file, instead of an empty stdout."""
    out: dict = {"status": "error", "error": str(exc).split("\n", 1)[0],
                 "exit_code": getattr(exc, "exit_code", 2)}
    problems = getattr(exc, "problems", None)
    if problems is not None:
        out["source"] = exc.source
        out["problems"] = [{"field": p.field, "problem": p.problem, "fix": p.fix}
                           for p in problems]
    return json.dumps(out, indent=2)
