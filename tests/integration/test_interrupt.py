"""Ctrl-C during a test call, on a real terminal: the call hangs up (BYE at the PBX), its
registration is removed (no binding left), what finished is printed, exit 130, no traceback."""

from __future__ import annotations

import time

import pytest

from tests.conftest import report_of
from tests.integration.test_checks_lab import checks, site_variant
from tests.terminal import PtyRun, visible

pytestmark = pytest.mark.lab


def pbx_requests(lab, method: str) -> int:
    return (lab.directory / "pbx.log").read_text(errors="replace").count(f"REQ {method} ")


def test_ctrl_c_during_a_call_hangs_up_and_cleans_up(lab, run_sipkit, tmp_path, no_connectors):
    site = site_variant(lab, tmp_path, **{"check.call_seconds": "30"})
    byes, acks = pbx_requests(lab, "BYE"), pbx_requests(lab, "ACK")
    run = PtyRun("check", "-c", str(site), "--only", "call_outbound", env=lab.env(), cols=100)
    try:
        assert run.read_until(r"call_outbound\s+running", 60), visible(run.output)
        deadline = time.monotonic() + 30  # the call is up once the PBX relayed our ACK
        while pbx_requests(lab, "ACK") == acks and time.monotonic() < deadline:
            time.sleep(0.2)
        assert pbx_requests(lab, "ACK") > acks, "the call was never answered"
        time.sleep(1.0)  # into the media
        run.signal()
        rc = run.wait(40)
    finally:
        if run.returncode is None:
            run.wait(40)
    text = visible(run.output)
    assert rc == 130, text
    assert "interrupted (Ctrl-C): only the checks that finished are listed" in text
    assert "interrupted (Ctrl-C): test calls hung up" in text
    assert "Traceback" not in text and "Event loop is closed" not in text
    assert "Result:" in text
    final = text[text.rfind("Result:") - 2000:]
    for cid in ("config", "transport", "register"):  # what finished is printed
        assert cid in final
    time.sleep(0.5)  # let Kamailio flush its log
    assert pbx_requests(lab, "BYE") > byes, "the call was not hung up"
    # the call registered as extension 100; nothing of sipkit's is left bound there
    proc = run_sipkit("check", "-c", str(lab.site_file), "--only", "register", "--json")
    assert checks(report_of(proc))["register"]["details"]["other_bindings"] == []
