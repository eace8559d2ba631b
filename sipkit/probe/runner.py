"""`sipkit probe run`: many targets, bounded concurrency, paced sends.

Workers pull targets from an iterator, so memory stays bounded by the concurrency, not the
target count. Two token buckets pace the sends: a global one, and one per target — servers
drop bursts from one source (per-source limits of ~20-200 packets/s are common).
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Callable, Iterable

from ..net.addresses import parse_ip
from .config import Module, ProbeConfig, Target, split_target
from .fleet import UdpFleet
from .probers import ProbeResult, run_probe


class RateLimiter:
    """Token bucket: ``rate`` per second, bursts up to ``burst``."""

    def __init__(self, rate: float, burst: float | None = None):
        self.rate = rate
        self.capacity = burst if burst is not None else max(1.0, rate / 10)
        self.tokens = self.capacity
        self.stamp = time.monotonic()

    async def acquire(self) -> None:
        # No lock: between the refill and the take there is no await, so on one event loop
        # it is atomic.
        while True:
            now = time.monotonic()
            self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
            self.stamp = now
            if self.tokens >= 1:
                self.tokens -= 1
                return
            await asyncio.sleep((1 - self.tokens) / self.rate)


class Summary:
    def __init__(self) -> None:
        self.ok = self.failed = self.skipped = 0
        self.durations: list[float] = []
        self.reasons: dict[str, int] = {}
        self.started = time.monotonic()

    def add(self, res: ProbeResult) -> None:
        if res.success:
            self.ok += 1
        else:
            self.failed += 1
            key = res.reason.split(":")[0][:40]
            self.reasons[key] = self.reasons.get(key, 0) + 1
        self.durations.append(res.duration_s)

    def as_dict(self) -> dict:
        d = sorted(self.durations)
        pct = (lambda p: round(d[min(len(d) - 1, int(p * len(d)))] * 1000, 2)) if d else \
            (lambda p: None)
        elapsed = time.monotonic() - self.started
        return {"probes": self.ok + self.failed, "success": self.ok, "failure": self.failed,
                "skipped_deadline": self.skipped, "seconds": round(elapsed, 3),
                "probes_per_second": round((self.ok + self.failed) / elapsed, 1) if elapsed else 0,
                "p50_ms": pct(0.5), "p99_ms": pct(0.99),
                "mean_ms": round(statistics.mean(d) * 1000, 2) if d else None,
                "failure_reasons": dict(sorted(self.reasons.items(), key=lambda kv: -kv[1]))}


class _FleetPath:
    """UDP OPTIONS through shared sockets (one per source address), names resolved once."""

    def __init__(self) -> None:
        self.fleets: dict[str, UdpFleet] = {}
        self.where: dict[str, tuple[str | None, int] | str] = {}  # target -> (ip, port) | error

    async def _locate(self, target: str, module: Module) -> tuple[str | None, int] | str:
        hit = self.where.get(target)
        if hit is not None:
            return hit
        try:
            host, port = split_target(target, "udp")
        except ValueError as exc:
            hit = f"bad target: {exc}"
        else:
            ip = host.strip("[]") if parse_ip(host) else None
            if ip is None:
                from ..net.resolver import resolve_sip

                r = await resolve_sip(host, transport="udp", port=port, explicit_port=True,
                                      nameserver=module.nameserver, timeout=module.timeout)
                ip = r.addresses[0] if r.addresses else None
            hit = (ip, port) if ip else "dns: no address"
        self.where[target] = hit
        return hit

    async def probe(self, name: str, module: Module, target: str) -> ProbeResult:
        res = ProbeResult(target=target, module=name)
        t0 = time.monotonic()
        where = await self._locate(target, module)
        if isinstance(where, str):
            res.reason = where
        else:
            ip, port = where
            local = module.source_ip or ("::" if ":" in ip else "0.0.0.0")
            fleet = self.fleets.get(local)
            if fleet is None:
                fleet = self.fleets[local] = await UdpFleet(local).start()
            resp, rtt, _ = await fleet.options(ip, port, module.timeout, module.t1)
            if resp is None or isinstance(resp, str):
                res.reason = resp or "timeout"  # or the ICMP error: "refused", ...
            else:
                status, reason = resp
                res.status_code, res.rtt_s = status, rtt
                res.success = (status in module.valid_status_codes
                               if module.valid_status_codes else status < 500)
                res.reason = f"{status} {reason}"
        res.duration_s = round(time.monotonic() - t0, 6)
        return res

    def close(self) -> None:
        for fleet in self.fleets.values():
            fleet.close()


async def run_targets(config: ProbeConfig, targets: Iterable[Target], *, concurrency: int = 100,
                      rate: float = 1000.0, per_target_rate: float = 5.0,
                      deadline: float | None = None,
                      on_result: Callable[[ProbeResult, Target], None] | None = None) -> Summary:
    summary = Summary()
    global_bucket = RateLimiter(rate)
    per_target: dict[str, RateLimiter] = {}
    it = iter(targets)
    end = time.monotonic() + deadline if deadline else None

    async def worker() -> None:
        for t in it:
            if end is not None and time.monotonic() >= end:
                summary.skipped += 1
                continue
            await global_bucket.acquire()
            bucket = per_target.get(t.target)
            if bucket is None:
                bucket = per_target[t.target] = RateLimiter(per_target_rate, burst=1)
            await bucket.acquire()
            module = config.modules[t.module]
            budget = module.timeout * 4 + 2
            if end is not None:
                budget = max(0.1, min(budget, end - time.monotonic()))
            if module.prober == "options" and module.transport == "udp":
                res = await fast.probe(t.module, module, t.target)
            else:
                res = await run_probe(t.module, module, t.target, timeout=budget)
            summary.add(res)
            if on_result:
                on_result(res, t)

    fast = _FleetPath()
    try:
        await asyncio.gather(*(worker() for _ in range(max(1, concurrency))))
    finally:
        fast.close()
    return summary
