"""`sipkit probe serve`: the blackbox_exporter pattern for SIP, on one event loop (aiohttp).

    GET /probe?module=NAME&target=HOST[:PORT][&debug=true]   this probe's metrics
    GET /metrics                                               the exporter's own metrics

Prometheus schedules; the scrape timeout (X-Prometheus-Scrape-Timeout-Seconds, minus
``SCRAPE_OFFSET``) bounds the probe, and a scrape Prometheus gives up on (it closes the
connection) cancels its probe — except an authenticated attempt, which finishes (and removes
its binding) unseen. UDP OPTIONS share the fleet's socket, TCP/TLS OPTIONS the kept
connections; the listen backlog is ``BACKLOG`` (a burst of scrapes must not wait for SYN
retries). ``debug=true`` answers with the probe's log and SIP ladder, then the metrics.
"""

from __future__ import annotations

import asyncio
import math
import time

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from .config import ProbeConfig, split_target
from .metrics import CONTENT_TYPE, render
from .probers import ConnPool, ProbeEnv, ProbeResult, run_probe
from .runner import FleetPath

SCRAPE_OFFSET = 0.5  # leave Prometheus time to receive the answer
BACKLOG = 4096  # the kernel caps it at net.core.somaxconn
MAX_QUERY = 4096  # bytes of query string
TEXT = "text/plain; charset=utf-8"


class Exporter:
    def __init__(self, config: ProbeConfig, default_timeout: float = 10.0):
        self.config = config
        self.default_timeout = default_timeout
        self.registry = CollectorRegistry()
        self.probes = Counter("sipkit_probes", "Probes run", ["module", "result"],
                              registry=self.registry)
        self.duration = Histogram("sipkit_probe_duration_seconds", "Probe durations",
                                  ["module"], registry=self.registry,
                                  buckets=(0.005, 0.01, 0.05, 0.1, 0.5, 1, 2, 5, 10))
        self.fast = FleetPath()
        self.pool = ConnPool()

    def budget(self, header: str | None) -> float:
        """Seconds the probe may take: the scrape timeout minus the offset, if sent."""
        try:
            value = float(header) if header else math.nan
        except ValueError:
            value = math.nan
        if not math.isfinite(value) or value <= 0:
            return self.default_timeout
        return max(0.2, min(value - SCRAPE_OFFSET, 600.0))

    async def probe(self, name: str, target: str, budget: float, debug: bool) -> ProbeResult:
        module = self.config.modules[name]
        if module.fast_udp and not debug:
            t0 = time.monotonic()
            try:
                d = await asyncio.wait_for(self.fast.probe(name, module, target), budget)
            except TimeoutError:
                d = {"success": False, "reason": f"timeout after {budget:.1f} s",
                     "duration_s": round(time.monotonic() - t0, 6)}
            res = ProbeResult(target=target, module=name)
            for k in ("success", "duration_s", "reason", "status_code", "rtt_s"):
                if k in d:
                    setattr(res, k, d[k])
            return res
        env = ProbeEnv(name, self.config, pool=self.pool, debug=debug)
        return await run_probe(name, module, target, timeout=budget, env=env)

    async def handle_probe(self, request: web.Request) -> web.Response:
        if len(request.query_string) > MAX_QUERY:
            return web.Response(status=414, text="query string too long\n")
        q = request.query
        problems = [f"{k} given {len(q.getall(k))} times" for k in ("module", "target", "debug")
                    if len(q.getall(k, [])) > 1]
        if problems:
            return web.Response(status=400, text="; ".join(problems) + "\n")
        name, target = q.get("module", ""), q.get("target", "").strip()
        if not target:
            return web.Response(status=400, text="target parameter is missing\n")
        module = self.config.modules.get(name)
        if module is None:
            known = ", ".join(self.config.modules)
            return web.Response(status=400, text=f"unknown module {name!r}; known: {known}\n")
        try:
            split_target(target, module.transport)
        except ValueError as exc:
            return web.Response(status=400, text=f"bad target: {exc}\n")
        debug = q.get("debug", "").lower() in ("true", "1", "yes")
        budget = self.budget(request.headers.get("X-Prometheus-Scrape-Timeout-Seconds"))
        res = await self.probe(name, target, budget, debug)
        self.probes.labels(name, "success" if res.success else "failure").inc()
        self.duration.labels(name).observe(res.duration_s)
        body = render(res, module.prober)
        if debug:
            log = "\n".join(res.log) or "(nothing logged)"
            text = (f"Logs for the probe:\nmodule={name} target={target} budget={budget:.1f}s\n"
                    f"{log}\nresult: {'success' if res.success else 'failure'}: {res.reason}\n\n"
                    f"Metrics that would have been returned:\n{body.decode()}")
            return web.Response(text=text, content_type="text/plain", charset="utf-8")
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})

    async def handle_metrics(self, _request: web.Request) -> web.Response:
        return web.Response(body=generate_latest(self.registry),
                            headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def handle_root(self, request: web.Request) -> web.Response:
        status = 200 if request.path == "/" else 404
        return web.Response(status=status, content_type="text/plain", text=(
            "sipkit exporter: /probe?module=NAME&target=HOST[:PORT][&debug=true], /metrics\n"))

    def app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024)
        app.router.add_get("/probe", self.handle_probe)
        app.router.add_get("/metrics", self.handle_metrics)
        app.router.add_route("*", "/{tail:.*}", self.handle_root)
        app.on_cleanup.append(self._cleanup)
        return app

    async def _cleanup(self, _app) -> None:
        self.fast.close()
        await self.pool.close()


async def start(exporter: Exporter, host: str, port: int) -> tuple[web.AppRunner, int]:
    """Serve on host:port (0: any free port); returns the runner and the bound port."""
    runner = web.AppRunner(exporter.app(), access_log=None, handler_cancellation=True,
                           shutdown_timeout=2.0)
    await runner.setup()
    site = web.TCPSite(runner, host, port, backlog=BACKLOG, reuse_address=True)
    await site.start()
    bound = runner.addresses[0][1] if runner.addresses else port
    return runner, bound


async def serve(exporter: Exporter, host: str, port: int, ready=None) -> None:
    """Serve until cancelled (SIGINT/SIGTERM in the CLI)."""
    import gc

    runner, bound = await start(exporter, host, port)
    # What is loaded now lives as long as the process: out of the collector's way, and
    # collections rarer (a full one over the import graph was the scrapes' p99).
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)
    if ready is not None:
        ready(bound)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()
