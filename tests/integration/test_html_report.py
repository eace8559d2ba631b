"""--html: one self-contained page, checked in headless Chromium: it renders, every SIP ladder
has one arrow per message, no secret is in the file. The screenshot goes to docs/ when
SIPKIT_SCREENSHOT is set (docs/html-report.png was made that way)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import report_of
from tests.integration.test_checks_lab import site_variant

pytestmark = pytest.mark.lab
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    if CHROMIUM is None:
        pytest.skip("headless Chromium is not installed (Debian: apt-get install chromium)")
    profile = tmp_path / f"chromium-profile-{len(list(tmp_path.iterdir()))}"
    return subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={profile}", *args],
        capture_output=True, text=True, timeout=120)


def ladders(dom: str) -> dict[str, int]:
    """Arrows (class="msg") per check's diagram in the rendered DOM."""
    out = {}
    for m in re.finditer(r'<div class="ladder" data-check="([^"]+)">(.*?)</svg>', dom, re.S):
        out[m.group(1)] = len(re.findall(r'class="msg"', m.group(2)))
    return out


def test_html_report_in_chromium(lab, run_sipkit, tmp_path):
    page, pcap = tmp_path / "report.html", tmp_path / "run.pcap"
    env = lab.env()
    token = Path(env["SIPKIT_API_TOKEN_FILE"]).read_text().strip()
    password = lab.passwords()["100"]
    # the connector exists (idempotent), so both test calls go through and are drawn
    made = run_sipkit("connector", "create", "--config", str(lab.site_file), "--skip-checks",
                      env=env)
    assert made.returncode == 0, made.stdout + made.stderr
    proc = run_sipkit("check", "-c", str(lab.site_file), "--json", "--html", str(page),
                      "--pcap", str(pcap), env=env, timeout=120)
    report = report_of(proc)
    html = page.read_text()
    # self-contained: nothing to fetch
    assert not re.search(r'(src|href)\s*=\s*"(https?:)?//', html)
    assert "<script" not in html and "@import" not in html
    assert not re.findall(r"url\((?!#)", html)
    for secret in (password, token):
        assert secret not in html
    assert "response=&quot;&lt;redacted&gt;&quot;" in html  # the digest response, masked
    assert "<redacted>" not in html  # ...and escaped: no stray tag in the page
    assert not re.search(r'response=(&quot;|")[0-9a-f]{32,}', html)
    assert "register" in html and "Verdicts" in html

    dom = chromium(tmp_path, "--dump-dom", page.as_uri())
    assert dom.returncode == 0, dom.stderr[-2000:]
    drawn = ladders(dom.stdout)
    expected = {c["id"]: sum(1 for e in c["evidence"] if e["kind"] == "sip")
                for c in report["checks"]}
    expected = {cid: n for cid, n in expected.items() if n}
    assert expected and drawn == expected
    assert drawn["register"] >= 4  # the challenge, the authenticated REGISTER, the removal
    # the calls' media: a lane per direction, with MOS
    assert dom.stdout.count('class="media"') >= 4 and "MOS" in dom.stdout  # two calls
    assert dom.stdout.count('<polyline class="media"') >= 4  # packets/s over each call
    for c in report["checks"]:  # the verdict table: every check with its status
        assert f'<tr class="check {c["status"]}">' in dom.stdout

    shot = Path(os.environ.get("SIPKIT_SCREENSHOT") or tmp_path / "shot.png")
    r = chromium(tmp_path, f"--screenshot={shot}", "--window-size=1100,1500",
                 "--hide-scrollbars", page.as_uri())
    assert r.returncode == 0 and shot.stat().st_size > 20_000, r.stderr[-2000:]
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # analyze on the same run's pcap: the same page, and the calls are not judged for audio
    apage = tmp_path / "analyze.html"
    proc = run_sipkit("analyze", str(pcap), "--html", str(apage))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "no audio" not in proc.stdout and "RTP not in this capture" in proc.stdout
    text = apage.read_text()
    assert "RTP not in this capture" in text and password not in text
    assert '<table id="dialogs">' in text and "INVITE" in text
    assert chromium(tmp_path, "--dump-dom", apage.as_uri()).returncode == 0


def test_html_for_a_failing_site_has_causes_and_fixes(lab, run_sipkit, tmp_path):
    page = tmp_path / "fail.html"
    site = site_variant(lab, tmp_path, port="5061")
    run_sipkit("check", "-c", str(site), "--skip", "call_inbound,call_outbound", "--html",
               str(page), "--timeout", "2")
    html = page.read_text()
    assert "port 5061 speaks TLS, not UDP" in html
    assert lab.passwords()["100"] not in html
