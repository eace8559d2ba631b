"""The one check signature (DESIGN.md §3), like blackbox_exporter's ProbeFn.

A check module defines ``ID``, ``TITLE``, ``DEPENDS`` and ``async def run(ctx) -> CheckResult``.
It never prints; it returns evidence. Helpers here build results so every check reads alike.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..net.target import Target  # noqa: F401  (re-exported: checks speak of Targets)
from ..redact import Redactor, redact_text
from ..report import CheckResult, Evidence, Status
from ..settings import Site


@dataclass(frozen=True)
class RunOptions:
    """How to run, from flags; never part of the API body."""

    timeout: float = 4.0  # budget for one network exchange (a transaction, a handshake)
    insecure: bool = False  # TLS: do not verify the certificate (reported in the result)
    ca_file: Path | None = None
    nameserver: str | None = None  # "IP" or "IP:PORT"; None = the system resolver
    source_ip: str | None = None  # bind local sockets to this address
    verbose: int = 0
    t1: float = 0.5  # RFC 3261 T1; probes may shorten it on loopback
    samples: int = 3  # OPTIONS RTT samples per address
    pcap: Path | None = None


@dataclass
class CheckContext:
    site: Site
    options: RunOptions
    results: dict[str, CheckResult]  # results of the checks this one depends on
    redactor: Redactor
    recorder: Any = None  # a sipkit.pcap.PcapRecorder with --pcap
    started: float = field(default_factory=time.monotonic)
    evidence: list[Evidence] = field(default_factory=list)

    # -- facts produced by earlier checks ---------------------------------------------
    @property
    def targets(self) -> list[Target]:
        dns = self.results.get("dns")
        rows = dns.details.get("targets", []) if dns else []
        return [Target(**row) for row in rows]

    @property
    def answering_targets(self) -> list[Target]:
        """Targets the transport check reached, best first; all targets if it did not run."""
        tr = self.results.get("transport")
        if tr is None:
            return self.targets
        ok = [row["target"] for row in tr.details.get("addresses", []) if row.get("reachable")]
        return [Target(**row) for row in ok]

    # -- evidence ---------------------------------------------------------------------
    def elapsed_ms(self) -> float:
        return round((time.monotonic() - self.started) * 1000, 2)

    def note(self, summary: str, text: str | None = None) -> None:
        self.evidence.append(Evidence(kind="note", summary=summary, at_ms=self.elapsed_ms(),
                                      text=self.redactor(text) if text else None))

    def record(self, kind: str, summary: str, text: str | None = None,
               at_ms: float | None = None, **kw: Any) -> None:
        self.evidence.append(Evidence(kind=kind, summary=redact_text(summary),
                                      at_ms=self.elapsed_ms() if at_ms is None else at_ms,
                                      text=self.redactor(text) if text else None, **kw))

    def at_ms(self, wall: float) -> float:
        """A wall-clock time (a tap's ``ts``) as milliseconds since this check started."""
        return round((wall - time.time() + time.monotonic() - self.started) * 1000, 2)

    def result(self, check_id: str, status: Status, summary: str, hint: str | None = None,
               **details: Any) -> CheckResult:
        return CheckResult(id=check_id, status=status, summary=summary, hint=hint,
                           duration_ms=self.elapsed_ms(), details=details,
                           evidence=list(self.evidence))
