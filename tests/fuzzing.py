"""Running sipkit's register check against one hostile registrar, in-process: the shared
core of the CI fuzz test (tests/integration/test_hostile_fuzz.py) and `make fuzz`."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from sipkit.checks import register
from sipkit.checks.base import CheckContext, RunOptions, Target
from sipkit.report import CheckResult, Report
from sipkit.settings import Site
from tests.hostile import HostileRegistrar

PASSWORD = "Hostile-pw-" + secrets.token_hex(6)
# Generous for loopback, even on a loaded machine: a registrar that answers must be heard.
OPTIONS = RunOptions(timeout=1.5, t1=0.05)


def figures(name: str, **numbers) -> None:
    """`make fuzz` collects these lines (SIPKIT_FUZZ_FIGURES=file) for docs/reliability.md."""
    path = os.environ.get("SIPKIT_FUZZ_FIGURES")
    if path:
        with open(path, "a") as fh:
            fh.write(json.dumps({"run": name, **numbers}) + "\n")


def site_data(ip: str, port: int) -> dict:
    return {"agent_uuid": "3c90c3cc-0d44-4b50-8888-8dd25736052a",
            "phone_number": "+12084439178", "registrar_server": ip,
            "username_extension": "100", "pbx_password": PASSWORD, "allowed_ip": ip,
            "setup_mode": "both", "connection_type": "udp", "port": port,
            "normalizer": {"default_prefix": "0", "condition_length": "10",
                           "condition_prefix": "5"},
            "check": {"allow_private_registrar": True, "connector_server": "auto"}}


@dataclass
class Outcome:
    seed: int
    transport: str
    result: CheckResult
    violations: list[str] = field(default_factory=list)
    messages: int = 0

    @property
    def problems(self) -> list[str]:
        out = list(self.violations)
        if self.result.status == "error":
            out.append(f"register in error: {self.result.summary}")
        return out


def leaks(texts: list[str | bytes], secret_values: set[str]) -> list[str]:
    """The secrets (case-insensitive) found in any of ``texts``."""
    found = []
    for text in texts:
        low = (text.decode("latin-1") if isinstance(text, bytes) else text).lower()
        found += [s for s in secret_values if len(s) >= 8 and s.lower() in low]
    return sorted(set(found))


async def run_seed(seed: int, transport: str, ip: str, pcap_dir: Path | None = None,
                   **plan) -> Outcome:
    from sipkit.pcap import PcapRecorder
    from sipkit.render.human import render as human
    from sipkit.render.json import render as as_json

    with HostileRegistrar(seed, ip, transport, **plan) as peer:
        site = Site.model_validate(site_data(ip, peer.address[1]))
        recorder = PcapRecorder() if pcap_dir is not None else None
        ctx = CheckContext.for_site(site, OPTIONS, recorder=recorder)
        target = Target(host=ip, ip=ip, port=peer.address[1], transport=transport)
        ctx.facts.answering = [target]
        try:
            result = await asyncio.wait_for(register.run(ctx), 60)
        except Exception as exc:  # what the runner would turn into status "error"
            result = CheckResult(id="register", status="error",
                                 summary=f"{type(exc).__name__}: {exc}",
                                 details={"traceback": traceback.format_exc()})
    out = Outcome(seed, transport, result.model_copy(update={"id": "register"}),
                  peer.books.violations(), peer.books.requests + peer.books.responses)
    report = Report(checks=[out.result]).finish(1.0)
    texts: list[str | bytes] = [as_json(report, ctx.redactor),
                                human(report, ctx.redactor, verbose=2, color=False)]
    if recorder is not None:
        path = pcap_dir / f"{transport}-{seed}.pcap"
        recorder.write(path, ctx.redactor.secrets)
        texts.append(path.read_bytes())
        path.unlink()
    leaked = leaks(texts, {PASSWORD} | peer.books.digest_values)
    if leaked:
        out.violations.append(f"secret in the output: {leaked[0][:12]}…")
    return out


async def run_seeds(seeds, transports=("udp", "tcp"), ip: str = "127.0.0.1",
                    pcap_dir: Path | None = None, parallel: int = 8) -> list[Outcome]:
    gate = asyncio.Semaphore(parallel)

    async def one(seed: int, transport: str) -> Outcome:
        async with gate:
            return await run_seed(seed, transport, ip, pcap_dir)

    return await asyncio.gather(*(one(s, t) for s in seeds for t in transports))
