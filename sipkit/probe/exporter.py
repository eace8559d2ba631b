"""`sipkit probe serve`: the blackbox_exporter pattern for SIP.

    GET /probe?module=NAME&target=HOST[:PORT]   Prometheus text from a fresh registry
    GET /metrics                                 the exporter's own metrics
Prometheus schedules; the scrape timeout (X-Prometheus-Scrape-Timeout-Seconds) bounds the probe.
"""

from __future__ import annotations

import asyncio
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from .config import ProbeConfig
from .metrics import render
from .probers import run_probe

SCRAPE_OFFSET = 0.5  # leave Prometheus time to receive the answer


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


def make_handler(exporter: Exporter):
    class Handler(BaseHTTPRequestHandler):
        server_version = "sipkit-exporter"

        def log_message(self, fmt, *args):  # quiet: Prometheus scrapes a lot
            pass

        def _send(self, code: int, body: bytes, ctype: str = "text/plain; charset=utf-8"):
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):  # noqa: N802
            url = urlparse(self.path)
            if url.path == "/metrics":
                return self._send(200, generate_latest(exporter.registry), CONTENT_TYPE_LATEST)
            if url.path != "/probe":
                return self._send(200 if url.path == "/" else 404, (
                    b"sipkit exporter: /probe?module=NAME&target=HOST[:PORT], /metrics\n"))
            q = parse_qs(url.query)
            name, target = q.get("module", [""])[0], q.get("target", [""])[0]
            if not target:
                return self._send(400, b"target parameter is missing\n")
            module = exporter.config.modules.get(name)
            if module is None:
                known = ", ".join(exporter.config.modules)
                return self._send(400, f"unknown module {name!r}; known: {known}\n".encode())
            timeout = exporter.default_timeout
            header = self.headers.get("X-Prometheus-Scrape-Timeout-Seconds")
            try:
                if header:
                    timeout = max(0.5, float(header) - SCRAPE_OFFSET)
            except ValueError:
                pass
            res = asyncio.run(run_probe(name, module, target, timeout=timeout))
            exporter.probes.labels(name, "success" if res.success else "failure").inc()
            exporter.duration.labels(name).observe(res.duration_s)
            return self._send(200, render(res), CONTENT_TYPE_LATEST)

    return Handler


def make_server(exporter: Exporter, host: str, port: int) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer((host, port), make_handler(exporter))
    server.daemon_threads = True
    return server
