"""The result model: what a check returns and what ``--json`` prints, as-is (DESIGN.md §3)."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Literal

from pydantic import BaseModel, Field

from . import __version__

Status = Literal["pass", "warn", "fail", "skip", "error"]

# Worst first: a report's status is the worst of its checks' (skip counts as pass).
_SEVERITY: dict[str, int] = {"error": 4, "fail": 3, "warn": 2, "pass": 1, "skip": 0}

EXIT_OK, EXIT_FAIL, EXIT_USAGE, EXIT_INTERNAL = 0, 1, 2, 3


class Evidence(BaseModel):
    """One piece of proof: a SIP message, a DNS answer, a certificate... always redacted."""

    kind: Literal["sip", "dns", "tls", "http", "note", "media"]
    summary: str
    # Milliseconds since the check started; direction for SIP ("out"/"in") and the peer.
    at_ms: float | None = None
    direction: Literal["out", "in"] | None = None
    peer: str | None = None
    local: str | None = None
    transport: str | None = None
    text: str | None = None


class CheckResult(BaseModel):
    id: str
    status: Status
    summary: str
    hint: str | None = None
    duration_ms: float = 0.0
    details: dict[str, Any] = Field(default_factory=dict)
    evidence: list[Evidence] = Field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status in ("pass", "warn")


class Report(BaseModel):
    sipkit_version: str = __version__
    started_at: datetime = Field(default_factory=lambda: datetime.now(timezone.utc))
    duration_ms: float = 0.0
    target: dict[str, Any] = Field(default_factory=dict)
    options: dict[str, Any] = Field(default_factory=dict)
    status: Status = "pass"
    checks: list[CheckResult] = Field(default_factory=list)
    # With `check --create`: what was done in the Mihu API (no secrets), or why nothing was.
    provisioning: dict[str, Any] | None = None
    # The PBX as sipkit recognised it (sipkit.pbx.fingerprint): brand, product, version,
    # confidence, evidence, and how many requests this run sent it. None: nothing answered.
    pbx: dict[str, Any] | None = None

    def finish(self, duration_ms: float) -> Report:
        self.duration_ms = round(duration_ms, 1)
        self.status = worst(c.status for c in self.checks)
        return self

    def get(self, check_id: str) -> CheckResult | None:
        return next((c for c in self.checks if c.id == check_id), None)

    def exit_code(self, strict: bool = False) -> int:
        if any(c.status == "error" for c in self.checks):
            return EXIT_INTERNAL
        if any(c.status == "fail" or (strict and c.status == "warn") for c in self.checks):
            return EXIT_FAIL
        return EXIT_OK


def target_line(t: dict[str, Any]) -> str:
    """What a report is about, in one line, for each target kind (no secrets are in ``t``)."""
    from .net.addresses import hostport

    if "capture" in t:
        return f"analyze {t['capture']}"
    if t.get("kind") == "sip_trunk":
        gw = t.get("gateway", "")
        return (f"trunk {t.get('name')} · {str(t.get('transport', '')).upper()} {gw}"
                + (f":{t['port']}" if t.get("port") and ":" not in str(gw) else "")
                + (f" · secondary {t['secondary_gateway']}" if t.get("secondary_gateway")
                   else "") + f" · {t.get('api')} API")
    return (f"{str(t.get('connection_type', '')).upper()} "
            f"{hostport(str(t.get('registrar_server')), t.get('port'))} · extension "
            f"{t.get('username_extension')} · setup_mode {t.get('setup_mode')}")


def worst(statuses) -> Status:
    statuses = list(statuses)
    if not statuses:
        return "pass"
    top = max(statuses, key=lambda s: _SEVERITY[s])
    return "pass" if top == "skip" else top
