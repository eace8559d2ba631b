"""Report model, exit codes, redaction and rendering: pure functions of a Report."""

from __future__ import annotations

import json

import pytest

from sipkit.redact import Redactor, redact_text
from sipkit.render import human
from sipkit.render import json as render_json
from sipkit.report import CheckResult, Evidence, Report, worst


def _report(*statuses: str) -> Report:
    rep = Report(target={"registrar_server": "pbx.example.com", "port": 5060,
                         "connection_type": "udp", "username_extension": "100",
                         "setup_mode": "both"})
    rep.checks = [CheckResult(id=f"c{i}", status=s, summary=f"summary {i}",
                              hint="do the thing" if s in ("warn", "fail") else None)
                  for i, s in enumerate(statuses)]
    return rep.finish(12.5)


@pytest.mark.parametrize("statuses,overall,code,strict", [
    (("pass", "skip"), "pass", 0, 0),
    (("pass", "warn"), "warn", 0, 1),
    (("pass", "fail", "warn"), "fail", 1, 1),
    (("pass", "error"), "error", 3, 3),
    # Nothing verified (`--skip config`, or every selected check skipped): not a PASS.
    ((), "skip", 1, 1),
    (("skip", "skip"), "skip", 1, 1),
])
def test_status_and_exit_codes(statuses, overall, code, strict):
    rep = _report(*statuses)
    assert rep.status == overall
    assert rep.exit_code() == code
    assert rep.exit_code(strict=True) == strict


def test_worst_ignores_skip_beside_others_but_all_skip_is_skip():
    assert worst(["skip", "pass"]) == "pass"
    assert worst(["skip", "skip"]) == "skip"


def test_redact_digest_and_bearer_and_literals():
    text = ('Authorization: Digest username="100", realm="r", nonce="abc", uri="sip:x", '
            'response="0123456789abcdef0123456789abcdef", cnonce="deadbeef", nc=00000001\n'
            "Authorization: Bearer tok_ABC.def-123\npassword hunter22 here")
    out = redact_text(text, ["hunter22"])
    assert "0123456789abcdef" not in out and "deadbeef" not in out
    assert "tok_ABC" not in out and "hunter22" not in out
    assert 'nonce="abc"' in out and 'username="100"' in out  # not secrets: kept for support


def test_human_render_shows_fix_and_hides_secrets():
    rep = _report("pass", "fail")
    rep.checks[1].summary = "wrong password hunter22"
    rep.checks[1].evidence = [Evidence(kind="sip", summary="REGISTER sip:x", direction="out",
                                       peer="192.0.2.1:5060", text="REGISTER sip:x SIP/2.0")]
    out = human.render(rep, Redactor(["hunter22"]), verbose=1, color=False)
    assert "FAIL" in out and "fix: do the thing" in out and "Result:" in out
    assert "hunter22" not in out
    assert "── REGISTER" in out and "▶  192.0.2.1:5060" in out  # the ladder
    assert "REGISTER sip:x SIP/2.0" in out  # whole message, as the check failed


def test_json_render_is_the_model():
    rep = _report("pass", "warn")
    data = json.loads(render_json.render(rep, Redactor()))
    assert Report.model_validate(data).checks[1].status == "warn"
    assert set(data) >= {"sipkit_version", "started_at", "duration_ms", "target", "status", "checks"}


def test_junit_render():
    from xml.etree import ElementTree as ET

    from sipkit.render import junit

    rep = _report("pass", "fail", "skip", "warn", "error")
    rep.checks[1].summary = "wrong password hunter22"
    root = ET.fromstring(junit.render(rep, Redactor(["hunter22"])))
    assert (root.get("tests"), root.get("failures"), root.get("errors"), root.get("skipped")) == (
        "5", "1", "1", "1")
    cases = root.findall("testcase")
    assert cases[1].find("failure").get("message") == "wrong password <redacted>"
    assert "fix: do the thing" in cases[1].find("failure").text
    assert cases[3].find("system-out").text.startswith("WARNING")
