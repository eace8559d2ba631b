"""One prober per kind, all with one signature, ``async def probe(module, target, res, env)``,
filling ``res``; each kind is a ``Prober`` in ``PROBERS`` with the metrics it exports.

A probe builds a SIP endpoint from the module's own section and the target line and runs the
checks' public cores on it (``checks.transport.probe``'s transaction, ``checks.register.attempt``,
``checks.tls.handshake``, ``media.call.run_call``), so the SIP, TLS, REGISTER and call logic is
the one `sipkit check` uses; nothing is written twice, and no site is faked.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, fields

from ..net.addresses import hostport, parse_ip, uri_host
from .config import Module, ProbeConfig, split_target
from .lockout import LockoutStateError, lockout_for


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
    # call
    setup_s: float | None = None
    mos: float | None = None
    loss_ratio: float | None = None  # what we receive
    tx_loss_ratio: float | None = None  # what we send, from the far end's RTCP
    one_way_audio: bool | None = None
    extra: dict = field(default_factory=dict)
    log: list[str] = field(default_factory=list)  # debug=true: what the probe did

    def as_dict(self) -> dict:
        out = {}
        for f in _FIELDS:
            v = getattr(self, f)
            if v is not None and v != {} and v != []:
                out[f] = v
        out.pop("log", None)
        return out


_FIELDS = [f.name for f in fields(ProbeResult)]


def result_dict(target: str, module: str, success: bool, duration: float, reason: str) -> dict:
    """A result without details, in the JSON-lines shape of ``ProbeResult.as_dict``."""
    return {"target": target, "module": module, "success": success,
            "duration_s": round(duration, 6), "reason": reason}


@dataclass
class ProbeEnv:
    """What a probe may use besides its module and target: the module's name, the run's
    config (its state file, its call limit), the shared TCP/TLS connections and, with
    ``debug``, a log and SIP ladder the exporter shows (blackbox_exporter's debug=true)."""

    name: str
    config: ProbeConfig | None = None
    pool: ConnPool | None = None
    debug: bool = False
    res: ProbeResult | None = None

    @property
    def lockout(self):
        return lockout_for(self.config.state_file if self.config else None)

    def note(self, line: str) -> None:
        if self.debug and self.res is not None:
            self.res.log.append(line)

    def ladder(self, ex) -> None:
        """The exchange's messages, for debug output (our own OPTIONS: no secrets in it)."""
        if not (self.debug and self.res is not None):
            return
        self.res.log.append("> " + ex.request.to_bytes().decode("utf-8", "replace")
                            .replace("\r\n", "\n> ").rstrip("> \n"))
        for resp in [*ex.provisionals, *([ex.final] if ex.final else [])]:
            self.res.log.append("< " + resp.to_bytes().decode("utf-8", "replace")
                                .replace("\r\n", "\n< ").rstrip("< \n"))


def endpoint_of(module: Module, host: str, port: int):
    """The endpoint (``SipEndpoint``) a module's section describes for one target line."""
    from ..endpoint import SipEndpoint

    sec = module.section
    password = sec.password() if hasattr(sec, "password") else None
    return SipEndpoint(host=host, port=port, transport=module.transport,
                       username=getattr(sec, "username", None) or "sipkit", password=password,
                       auth_username=getattr(sec, "auth_username", None),
                       domain=getattr(sec, "domain", None),
                       source_ip=getattr(sec, "source_ip", None))


def _context(module: Module, host: str, port: int):
    from ..checks.base import CheckContext, RunOptions
    from ..redact import Redactor

    ep = endpoint_of(module, host, port)
    sec = module.section
    options = RunOptions(timeout=module.timeout, t1=getattr(sec, "t1", 0.5),
                         insecure=getattr(sec, "insecure", False),
                         ca_file=getattr(sec, "ca_file", None),
                         nameserver=getattr(sec, "nameserver", None),
                         source_ip=getattr(sec, "source_ip", None), samples=1)
    return CheckContext(endpoint=ep, options=options, redactor=Redactor(ep.secrets()))


async def _resolve(module: Module, host: str, port: int, res: ProbeResult) -> str | None:
    if parse_ip(host):
        return host.strip("[]")
    from ..net.resolver import resolve_sip

    t0 = time.monotonic()
    resolution = await resolve_sip(host, transport="tls" if module.transport == "tls" else "udp",
                                   port=port, explicit_port=True,
                                   nameserver=getattr(module.section, "nameserver", None),
                                   timeout=module.timeout)
    res.dns_lookup_s = round(time.monotonic() - t0, 6)
    if not resolution.addresses:
        outcome = next((lk.outcome for lk in resolution.lookups if lk.rdtype == "A"), "nodata")
        res.reason = f"dns: {outcome}"
        return None
    return resolution.addresses[0]


class ConnPool:
    """TCP/TLS connections kept per target for OPTIONS probes (connection reuse, RFC 5923;
    what a UA does): one connect for any number of probes and parallel scrapes, responses
    matched by Via branch. A connection that fails or closes is dropped and made again by
    the next probe. Bound to one event loop."""

    MAX = 4096

    def __init__(self) -> None:
        self.conns: dict[tuple, asyncio.Future] = {}

    async def get(self, key: tuple, make: Callable[[], Awaitable]):
        fut = self.conns.get(key)
        if fut is not None and fut.done() and (fut.exception() is not None
                                               or fut.result()[0].closed):
            self.conns.pop(key, None)
            fut = None
        if fut is None:
            if len(self.conns) >= self.MAX:
                await self.close()
            fut = self.conns[key] = asyncio.get_running_loop().create_future()
            try:
                fut.set_result(await make())
            except BaseException as exc:
                self.conns.pop(key, None)
                fut.set_exception(exc)
                fut.exception()  # retrieved: waiters re-raise it
                raise
        return await asyncio.shield(fut)

    def drop(self, key: tuple) -> None:
        fut = self.conns.pop(key, None)
        if fut is not None and fut.done() and fut.exception() is None:
            asyncio.ensure_future(fut.result()[0].close())

    async def close(self) -> None:
        conns, self.conns = self.conns, {}
        for fut in conns.values():
            if fut.done() and fut.exception() is None:
                await fut.result()[0].close()


async def probe_options(module: Module, target: str, res: ProbeResult, env: ProbeEnv) -> None:
    from ..checks.base import Target
    from ..checks.sipio import Dialogless, open_target, server_of, ssl_context
    from ..net.outcome import of_exception, of_exchange
    from ..net.transport import connect

    sec = module.section
    host, port = split_target(target, sec.transport)
    ip = await _resolve(module, host, port, res)
    if ip is None:
        return
    t = Target(host=host, ip=ip, port=port, transport=sec.transport)
    verify = sec.transport == "tls" and not sec.insecure
    reuse = env.pool is not None and sec.reuse_connection and sec.transport != "udp"
    key = (sec.transport, ip, port, host, sec.source_ip, verify, sec.ca_file)
    try:
        if reuse:
            async def make():
                ctx = _context(module, host, port)
                sslctx = ssl_context(ctx, verify) if sec.transport == "tls" else None
                conn = await connect(ip, port, sec.transport, local_ip=sec.source_ip,
                                     ssl_context=sslctx,
                                     server_hostname=host if sslctx is not None else None,
                                     timeout=module.timeout)
                return conn, Dialogless(conn, t)

            conn, dialog = await env.pool.get(key, make)
            if env.debug:
                env.note(f"connection {hostport(*conn.local[:2])} -> {hostport(ip, port)} "
                         f"({sec.transport}, kept for the next probes)")
            ex = await conn.request(dialog.options(), timeout=module.timeout, t1=sec.t1)
            if ex.final is None:
                env.pool.drop(key)  # a silent or broken flow is not kept
        else:
            ctx = _context(module, host, port)
            async with open_target(ctx, t, verify=verify, record=False) as conn:
                ex = await conn.request(Dialogless(conn, t).options(), timeout=module.timeout,
                                        t1=sec.t1)
    except (OSError, TimeoutError) as exc:
        if reuse:
            env.pool.drop(key)
        res.reason = str(of_exception(exc, connecting=True))
        return
    env.ladder(ex)
    if ex.final is None:
        res.reason = of_exchange(ex).value
        return
    res.status_code = ex.final.status
    res.rtt_s = ex.rtt_ms / 1000 if ex.rtt_ms is not None else None
    res.extra["server"] = server_of(ex.final)
    # Default: any answer below 500 means the server is up and handling SIP; 5xx/6xx mean
    # it is there but failing (Nagios users expect those CRITICAL, not OK).
    ok = (ex.final.status in sec.valid_status_codes if sec.valid_status_codes
          else ex.final.status < 500)
    res.success = ok
    res.reason = f"{ex.final.status} {ex.final.reason}"


_ATTEMPTS: set[asyncio.Task] = set()  # authenticated attempts running (kept referenced)


async def _lockout_safe(module: Module, target: str, res: ProbeResult, env: ProbeEnv,
                        attempt: Callable[[], Awaitable[None]]) -> None:
    """Run ``attempt`` (an authenticated one) only if the lockout allows it now; otherwise
    report the last result, marked cached. Parallel callers share the attempt in flight."""
    sec = module.section
    key = f"{env.name}|{target}"
    lockout = env.lockout
    try:
        held = lockout.claim(key, sec.min_interval)
        while held is not None and held.in_flight is not None:  # share the attempt in flight
            while not held.in_flight.is_set():
                await asyncio.sleep(0.02)
            held = lockout.claim(key, sec.min_interval)
    except LockoutStateError as exc:
        res.reason = f"{exc}; no authenticated attempt without it"
        return
    if held is not None:  # lockout-safe: no authenticated attempt now
        for k, v in held.last.items():
            if k in _FIELDS:
                setattr(res, k, v)
        res.backoff_s = round(held.wait, 3)
        res.reason = f"{held.last.get('reason', '')} (cached: next attempt in {held.wait:.0f} s)"
        env.note(res.reason)
        return

    async def guarded() -> None:
        try:
            await attempt()
            snapshot = {k: v for k, v in res.as_dict().items()
                        if k not in ("target", "module", "duration_s", "extra")}
            lockout.record(key, sec.min_interval, res.success, res.status_code, snapshot)
        except LockoutStateError as exc:
            res.reason += f" ({exc})"
        finally:
            lockout.release(key)

    # Shielded: a scrape Prometheus gave up on (or a budget that ran out) must not cut an
    # authenticated attempt short; it finishes, removes its binding and records its answer.
    task = asyncio.ensure_future(guarded())
    _ATTEMPTS.add(task)
    task.add_done_callback(_ATTEMPTS.discard)
    await asyncio.shield(task)


async def probe_register(module: Module, target: str, res: ProbeResult, env: ProbeEnv) -> None:
    from ..checks import register
    from ..checks.base import Target

    sec = module.section
    host, port = split_target(target, sec.transport)
    if sec.password() is None:
        res.reason = "no password: set password_env or password_file in the module"
        return

    async def attempt() -> None:
        ip = await _resolve(module, host, port, res)
        if ip is None:
            return
        ctx = _context(module, host, port)
        result = await register.attempt(ctx, Target(host=host, ip=ip, port=port,
                                                    transport=sec.transport))
        d = result.details
        res.success = result.status in ("pass", "warn")
        res.status_code = d.get("final_status") or d.get("unauthenticated_status")
        res.register_expires_s = d.get("granted_expires")
        res.reason = result.summary
        res.extra["authenticated_attempts"] = d.get("authenticated_attempts")
        env.note(f"register: {result.status}: {result.summary}")

    await _lockout_safe(module, target, res, env, attempt)


async def probe_tls(module: Module, target: str, res: ProbeResult, env: ProbeEnv) -> None:
    from ..checks import tls
    from ..checks.base import Target

    sec = module.section
    host, port = split_target(target, "tls")
    ip = await _resolve(module, host, port, res)
    if ip is None:
        return
    ctx = _context(module, host, port)
    t = Target(host=host, ip=ip, port=port, transport="tls")
    facts = await tls.handshake(ctx, t, verify=not sec.insecure)
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


async def probe_dns(module: Module, target: str, res: ProbeResult, env: ProbeEnv) -> None:
    host, port = split_target(target, module.transport)
    ip = await _resolve(module, host, port, res)
    if ip is not None:
        res.success = True
        res.reason = f"{host} → {ip}"


_CALL_SLOTS: dict[tuple, asyncio.Semaphore] = {}


def _call_slots(limit: int) -> asyncio.Semaphore:
    """Test calls at once in this process (its event loop), all call modules together."""
    key = (id(asyncio.get_running_loop()), limit)
    if key not in _CALL_SLOTS:
        _CALL_SLOTS.clear() if len(_CALL_SLOTS) > 16 else None
        _CALL_SLOTS[key] = asyncio.Semaphore(limit)
    return _CALL_SLOTS[key]


async def probe_call(module: Module, target: str, res: ProbeResult, env: ProbeEnv) -> None:
    """A synthetic test call (``media.call.run_call``: pjsua2 in a worker process): success
    means answered with two-way audio, MOS and loss within the module's limits."""
    from pydantic import ValidationError

    from ..media.call import run_call
    from ..media.model import CallParams, Thresholds

    sec = module.section
    host, port = split_target(target, sec.transport)
    hp = hostport(host, port)
    try:
        params = CallParams(
            target=sec.uri.replace("{target}", hp), transport=sec.transport,
            from_uri=(sec.from_uri or (f"sip:{sec.username}@{uri_host(host)}" if sec.username
                                       else "")).replace("{target}", hp) or None,
            local_ip=sec.local_ip, registrar=(sec.registrar or "").replace("{target}", hp) or None,
            username=sec.username, password=sec.password(),
            proxy=(sec.proxy or "").replace("{target}", hp) or None,
            verify_tls=not sec.insecure, ca_file=str(sec.ca_file) if sec.ca_file else None,
            seconds=sec.media, setup_timeout=sec.setup_timeout, codecs=sec.codecs,
            thresholds=Thresholds(min_mos=sec.min_mos, max_loss_pct=sec.max_loss_pct))
    except ValidationError as exc:
        res.reason = "bad call settings: " + "; ".join(
            f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        return
    if (sec.registrar or sec.username) and params.password is None:
        res.reason = "no password: set password_env or password_file in the module"
        return

    async def attempt() -> None:
        async with _call_slots(env.config.max_parallel_calls if env.config else 2):
            r = await run_call(params)
        res.status_code = r.code
        res.setup_s = round(r.answer_ms / 1000, 3) if r.answer_ms is not None else None
        res.mos = r.mos
        if r.status == "answered":
            res.loss_ratio = (r.rx.loss_pct / 100 if r.rx.loss_pct is not None else None)
            res.tx_loss_ratio = (r.tx.loss_pct / 100 if r.tx.loss_pct is not None
                                 and r.rtcp_reports else None)
            res.one_way_audio = "one_way_audio" in r.verdicts
        bad = [v for v in r.verdicts if v != "bye_unanswered"]
        res.success = r.status == "answered" and not bad
        if r.status != "answered":
            res.reason = f"call {r.status}: " + (r.error or f"{r.code or ''} {r.reason or ''}"
                                                 ).strip()
        elif bad:
            missing = {"rx": "nothing comes back", "tx": "we sent nothing"}
            res.reason = ", ".join(bad) + (f" ({missing[r.one_way_missing]})"
                                           if r.one_way_missing else "")
        else:
            res.reason = f"answered, MOS {r.mos}"
        res.extra["verdicts"] = r.verdicts
        for m in r.sip:
            env.note(f"{m.direction} {m.transport} {m.data.splitlines()[0] if m.data else ''}")

    await _lockout_safe(module, target, res, env, attempt)


@dataclass(frozen=True)
class Prober:
    """One prober kind: its function and the metrics it exports beyond the common ones
    (``sip_probe_success``, ``sip_probe_duration_seconds``): (name, help, result field)."""

    run: Callable[[Module, str, ProbeResult, ProbeEnv], Awaitable[None]]
    metrics: tuple[tuple[str, str, str], ...] = ()


_SIP = (("sip_probe_status_code", "Final SIP status code of the probe's request", "status_code"),
        ("sip_probe_dns_lookup_seconds", "Time spent resolving the target", "dns_lookup_s"))


def _backoff(kind: str) -> tuple[tuple[str, str, str], ...]:
    return ((f"sip_probe_{kind}_backoff_seconds", ("Seconds until the next attempt is allowed "
             "(lockout safety; the answer is the last one, cached)"), "backoff_s"),)


PROBERS: dict[str, Prober] = {
    "options": Prober(probe_options, _SIP + (
        ("sip_probe_rtt_seconds", "Request to first response", "rtt_s"),)),
    "register": Prober(probe_register, _SIP + _backoff("register") + (
        ("sip_probe_register_expires_seconds", "Registration lifetime the registrar granted",
         "register_expires_s"),)),
    "tls": Prober(probe_tls, (
        ("sip_probe_dns_lookup_seconds", "Time spent resolving the target", "dns_lookup_s"),
        ("sip_probe_tls_cert_not_after", "Certificate expiry, Unix time", "tls_not_after"),
        ("sip_probe_tls_cert_days_left", "Days until the certificate expires",
         "tls_days_left"))),
    "dns": Prober(probe_dns, (
        ("sip_probe_dns_lookup_seconds", "Time spent resolving the target", "dns_lookup_s"),)),
    "call": Prober(probe_call, _SIP + _backoff("call") + (
        ("sip_probe_call_setup_seconds", "INVITE to answer", "setup_s"),
        ("sip_probe_call_mos", "E-model MOS of the audio we received", "mos"),
        ("sip_probe_call_loss_ratio", "RTP loss of what we received (0-1)", "loss_ratio"),
        ("sip_probe_call_tx_loss_ratio", ("RTP loss of what we sent, from the far end's RTCP "
         "(0-1)"), "tx_loss_ratio"),
        ("sip_probe_call_one_way_audio", "1 if audio flowed one way only", "one_way_audio"))),
}


async def run_probe(module_name: str, module: Module, target: str,
                    timeout: float | None = None, *, config: ProbeConfig | None = None,
                    env: ProbeEnv | None = None) -> ProbeResult:
    """Never raises (except CancelledError): every failure is a result with success False and
    a reason."""
    res = ProbeResult(target=target, module=module_name)
    env = env or ProbeEnv(module_name, config)
    env.res = res
    t0 = time.monotonic()
    budget = timeout or (module.timeout * 4 + 2)
    if module.prober == "call":
        budget = max(budget, module.section.setup_timeout + module.section.media + 10)
    try:
        await asyncio.wait_for(PROBERS[module.prober].run(module, target, res, env), budget)
    except TimeoutError:
        res.success, res.reason = False, f"timeout after {budget:.1f} s"
    except ValueError as exc:
        res.success, res.reason = False, f"bad target: {exc}"
    except Exception as exc:  # noqa: BLE001 - a sipkit bug must not take the exporter down
        res.success, res.reason = False, f"probe error: {type(exc).__name__}: {exc}"
    res.duration_s = round(time.monotonic() - t0, 6)
    return res
