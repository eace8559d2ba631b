"""The one check signature (DESIGN.md §3), like blackbox_exporter's ProbeFn.

A check module defines ``ID``, ``TITLE``, ``DEPENDS`` and ``async def run(ctx) -> CheckResult``;
optionally ``KINDS`` (the target kinds it applies to, default all), ``AFTER`` (a soft order) and
``BUDGET``. It never prints; it returns evidence, and publishes what later checks need as typed
``Facts``. The runner owns each result's id and timing.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..net.target import Target  # noqa: F401  (re-exported: checks speak of Targets)
from ..redact import Redactor
from ..report import CheckResult, Evidence, Status
from ..endpoint import SipEndpoint
from ..pbx.requestlog import RequestLog
from ..settings import AnySite

ALL_KINDS = ("pbx_extension", "sip_trunk")


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
    # The Mihu API (sipkit.mihu.config.ApiSettings), loaded once with the other settings:
    # connector_server: auto, --create and the post-creation checks read it.
    api: Any = None


@dataclass
class Facts:
    """What a check learnt that later checks read: typed, never JSON details read back.

    Each field is written by one check (named beside it) and read only by checks that depend
    on, or run AFTER, that check.
    """

    targets: list[Target] | None = None  # dns: addresses to try, best first
    answering: list[Target] | None = None  # transport: those that answered SIP
    server_header: str | None = None  # transport/register: Server or User-Agent seen
    seen_as: str | None = None  # register: our address as the PBX saw it (received/rport)
    registered: bool | None = None  # register: the authenticated REGISTER got a 2xx
    # every check's SIP, through the tap (sipio.tap_for): the run-level view the PBX
    # fingerprint and the ban detector read after the run (sipkit.pbx.apply)
    requests: RequestLog = field(default_factory=RequestLog)
    # the connector server's address (checks.cloud.lookup, a future of its ServerLookup):
    # looked up once, by the first of register/allowed_ip/call_inbound that needs it
    connector_server: Any = None
    # cloud_registration (after creation), for the two calls through the PBX:
    connector: Any = None  # the connector as the Mihu API has it (sipkit.mihu.models)
    via_pbx_call: Any = None  # its call to the connector's extension (a media CallResult)
    test_extension_refused: bool = False  # the PBX refused check.test_extension: never again


@dataclass
class CheckContext:
    endpoint: SipEndpoint  # what the signalling checks read
    options: RunOptions
    redactor: Redactor
    site: AnySite | None = None  # the whole target (a probe has none)
    results: dict[str, CheckResult] = field(default_factory=dict)  # prerequisites' results
    facts: Facts = field(default_factory=Facts)
    recorder: Any = None  # a sipkit.pcap.PcapRecorder with --pcap
    started: float = field(default_factory=time.monotonic)
    evidence: list[Evidence] = field(default_factory=list)

    @classmethod
    def for_site(cls, site: AnySite, options: RunOptions, redactor: Redactor | None = None,
                 **kw: Any) -> CheckContext:
        """A context on the site's first endpoint (the registrar, or a trunk's gateway)."""
        return cls(endpoint=site.endpoints()[0], site=site, options=options,
                   redactor=redactor or Redactor(site.secrets()), **kw)

    @property
    def kind(self) -> str:
        return self.site.kind if self.site is not None else "probe"

    # -- facts produced by earlier checks ---------------------------------------------
    @property
    def targets(self) -> list[Target]:
        return list(self.facts.targets or [])

    @property
    def answering_targets(self) -> list[Target]:
        """Targets the transport check reached, best first; all targets if it did not run."""
        if self.facts.answering is None:
            return self.targets
        return list(self.facts.answering)

    # -- evidence ---------------------------------------------------------------------
    def elapsed_ms(self) -> float:
        return round((time.monotonic() - self.started) * 1000, 2)

    def note(self, summary: str, text: str | None = None) -> None:
        self.evidence.append(Evidence(kind="note", summary=summary, at_ms=self.elapsed_ms(),
                                      text=self.redactor(text) if text else None))

    def record(self, kind: str, summary: str, text: str | None = None,
               at_ms: float | None = None, **kw: Any) -> None:
        # The run's redactor, not only the patterns: a status line may echo a digest value.
        self.evidence.append(Evidence(kind=kind, summary=self.redactor(summary),
                                      at_ms=self.elapsed_ms() if at_ms is None else at_ms,
                                      text=self.redactor(text) if text else None, **kw))

    def at_ms(self, wall: float) -> float:
        """A wall-clock time (a tap's ``ts``) as milliseconds since this check started."""
        return round((wall - time.time() + time.monotonic() - self.started) * 1000, 2)

    def result(self, status: Status, summary: str, hint: str | None = None,
               **details: Any) -> CheckResult:
        """The check's verdict; the runner sets its id and duration. Redacted here too, for
        callers that use it without a renderer (probers): a peer may echo a digest value
        into a reason phrase or a Server header that ends up in the summary or details."""
        return CheckResult(id="", status=status, summary=self.redactor(summary),
                           hint=self.redactor(hint) if hint else None,
                           duration_ms=self.elapsed_ms(), details=self.redactor.walk(details),
                           evidence=list(self.evidence))
