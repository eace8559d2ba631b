"""--json: the Report, as-is, and nothing else."""

from __future__ import annotations

import json

from ..redact import Redactor
from ..report import Report


def render(report: Report, redactor: Redactor) -> str:
    return json.dumps(redactor.walk(report.model_dump(mode="json")), indent=2)
