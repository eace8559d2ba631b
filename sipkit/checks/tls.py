"""tls: the PBX's certificate and TLS settings, each failure explained on its own.

A verified handshake first (SNI = the registrar name; RFC 5922 §7 wants the SIP domain in the
SAN). If it fails, an unverified one fetches the certificate so the report can say *why*:
untrusted issuer, name mismatch, expired, not yet valid (often the clock), or protocol.
"""

from __future__ import annotations

import datetime as dt
import ssl
from email.utils import parsedate_to_datetime

from ..report import CheckResult
from .base import CheckContext, Target
from .sipio import Dialogless, open_target

ID = "tls"
TITLE = "TLS certificate"
DEPENDS = ("transport",)
EXPIRY_WARN_DAYS = 14
SKEW_WARN_S = 60

# OpenSSL X509_V_ERR_* codes -> our verdicts
_VERIFY = {
    9: "not_yet_valid", 10: "expired",
    18: "untrusted", 19: "untrusted", 20: "untrusted", 21: "untrusted", 2: "untrusted",
    62: "name_mismatch", 64: "name_mismatch",
}


def _cert_facts(der: bytes | None) -> dict:
    if not der:
        return {}
    from cryptography import x509

    cert = x509.load_der_x509_certificate(der)
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names = san.get_values_for_type(x509.DNSName)
        ips = [str(i) for i in san.get_values_for_type(x509.IPAddress)]
    except x509.ExtensionNotFound:
        names, ips = [], []
    not_after = cert.not_valid_after_utc
    now = dt.datetime.now(dt.timezone.utc)
    return {"subject": cert.subject.rfc4514_string(), "issuer": cert.issuer.rfc4514_string(),
            "san_dns": names, "san_ip": ips,
            "not_before": cert.not_valid_before_utc.isoformat(),
            "not_after": not_after.isoformat(),
            "days_left": (not_after - now).days,
            "self_signed": cert.issuer == cert.subject,
            "serial": format(cert.serial_number, "x")}


cert_facts = _cert_facts  # public: the reflector reads certificates as served outside


async def handshake(ctx: CheckContext, target: Target, verify: bool) -> dict:
    """Connect, send one OPTIONS (for the Date header), return the facts or the error."""
    out: dict = {}
    try:
        async with open_target(ctx, target, verify=verify, record=verify) as conn:
            so = conn.ssl_object
            out["version"] = so.version() if so else None
            cipher = so.cipher() if so else None
            out["cipher"] = cipher[0] if cipher else None
            out["cert"] = _cert_facts(so.getpeercert(binary_form=True) if so else None)
            if verify:
                d = Dialogless(conn, target)
                ex = await conn.request(d.options(), timeout=ctx.options.timeout, t1=ctx.options.t1)
                date = ex.final.headers.get("Date") if ex.final is not None else None
                if date:
                    try:
                        server = parsedate_to_datetime(date)
                        out["clock_skew_s"] = round(
                            (dt.datetime.now(dt.timezone.utc) - server).total_seconds(), 1)
                    except (TypeError, ValueError):
                        pass
    except ssl.SSLCertVerificationError as exc:
        out["error"] = _VERIFY.get(exc.verify_code, "untrusted")
        out["detail"] = exc.verify_message
    except ssl.SSLError as exc:
        out["error"] = "protocol"
        out["detail"] = exc.reason or str(exc)
    except (ConnectionError, OSError, TimeoutError) as exc:
        out["error"] = "connect"
        out["detail"] = str(exc) or type(exc).__name__
    return out


def _explain(verdict: str, facts: dict, target: Target, ctx: CheckContext) -> tuple[str, str]:
    cert = facts.get("cert") or {}
    names = ", ".join(cert.get("san_dns", []) + cert.get("san_ip", [])) or cert.get("subject", "?")
    ca = f"--ca-file {ctx.options.ca_file}" if ctx.options.ca_file else "the system trust store"
    if verdict == "untrusted":
        return (f"certificate issued by {cert.get('issuer', '?')} is not trusted by {ca}"
                + (" (self-signed)" if cert.get("self_signed") else ""),
                "install a certificate from a public CA on the PBX, or give the PBX's CA with "
                "--ca-file (the cloud connector must trust it too)")
    if verdict == "name_mismatch":
        return (f"certificate names {names}, not {target.host}",
                f"issue the PBX certificate for {target.host}, or set registrar_server to a "
                "name the certificate carries")
    if verdict == "expired":
        return (f"certificate expired on {cert.get('not_after', '?')[:10]}",
                "renew the PBX's certificate")
    if verdict == "not_yet_valid":
        return (f"certificate is not valid before {cert.get('not_before', '?')}",
                "check this machine's and the PBX's clocks (NTP); or the certificate was "
                "issued with a future date")
    if verdict == "protocol":
        return (f"TLS handshake failed: {facts.get('detail')}",
                "enable TLS 1.2 or 1.3 with modern ciphers on the PBX")
    return (f"cannot connect for TLS: {facts.get('detail')}", "see the transport check")


async def run(ctx: CheckContext) -> CheckResult:
    if ctx.endpoint.transport != "tls":
        return ctx.result("skip", f"transport is {ctx.endpoint.transport}: no TLS to audit")
    targets = [t for t in ctx.answering_targets if t.transport == "tls"]
    if not targets:
        return ctx.result("skip", "no TLS address answered in the transport check")
    target = targets[0]
    facts = await handshake(ctx, target, verify=True)
    details: dict = {"target": target.as_dict(), "verified": "error" not in facts,
                     "insecure": ctx.options.insecure,
                     "ca_file": str(ctx.options.ca_file) if ctx.options.ca_file else None}
    if "error" in facts:
        verdict = facts["error"]
        if verdict != "connect":  # fetch the certificate anyway, to explain
            loose = await handshake(ctx, target, verify=False)
            facts = {**loose, "error": verdict, "detail": facts.get("detail")}
        details.update(facts)
        summary, hint = _explain(verdict, facts, target, ctx)
        if ctx.options.insecure and verdict not in ("protocol", "connect"):
            return ctx.result("warn", summary + " (ignored: --insecure)", hint, **details)
        return ctx.result("fail", summary, hint, **details)

    details.update(facts)
    cert = facts["cert"]
    summary = (f"{facts['version']} {facts['cipher']}; certificate for "
               f"{', '.join(cert['san_dns'] + cert['san_ip']) or cert['subject']} valid "
               f"{cert['days_left']} more days, issued by {cert['issuer']}")
    warns: list[tuple[str, str]] = []
    if cert["days_left"] < EXPIRY_WARN_DAYS:
        warns.append((f"certificate expires in {cert['days_left']} days",
                      "renew the PBX's certificate now"))
    if facts["version"] in ("TLSv1", "TLSv1.1", "SSLv3"):
        warns.append((f"{facts['version']} is obsolete", "enable TLS 1.2 or newer on the PBX"))
    skew = facts.get("clock_skew_s")
    if skew is not None and abs(skew) > SKEW_WARN_S:
        warns.append((f"clock differs from the PBX's by {skew:+.0f} s",
                      "sync both clocks with NTP: skew breaks certificate validity and nonces"))
    if warns:
        return ctx.result("warn", "; ".join(w[0] for w in warns) + f" — {summary}",
                          "; ".join(w[1] for w in warns), **details)
    return ctx.result("pass", summary, **details)
