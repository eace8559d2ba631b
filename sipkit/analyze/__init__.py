"""`sipkit analyze CAPTURE`: diagnose a SIP capture with the same verdict model as `check`.

    reader.py    pcap/pcapng → transport payloads (streaming; IP fragments, TCP reassembly)
    dialogs.py   payloads → SIP messages grouped by Call-ID, RTP matched to SDP per direction
    diagnose.py  finished dialogs → findings → CheckResults, problems ranked first

``analyze_file(path)`` returns a ``sipkit.report.Report``; it raises ``ValueError`` only when
the file is not a capture at all. A file that ends early or has a corrupt block gives the
analysis of what was read plus a ``capture`` check with status warn. Memory stays bounded:
the file is streamed, and every buffer (fragments, TCP, dialogs, media, examples) is capped.
"""

from __future__ import annotations

import time

from ..report import Report
from .diagnose import MEANING, Findings, meaning
from .dialogs import Dialog, Tracker
from .reader import ReadStats, datagrams

__all__ = ["analyze_file", "MEANING", "meaning", "Dialog"]


def analyze_file(path: str) -> Report:
    t0 = time.monotonic()
    stats = ReadStats()
    findings = Findings()
    tracker = Tracker(findings.add)
    for d in datagrams(str(path), stats):
        tracker.feed(d)
    tracker.close()
    return findings.report(str(path), stats, tracker, time.monotonic() - t0)
