"""A capture without any RTP (sipkit's own --pcap): calls are "RTP not in this capture", not
"no audio"."""

from __future__ import annotations

import json
import subprocess
import sys

from sipkit.analyze import analyze_file
from tests.conftest import ROOT
from tests.unit.test_pcap_analyze import Cap, call


def test_calls_without_rtp_in_the_capture_are_not_judged(tmp_path):
    cap = Cap()
    call(cap, "c1", rtp_to_caller=0, rtp_to_callee=0)
    call(cap, "c2", rtp_to_caller=0, rtp_to_callee=0)
    path = cap.write(tmp_path / "signalling.pcap")
    report = analyze_file(path)
    rows = report.get("capture").details["dialogs"]
    assert [r["problem"] for r in rows] == [None, None]
    assert {r["media"] for r in rows} == {"RTP not in this capture"}
    media = report.get("one_way_audio")
    assert media.status == "skip" and "RTP not in this capture" in media.summary
    assert report.status == "pass"

    human = subprocess.run([sys.executable, "-m", "sipkit", "analyze", path], capture_output=True,
                           text=True, env={"NO_COLOR": "1", "PATH": "/usr/bin:/bin"}, timeout=60,
                           cwd=ROOT)
    assert human.returncode == 0, human.stderr
    assert "no audio" not in human.stdout
    assert "(RTP not in this capture)" in human.stdout
    js = json.loads(subprocess.run([sys.executable, "-m", "sipkit", "analyze", path, "--json"],
                                   capture_output=True, text=True, timeout=60, cwd=ROOT).stdout)
    assert {c["id"]: c["status"] for c in js["checks"]}["one_way_audio"] == "skip"


def test_one_silent_call_among_calls_with_rtp_is_still_no_audio(tmp_path):
    cap = Cap()
    call(cap, "c1")
    call(cap, "c2", rtp_to_caller=0, rtp_to_callee=0)
    rows = analyze_file(cap.write(tmp_path / "x.pcap")).get("capture").details["dialogs"]
    assert [r["problem"] for r in rows] == ["no audio", None]
