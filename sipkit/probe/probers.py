"""One prober per kind, all with one signature: ``async def probe(module, target) -> ProbeResult``.

A probe builds a SIP endpoint from the module and the target line and runs the checks' public
cores on it, so the SIP, TLS and REGISTER logic (and its lockout rule) is the one `sipkit check`
uses; nothing is written twice, and no site is faked.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import asdict, dataclass, field

from ..checks.base import CheckContext, RunOptions, Target
from ..endpoint import SipEndpoint
from ..net.addresses import parse_ip
from ..net.outcome import of_exception, of_exchange
from ..net.resolver import resolve_sip
from ..redact import Redactor
from .config import Module, split_target
from .lockout import LOCKOUT


@dataclass
class ProbeResult:
    target: str
    module: str
    success: bool = False
    duration_s: float = 0.0
    reason: str = ""
    status_code: int | None = None
    rtt_s: float | None = None
    dns_lookup_s: float | None = None
    tls_not_after: float | None = None
    tls_days_left: int | None = None
    register_expires_s: int | None = None
    backoff_s: float | None = None
    extra: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v is not None and v != {}}


def endpoint_of(module: Module, host: str, port: int) -> SipEndpoint:
    """The endpoint a module describes for one target line."""
    return SipEndpoint(host=host, port=port, transport=module.transport,
                       username=module.username or "sipkit", password=module.password(),
                       auth_username=module.auth_username, domain=module.domain,
                       source_ip=module.source_ip)


def _context(module: Module, host: str, port: int) -> CheckContext:
    ep = endpoint_of(module, host, port)
    options = RunOptions(timeout=module.timeout, t1=module.t1, insecure=module.insecure,
                         ca_file=module.ca_file, nameserver=module.nameserver,
                         source_ip=module.source_ip, samples=1)
    return CheckContext(endpoint=ep, options=options, redactor=Redactor(ep.secrets()))


async def _resolve(module: Module, host: str, port: int, res: ProbeResult) -> str | None:
    if parse_ip(host):
        return host.strip("[]")
    t0 = time.monotonic()
    resolution = await resolve_sip(host, transport="tls" if module.transport == "tls" else "udp",
                                   port=port, explicit_port=True,
                                   nameserver=module.nameserver, timeout=module.timeout)
    res.dns_lookup_s = round(time.monotonic() - t0, 6)
    if not resolution.addresses:
        outcome = next((lk.outcome for lk in resolution.lookups if lk.rdtype == "A"), "nodata")
        res.reason = f"dns: {outcome}"
        return None
    return resolution.addresses[0]


async def probe_options(module: Module, target: str, res: ProbeResult) -> None:
    from ..checks.sipio import Dialogless, open_target, server_of

    host, port = split_target(target, module.transport)
    ip = await _resolve(module, host, port, res)
    if ip is None:
        return
    ctx = _context(module, host, port)
    t = Target(host=host, ip=ip, port=port, transport=module.transport)
    try:
        async with open_target(ctx, t, verify=module.transport == "tls" and not module.insecure,
                               record=False) as conn:
            ex = await conn.request(Dialogless(conn, t).options(), timeout=module.timeout,
                                    t1=module.t1)
    except (OSError, TimeoutError) as exc:
        res.reason = str(of_exception(exc, connecting=True))
        return
    if ex.final is None:
        res.reason = of_exchange(ex).value
        return
    res.status_code = ex.final.status
    res.rtt_s = ex.rtt_ms / 1000 if ex.rtt_ms is not None else None
    res.extra["server"] = server_of(ex.final)
    # Default: any answer below 500 means the server is up and handling SIP; 5xx/6xx mean
    # it is there but failing (Nagios users expect those CRITICAL, not OK).
    ok = (ex.final.status in module.valid_status_codes if module.valid_status_codes
          else ex.final.status < 500)
    res.success = ok
    res.reason = f"{ex.final.status} {ex.final.reason}"


async def probe_register(module: Module, target: str, res: ProbeResult, key: str) -> None:
    from ..checks import register

    host, port = split_target(target, module.transport)
    if module.password() is None:
        res.reason = "no password: set password_env or password_file in the module"
        return
    held = LOCKOUT.claim(key)
    while held is not None and held.in_flight is not None:  # share the attempt in flight
        while not held.in_flight.is_set():
            await asyncio.sleep(0.02)
        held = LOCKOUT.claim(key)
    if held is not None:  # lockout-safe: no authenticated attempt now
        for k, v in held.last.items():
            setattr(res, k, v)
        res.backoff_s = held.wait
        res.reason = f"{held.last.get('reason', '')} (cached: next attempt in {held.wait:.0f} s)"
        return
    try:
        ip = await _resolve(module, host, port, res)
        if ip is None:
            return
        ctx = _context(module, host, port)
        result = await register.attempt(ctx, Target(host=host, ip=ip, port=port,
                                                    transport=module.transport))
        d = result.details
        res.success = result.status in ("pass", "warn")
        res.status_code = d.get("final_status") or d.get("unauthenticated_status")
        res.register_expires_s = d.get("granted_expires")
        res.reason = result.summary
        res.extra["authenticated_attempts"] = d.get("authenticated_attempts")
        LOCKOUT.record(key, module.min_interval, res.success, res.status_code,
                       {"success": res.success, "status_code": res.status_code,
                        "register_expires_s": res.register_expires_s, "reason": res.reason})
    finally:
        LOCKOUT.release(key)


async def probe_tls(module: Module, target: str, res: ProbeResult) -> None:
    from ..checks import tls

    host, port = split_target(target, "tls")
    ip = await _resolve(module, host, port, res)
    if ip is None:
        return
    ctx = _context(module, host, port)
    t = Target(host=host, ip=ip, port=port, transport="tls")
    facts = await tls.handshake(ctx, t, verify=not module.insecure)
    if "error" in facts and facts["error"] != "connect":
        facts = {**await tls.handshake(ctx, t, verify=False), "error": facts["error"]}
    cert = facts.get("cert") or {}
    if cert:
        import datetime as dt

        res.tls_not_after = dt.datetime.fromisoformat(cert["not_after"]).timestamp()
        res.tls_days_left = cert["days_left"]
    res.extra.update({k: facts.get(k) for k in ("version", "cipher") if facts.get(k)})
    if "error" in facts:
        res.reason = f"tls: {facts['error']}" + (f" ({facts.get('detail')})"
                                                 if facts.get("detail") else "")
        return
    res.success = True
    res.reason = f"{facts.get('version')}, {cert.get('days_left')} days left"


async def probe_dns(module: Module, target: str, res: ProbeResult) -> None:
    host, port = split_target(target, module.transport)
    ip = await _resolve(module, host, port, res)
    if ip is not None:
        res.success = True
        res.reason = f"{host} → {ip}"


PROBERS = {"options": probe_options, "tls": probe_tls, "dns": probe_dns}


async def run_probe(module_name: str, module: Module, target: str,
                    timeout: float | None = None) -> ProbeResult:
    """Never raises: every failure is a result with success False and a reason."""
    res = ProbeResult(target=target, module=module_name)
    t0 = time.monotonic()
    budget = timeout or (module.timeout * 4 + 2)
    try:
        if module.prober == "register":
            coro = probe_register(module, target, res, f"{module_name}|{target}")
        else:
            coro = PROBERS[module.prober](module, target, res)
        await asyncio.wait_for(coro, budget)
    except TimeoutError:
        res.success, res.reason = False, f"timeout after {budget:.1f} s"
    except ValueError as exc:
        res.success, res.reason = False, f"bad target: {exc}"
    except Exception as exc:  # a sipkit bug must not take the exporter down
        res.success, res.reason = False, f"probe error: {type(exc).__name__}: {exc}"
    res.duration_s = round(time.monotonic() - t0, 6)
    return res
