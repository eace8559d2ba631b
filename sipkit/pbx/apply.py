"""The post-pass over a finished report: name the PBX, make causes and fixes brand-specific,
and add the ban verdict. Checks stay brand-agnostic; verdict statuses never change.

Called once by sipkit.checks.runner after all checks ran, with the run's Facts (the request
log). What it may rewrite: a result's summary (the brand's cause is appended to the check's own
observation) and hint (the brand's fix replaces the generic one, which is kept in details).
"""

from __future__ import annotations

from typing import Any

from ..report import CheckResult, Report
from . import ban as ban_mod
from .fingerprint import Fingerprint, fingerprint
from .knowledge import Entry, lookup
from .pacing import CHECK_REQUEST_BUDGET
from .requestlog import RequestLog

BAN_ID = "ban"
GENERIC_BAN_FIX = ("wait for the ban to expire (often 5 to 60 minutes), then add {connector} "
                   "to the PBX's trusted / whitelisted addresses so its intrusion protection "
                   "never counts it; do not retry in a loop: every attempt extends most bans")


def _pbx_log(log: RequestLog, pbx_ips: set[str]) -> RequestLog:
    """The requests that went to the PBX (not to the connector server or the API)."""
    if not pbx_ips:
        return log
    return RequestLog(sent=[s for s in log.sent if s.remote in pbx_ips])


def _symptom(result: CheckResult, banned: bool) -> str | None:
    if result.status != "fail":
        return None
    d = result.details
    if result.id == "register":
        final = d.get("final_status")
        first = d.get("unauthenticated_status")
        if final == 403 or (final is None and first == 403):
            return "register_forbidden"
        if final == 404 or (final is None and first == 404):
            return "register_not_found"
        if final in (401, 407):
            return "auth_rejected"
        if final is None and first in (None, 401, 407):  # a REGISTER got no answer
            return "ban" if banned else "register_silent"
        return None
    if result.id in ("transport", "tls") and banned:
        return "ban"
    return None


def _values(site, fp: Fingerprint | None, finding, log: RequestLog, facts) -> dict[str, Any]:
    ep = site.endpoints()[0] if site is not None else None
    connector = getattr(getattr(site, "check", None), "connector_server", None)
    source = finding.local if finding else (facts.seen_as or next(
        (s.local for s in log.sent), None))
    return {"ext": getattr(site, "username_extension", None) or (ep.username if ep else None),
            "auth_user": ep.digest_username if ep else None,
            "connector": connector if connector and connector != "auto"
            else "the connector server's address",
            "source": source or "this address",
            "after": finding.after if finding else None,
            "brand": fp.name if fp else None}


def _specific(result: CheckResult, entry: Entry, values: dict, fp: Fingerprint) -> CheckResult:
    cause, fix = entry.filled(values)
    if entry.symptom == "ban":  # the ban verdict tells the story once; this check points at it
        cause = "this address was probably banned (see the ban verdict)"
    details = dict(result.details)
    details["pbx_knowledge"] = {"brand": entry.brand, "product": entry.product,
                                "symptom": entry.symptom, "source": entry.source,
                                "generic_hint": result.hint}
    return result.model_copy(update={"summary": f"{result.summary} — {fp.name}: {cause}",
                                     "hint": fix, "details": details})


async def apply(report: Report, site, facts, options=None) -> Report:
    """Fill in report.pbx, brand-specific causes and fixes, and the ban verdict."""
    pbx_ips = {t.ip for t in (facts.targets or [])}
    log = _pbx_log(facts.requests, pbx_ips)
    fp = fingerprint(log)
    finding = ban_mod.detect(log)
    if finding is not None and finding.mode == "silent" and options is not None:
        from .confirm import still_silent

        confirmed = await still_silent(finding, facts.requests, options.timeout, options.t1)
        log = _pbx_log(facts.requests, pbx_ips)  # the confirmation counts as a request
        if confirmed is False:  # the address still gets answers: not a ban
            finding = None
        elif finding is not None:
            finding.confirmed = confirmed
    values = _values(site, fp, finding, log, facts)
    sent = log.count()
    if fp is not None:
        report.pbx = {**fp.as_dict(), "requests_sent": sent}
    elif log.answers():
        report.pbx = {"brand": None, "label": "unknown PBX", "confidence": 0.0,
                      "evidence": ["nothing it sent matches a known product"],
                      "requests_sent": sent}
    brand = fp.brand if fp else None
    product = fp.product if fp else None
    checks = []
    for c in report.checks:
        symptom = _symptom(c, finding is not None)
        entry = lookup(brand, symptom, product) if symptom else None
        if entry is None and fp is not None and fp.front_end and symptom == "ban":
            entry = lookup(fp.front_end, symptom)  # the proxy in front may be the one banning
        checks.append(_specific(c, entry, values, fp) if entry is not None else c)
    report.checks = checks
    if finding is not None:
        report.checks.append(_ban_result(finding, fp, values))
    return report


def _ban_result(finding, fp: Fingerprint | None, values: dict) -> CheckResult:
    summary = (f"this address ({finding.local}) was probably banned by the PBX's intrusion "
               f"protection after {finding.after} requests: {finding.describe()}")
    if finding.confirmed:
        summary += "; a fresh OPTIONS got no answer either"
    entry = lookup(fp.brand, "ban", fp.product) if fp else None
    if entry is None and fp is not None and fp.front_end:
        entry = lookup(fp.front_end, "ban")
    details: dict[str, Any] = {
        "remote": finding.remote, "local": finding.local, "after_requests": finding.after,
        "mode": finding.mode, "first_dropped": f"{finding.first.method} "
        f"(CSeq {finding.first.cseq})", "affected_requests": finding.unanswered,
        "seconds_into_run": round(finding.seconds, 2),
        "confirmed_by_options": finding.confirmed,
        "sipkit_request_budget": CHECK_REQUEST_BUDGET}
    if entry is not None:
        cause, fix = entry.filled(values)
        summary += f" — {fp.name}: {cause}"
        details["pbx_knowledge"] = {"brand": entry.brand, "product": entry.product,
                                    "symptom": "ban", "source": entry.source}
    else:
        fix = GENERIC_BAN_FIX.format(connector=values["connector"])
    return CheckResult(id=BAN_ID, status="fail", summary=summary, hint=fix, details=details)
