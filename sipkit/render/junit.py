"""JUnit XML: one testcase per check, so CI pipelines show sipkit's verdicts natively.

fail -> <failure>, error -> <error>, skip -> <skipped>; warn passes, with the warning as
system-out (so --strict semantics stay with the exit code, not the XML)."""

from __future__ import annotations

from xml.etree import ElementTree as ET

from ..redact import Redactor
from ..report import Report, target_line


def render(report: Report, redactor: Redactor) -> str:
    name = f"sipkit {target_line(report.target)}"
    suite = ET.Element("testsuite", name=redactor(name.strip()), tests=str(len(report.checks)),
                       failures=str(sum(c.status == "fail" for c in report.checks)),
                       errors=str(sum(c.status == "error" for c in report.checks)),
                       skipped=str(sum(c.status == "skip" for c in report.checks)),
                       time=f"{report.duration_ms / 1000:.3f}",
                       timestamp=report.started_at.isoformat())
    for c in report.checks:
        case = ET.SubElement(suite, "testcase", classname="sipkit.check", name=c.id,
                             time=f"{c.duration_ms / 1000:.3f}")
        text = redactor(c.summary + (f"\nfix: {c.hint}" if c.hint else ""))
        if c.status == "fail":
            ET.SubElement(case, "failure", message=redactor(c.summary)).text = text
        elif c.status == "error":
            ET.SubElement(case, "error", message=redactor(c.summary)).text = text
        elif c.status == "skip":
            ET.SubElement(case, "skipped", message=redactor(c.summary))
        elif c.status == "warn":
            ET.SubElement(case, "system-out").text = "WARNING: " + text
    return ET.tostring(suite, encoding="unicode", xml_declaration=True) + "\n"
