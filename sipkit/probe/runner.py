"""`sipkit probe run`: many targets, bounded concurrency, paced sends, memory bounded.

Targets are pulled from an iterator (``targets.TargetReader`` streams the file) only when a
probe can start, results go to a sink as they finish, and the summary keeps a histogram, not
the durations: memory is bounded by the concurrency, not by the target count.

UDP OPTIONS run on the fleet's shared socket without a task or future per probe: a pump,
called after every batch of answers and timer ticks, starts what the window, the global rate
and the per-target rate allow. Other probers run as tasks through ``probers.run_probe``.
Two token buckets pace the sends: a global one, and one per target — servers drop bursts
from one source (per-source limits of ~20-200 packets/s are common).
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import math
import time
from collections.abc import Callable, Iterable

from ..errors import SipkitError
from ..net.addresses import parse_ip
from ..pbx.pacing import RECOMMENDED_PER_TARGET_RATE
from .config import Module, ProbeConfig, split_target
from .fleet import UdpFleet

Sink = Callable[[dict, dict], None]  # (result, labels)
_STEP = math.log(1.02)  # histogram buckets 2 % apart: percentiles to 2 %
_T2 = 4.0  # RFC 3261 T2
_LOCATE_CACHE = 65536
_now = time.monotonic


class RateLimiter:
    """Token bucket: ``rate`` per second, bursts up to ``burst``."""

    def __init__(self, rate: float, burst: float | None = None):
        self.rate = rate
        self.capacity = burst if burst is not None else max(1.0, rate / 10)
        self.tokens = self.capacity
        self.stamp = time.monotonic()

    def available(self) -> int:
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        return int(self.tokens)

    def take(self, n: int = 1) -> None:
        self.tokens -= n

    def wait(self) -> float:
        """Seconds until one token is there."""
        return max(0.0, (1 - self.tokens) / self.rate)

    async def acquire(self) -> None:
        while self.available() < 1:
            await asyncio.sleep(self.wait())
        self.take()


class Summary:
    def __init__(self) -> None:
        self.ok = self.failed = self.skipped = 0
        self.buckets: dict[int, int] = {}  # log-spaced duration histogram
        self.total = 0.0
        self.reasons: dict[str, int] = {}
        self.started = time.monotonic()

    def add(self, success: bool, duration: float, reason: str) -> None:
        if success:
            self.ok += 1
        else:
            self.failed += 1
            key = reason.split(":")[0][:40]
            if key in self.reasons or len(self.reasons) < 200:
                self.reasons[key] = self.reasons.get(key, 0) + 1
            else:
                self.reasons["(other)"] = self.reasons.get("(other)", 0) + 1
        self.total += duration
        b = int(math.log(duration * 1e6 + 1) / _STEP)
        self.buckets[b] = self.buckets.get(b, 0) + 1

    def state(self) -> dict:
        """What ``merge`` needs (a helper process sends it to the parent)."""
        return {"ok": self.ok, "failed": self.failed, "skipped": self.skipped,
                "buckets": {str(b): n for b, n in self.buckets.items()}, "total": self.total,
                "reasons": self.reasons}

    def merge(self, other: dict) -> None:
        self.ok += other["ok"]
        self.failed += other["failed"]
        self.skipped += other["skipped"]
        self.total += other["total"]
        for b, n in other["buckets"].items():
            self.buckets[int(b)] = self.buckets.get(int(b), 0) + n
        for k, n in other["reasons"].items():
            self.reasons[k] = self.reasons.get(k, 0) + n

    def percentile(self, p: float) -> float | None:
        n = self.ok + self.failed
        if not n:
            return None
        rank, seen = p * n, 0
        for b in sorted(self.buckets):
            seen += self.buckets[b]
            if seen >= rank:
                return round((math.exp((b + 0.5) * _STEP) - 1) / 1000, 2)  # ms, bucket middle
        return None

    def as_dict(self) -> dict:
        n = self.ok + self.failed
        elapsed = time.monotonic() - self.started
        return {"probes": n, "success": self.ok, "failure": self.failed,
                "skipped_deadline": self.skipped, "seconds": round(elapsed, 3),
                "probes_per_second": round(n / elapsed, 1) if elapsed else 0,
                "p50_ms": self.percentile(0.5), "p99_ms": self.percentile(0.99),
                "mean_ms": round(self.total / n * 1000, 2) if n else None,
                "failure_reasons": dict(sorted(self.reasons.items(), key=lambda kv: -kv[1]))}


class FleetPath:
    """UDP OPTIONS through shared sockets (one per source address); IP targets parsed once
    per distinct line (a bounded cache), names resolved through ``net.resolver``."""

    def __init__(self) -> None:
        self.fleets: dict[str, UdpFleet] = {}
        self.where: dict[str, tuple[str, int] | str] = {}  # target -> (ip, port) | error
        self._after = None

    def locate_now(self, target: str) -> tuple[str, int] | str | None:
        """(ip, port), an error, or None when a name must be resolved first."""
        hit = self.where.get(target)
        if hit is not None:
            return hit
        try:
            host, port = split_target(target, "udp")
        except ValueError as exc:
            hit = f"bad target: {exc}"
        else:
            if not parse_ip(host):
                return None
            hit = (host.strip("[]"), port)
        if len(self.where) >= _LOCATE_CACHE:
            self.where.clear()
        self.where[target] = hit
        return hit

    async def locate(self, target: str, module: Module) -> tuple[str, int] | str:
        hit = self.locate_now(target)
        if hit is not None:
            return hit
        from ..net.resolver import resolve_sip

        host, port = split_target(target, "udp")
        sec = module.section
        r = await resolve_sip(host, transport="udp", port=port, explicit_port=True,
                              nameserver=sec.nameserver, timeout=module.timeout)
        hit = (r.addresses[0], port) if r.addresses else "dns: no address"
        if len(self.where) >= _LOCATE_CACHE:
            self.where.clear()
        self.where[target] = hit
        return hit

    async def fleet(self, local: str) -> UdpFleet:
        fleet = self.fleets.get(local)
        if fleet is None:
            fleet = self.fleets[local] = await UdpFleet(local).start()
            fleet.after = self._after
        return fleet

    def fleet_now(self, local: str) -> UdpFleet | None:
        return self.fleets.get(local)

    def set_after(self, fn) -> None:
        self._after = fn
        for fleet in self.fleets.values():
            fleet.after = fn

    async def probe(self, name: str, module: Module, target: str) -> dict:
        """One UDP OPTIONS probe as a result dict (the exporter's and Nagios' way in)."""
        t0 = time.monotonic()
        try:
            where = await self.locate(target, module)
        except ValueError as exc:
            where = f"bad target: {exc}"
        if isinstance(where, str):
            from .probers import result_dict

            return result_dict(target, name, False, time.monotonic() - t0, where)
        ip, port = where
        sec = module.section
        fleet = await self.fleet(sec.source_ip or ("::" if ":" in ip else "0.0.0.0"))
        resp, rtt = await fleet.options(ip, port, module.timeout, sec.t1, max(_T2, sec.t1))
        return fast_result(target, name, module, resp if not isinstance(resp, str) else None,
                           resp if isinstance(resp, str) else ("timeout" if resp is None
                                                               else None),
                           rtt, time.monotonic() - t0)

    def close(self) -> None:
        for fleet in self.fleets.values():
            fleet.close()
        self.fleets.clear()


def fast_result(target: str, name: str, module: Module, resp, error, rtt,
                duration: float) -> dict:
    if error is not None or resp is None:
        return {"target": target, "module": name, "success": False,
                "duration_s": round(duration, 6), "reason": error or "timeout"}
    status, reason = resp
    codes = module.section.valid_status_codes
    # Default: any answer below 500 means the server is up and handling SIP; 5xx/6xx mean
    # it is there but failing (Nagios users expect those CRITICAL, not OK).
    return {"target": target, "module": name,
            "success": status in codes if codes else status < 500,
            "duration_s": round(duration, 6), "reason": f"{status} {reason}",
            "status_code": status, "rtt_s": round(rtt, 6)}


class _Run:
    def __init__(self, config: ProbeConfig, targets: Iterable, sink: Sink | None, *,
                 concurrency: int, rate: float, per_target_rate: float,
                 deadline: float | None, fast: FleetPath) -> None:
        self.config, self.sink, self.fast = config, sink, fast
        self.it = iter(targets)
        self.window = max(1, concurrency)
        self.bucket = RateLimiter(rate, burst=max(1.0, min(rate / 10, self.window)))
        # per-target pacing below 10 µs between probes means nothing: skip its bookkeeping
        self.gap = 1.0 / per_target_rate if per_target_rate < 1e5 else 0.0
        self.next_at: dict[str, float] = {}  # target -> earliest next send (pruned)
        self.held: list = []  # heap of (due, seq, item) waiting for their per-target slot
        self.seq = itertools.count()
        self.end = time.monotonic() + deadline if deadline else None
        self.summary = Summary()
        self.inflight = 0
        self.exhausted = False
        self.error: BaseException | None = None
        self.loop = asyncio.get_running_loop()
        self.done = self.loop.create_future()
        self.wake: asyncio.TimerHandle | None = None
        self.busy = False
        self.tasks: set[asyncio.Task] = set()
        self.pool = None  # TCP/TLS OPTIONS: one kept connection per target (probers.ConnPool)

    # -------------------------------------------------------------- completion
    def finished(self, item, resp, error, rtt) -> None:
        """The fleet's callback for one probe."""
        target, name, labels, codes, t0 = item
        self.inflight -= 1
        if resp is None:
            reason = error or "timeout"
            duration = _now() - t0
            res = {"target": target, "module": name, "success": False,
                   "duration_s": round(duration, 6), "reason": reason}
            self.summary.add(False, duration, reason)
        else:
            status, reason = resp
            ok = status in codes if codes else status < 500  # as fast_result
            reason = f"{status} {reason}"
            # sent at t0 (the fleet's clock is the pump's): the probe's duration is its RTT
            duration = round(rtt, 6)
            res = {"target": target, "module": name, "success": ok, "duration_s": duration,
                   "reason": reason, "status_code": status, "rtt_s": duration}
            self.summary.add(ok, rtt, reason)
        if self.sink is not None:
            self.sink(res, labels)

    async def slow(self, target: str, name: str, labels: dict, module: Module) -> None:
        try:
            budget = module.timeout * 4 + 2
            if self.end is not None:
                budget = max(0.1, min(budget, self.end - time.monotonic()))
            if module.fast_udp:
                res = await self.fast.probe(name, module, target)
            else:
                from .probers import ConnPool, ProbeEnv, run_probe  # not for UDP fleets

                if self.pool is None:
                    self.pool = ConnPool()
                env = ProbeEnv(name, self.config, pool=self.pool)
                res = (await run_probe(name, module, target, timeout=budget,
                                       env=env)).as_dict()
            self.summary.add(res["success"], res["duration_s"], res["reason"])
            if self.sink is not None:
                self.sink(res, labels)
        finally:
            self.inflight -= 1
            self.pump()

    # -------------------------------------------------------------- starting probes
    def _next(self, now: float):
        """The next item that may start now, or None (held items first, when due)."""
        held = self.held
        if held and held[0][0] <= now:
            return heapq.heappop(held)[2]
        if self.exhausted or len(held) >= self.window:
            return None
        while True:
            try:
                item = next(self.it)
            except StopIteration:
                self.exhausted = True
                return None
            except (SipkitError, OSError) as exc:  # a bad line: finish what runs, report it
                self.error = exc
                self.exhausted = True
                return None
            if not self.gap:
                return item
            target = item[0]
            if len(self.next_at) > 4 * self.window + 10000:  # forget targets long ago sent
                self.next_at = {k: v for k, v in self.next_at.items() if v > now}
            at = self.next_at.get(target, 0.0)
            if at <= now:
                self.next_at[target] = now + self.gap
                return item
            self.next_at[target] = at + self.gap
            heapq.heappush(held, (at, next(self.seq), item))
            if len(held) >= self.window:
                return None

    def pump(self) -> None:
        if self.busy or self.done.done():
            return
        self.busy = True
        try:
            self._pump()
        finally:
            self.busy = False

    def _pump(self) -> None:
        now = time.monotonic()
        if self.end is not None and now >= self.end and not self.exhausted:
            for _ in self.it:  # past the deadline: count what is left, start nothing
                self.summary.skipped += 1
            self.summary.skipped += len(self.held)
            self.held.clear()
            self.exhausted = True
        room = self.window - self.inflight
        if room > 0 and not (self.exhausted and not self.held):
            room = min(room, self.bucket.available())
            started = 0
            modules = self.config.modules
            plans = self.plans
            fast = self.fast
            while started < room:
                item = self._next(now)
                if item is None:
                    break
                target, name, labels = item
                started += 1
                self.inflight += 1
                plan = plans[name]
                if plan is not None:
                    where = fast.where.get(target) or fast.locate_now(target)
                    if where is not None and where.__class__ is tuple:
                        fleet = plan[3] if ":" not in where[0] else fast.fleet_now(plan[4])
                        if fleet is not None:
                            fleet.send(where[0], where[1], plan[0], plan[1], plan[2],
                                       self.finished, (target, name, labels, plan[5], now), now)
                            continue
                module = modules[name]
                task = self.loop.create_task(self.slow(target, name, labels, module))
                self.tasks.add(task)
                task.add_done_callback(self.tasks.discard)
            self.bucket.take(started)
        if self.exhausted and not self.held and self.inflight == 0:
            if not self.done.done():
                self.done.set_result(None)
            return
        # wake up for what neither an answer nor a timer tick will start
        if self.wake is None and self.inflight < self.window:
            delay = self.bucket.wait() if self.bucket.tokens < 1 else 0.002
            if self.held:
                delay = max(delay, self.held[0][0] - now)
            self.wake = self.loop.call_later(max(0.001, delay), self._woken)

    def _woken(self) -> None:
        self.wake = None
        self.pump()

    async def run(self) -> Summary:
        self.fast.set_after(self.pump)
        # per fast module, once: (timeout, T1, T2, IPv4 fleet, IPv6 local address, codes)
        self.plans = {}
        for name, m in self.config.modules.items():
            if not m.fast_udp:
                self.plans[name] = None
                continue
            sec = m.section
            fleet = await self.fast.fleet(sec.source_ip or "0.0.0.0")
            if sec.source_ip and ":" in sec.source_ip:
                fleet = None  # an IPv6 source: its one fleet, found per target
            self.plans[name] = (m.timeout, sec.t1, max(_T2, sec.t1), fleet,
                                sec.source_ip or "::", sec.valid_status_codes)
        self.pump()
        try:
            await self.done
        finally:
            if self.wake is not None:
                self.wake.cancel()
            for task in list(self.tasks):
                task.cancel()
            if self.pool is not None:
                await self.pool.close()
        if self.error is not None:
            raise self.error
        return self.summary


async def run_targets(config: ProbeConfig, targets: Iterable, *, concurrency: int = 100,
                      rate: float = 1000.0,
                      per_target_rate: float = RECOMMENDED_PER_TARGET_RATE,
                      deadline: float | None = None, sink: Sink | None = None,
                      fast: FleetPath | None = None) -> Summary:
    """Probe every (target, module name, labels) of ``targets``; each result dict goes to
    ``sink(result, labels)`` as it finishes. Raises the targets reader's SettingsError after
    the probes started before the bad entry have finished."""
    own = fast is None
    fast = fast or FleetPath()
    try:
        return await _Run(config, targets, sink, concurrency=concurrency, rate=rate,
                          per_target_rate=per_target_rate, deadline=deadline, fast=fast).run()
    finally:
        if own:
            fast.close()
