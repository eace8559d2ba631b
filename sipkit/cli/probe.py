"""`sipkit probe serve|run`: fleet health probes (Prometheus exporter, JSON lines, Nagios)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click

_config = click.option("-c", "--config", "config_path", required=True,
                       type=click.Path(dir_okay=False, path_type=Path),
                       help="probes.yaml: the modules (see probes/probes.yaml).")

NAGIOS = {0: "OK", 1: "WARNING", 2: "CRITICAL", 3: "UNKNOWN"}


class DurationType(click.ParamType):
    """Seconds, written as in probes.yaml: 90, 1.5, 500ms, 5s, 1m30s (at least ``low``)."""

    name = "duration"

    def __init__(self, low: float = 0.1):
        self.low = low

    def convert(self, value, param, ctx):
        if isinstance(value, float):
            return value
        from ..probe.config import parse_duration

        try:
            seconds = parse_duration(value)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)
        if seconds < self.low:
            self.fail(f"{value!r} is under {self.low} s", param, ctx)
        return seconds


@click.group()
def probe() -> None:
    """Periodic SIP health probes for many PBX endpoints."""


@probe.command()
@_config
@click.option("--listen", default="127.0.0.1:9116", show_default=True, metavar="IP:PORT")
@click.option("--timeout", type=DurationType(), default="10s", show_default=True,
              help="Probe budget when Prometheus sends no scrape timeout header.")
def serve(config_path, listen, timeout):
    """Prometheus exporter: GET /probe?module=NAME&target=HOST[:PORT] and /metrics."""
    import asyncio
    import signal

    from ..probe.config import load_config
    from ..probe.exporter import Exporter
    from ..probe.exporter import serve as serve_forever

    config = load_config(config_path)
    host, _, port = listen.rpartition(":")
    if not (port.isascii() and port.isdigit() and 0 <= int(port) < 65536 and host):
        raise click.BadParameter("must be IP:PORT", param_hint="--listen")

    def ready(bound: int) -> None:
        click.echo(f"sipkit exporter on http://{host}:{bound}/probe (modules: "
                   f"{', '.join(config.modules)})", err=True)

    async def main() -> None:
        task = asyncio.current_task()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, task.cancel)
        try:
            await serve_forever(Exporter(config, timeout), host.strip("[]"), int(port), ready)
        except asyncio.CancelledError:
            pass

    try:
        _run_loop(main())
    except OSError as exc:
        raise click.ClickException(f"cannot listen on {listen}: {exc.strerror}") from None


def _run_loop(coro):
    """asyncio.run on the standard loop. Not uvloop: libuv stops polling a socket that
    reports an error, and the fleet's socket reports every ICMP refusal (IP_RECVERR)."""
    import asyncio

    return asyncio.run(coro)


def _nagios(config, module_name: str, target: str) -> int:
    import asyncio

    from ..probe.probers import run_probe

    module = config.modules.get(module_name)
    if module is None:
        click.echo(f"SIP UNKNOWN - unknown module {module_name!r}")
        return 3
    res = asyncio.run(run_probe(module_name, module, target, config=config))
    code = 0 if res.success else 2
    warn_days = getattr(module.section, "warn_days", 0)
    warn_rtt = getattr(module.section, "warn_rtt", None)
    if res.success and res.tls_days_left is not None and res.tls_days_left < warn_days:
        code, res.reason = 1, f"certificate expires in {res.tls_days_left} days"
    if res.success and warn_rtt and res.rtt_s and res.rtt_s > warn_rtt:
        code, res.reason = 1, f"RTT {res.rtt_s * 1000:.0f} ms over {warn_rtt * 1000:.0f} ms"
    perf = [f"time={res.duration_s:.6f}s;;;0"]
    if res.rtt_s is not None:
        perf.append(f"rtt={res.rtt_s:.6f}s;{warn_rtt or ''};;0")
    if res.status_code is not None:
        perf.append(f"status={res.status_code}")
    if res.tls_days_left is not None:
        perf.append(f"cert_days={res.tls_days_left};{warn_days};0;")
    if res.mos is not None:
        perf.append(f"mos={res.mos};{module.section.min_mos};;1;4.5")
    click.echo(f"SIP {NAGIOS[code]} - {target} {module_name}: {res.reason} | {' '.join(perf)}")
    return code


@probe.command()
@_config
@click.option("-t", "--targets", "targets_path", type=click.Path(dir_okay=False, path_type=Path),
              help="targets.yaml: target + module (+ labels) per entry.")
@click.option("--json", "as_json", is_flag=True, help="One JSON line per probe on stdout.")
@click.option("--interval", type=DurationType(), help="Repeat every S seconds (60, 1m, 30s).")
@click.option("--count", type=click.IntRange(1), help="With --interval: stop after N rounds.")
@click.option("--concurrency", type=click.IntRange(1, 10000), default=200, show_default=True)
@click.option("--rate", type=click.FloatRange(0.1), default=2000.0, show_default=True,
              help="Probes per second, all targets together.")
# 0.5/s = 30 a minute: a third of the strictest documented auto-defense rule (Yeastar, 90
# packets in 60 s bans the source), see sipkit/pbx/pacing.py.
@click.option("--per-target-rate", type=click.FloatRange(0.01), default=0.5, show_default=True,
              help="Probes per second to one target at most (default: a third of Yeastar's "
                   "auto-defense ban threshold).")
@click.option("--deadline", type=DurationType(), help="One round at most this long (12, 2m).")
@click.option("--nagios", is_flag=True, help="One probe, Nagios output and exit code 0/1/2/3.")
@click.option("--module", "module_name", help="With --nagios: the module.")
@click.option("--target", help="With --nagios: the target.")
@click.option("--workers", type=click.IntRange(1, 16), default=1, show_default=True,
              help="Processes probing shares of the targets (one output stream); --rate and "
                   "--concurrency are split between them.")
@click.option("--shard", hidden=True, help="Internal: this helper's share, K/N.")
def run(config_path, targets_path, as_json, interval, count, concurrency, rate, per_target_rate,
        deadline, nagios, module_name, target, workers, shard):
    """Probe a target list (JSON lines and a summary), or one target in Nagios mode."""
    from ..errors import SipkitError
    from ..probe.config import load_config

    ctx = click.get_current_context()
    if nagios:
        if not (module_name and target):
            click.echo("SIP UNKNOWN - --nagios needs --module and --target")
            ctx.exit(3)
        try:
            config = load_config(config_path)
        except SipkitError as exc:  # Nagios wants one line and UNKNOWN, not exit 2
            click.echo(f"SIP UNKNOWN - {str(exc).splitlines()[0]}")
            ctx.exit(3)
        ctx.exit(_nagios(config, module_name, target))
    if not targets_path:
        raise click.UsageError("give --targets targets.yaml (or --nagios --module --target)")
    config = load_config(config_path)

    from orjson import OPT_APPEND_NEWLINE
    from orjson import dumps as json_bytes

    from ..probe.runner import run_targets
    from ..probe.targets import TargetReader

    out = sys.stdout.buffer
    # Lines are appended to one buffer and written 64 KiB at a time: a list of line objects
    # joined at the end costs ~1.5 µs more per line (measured), a write per line far more.
    buf = bytearray()

    def flush() -> None:
        if buf:
            out.write(buf)
            buf.clear()

    if as_json:
        wall = time.time

        def emit(res: dict, labels: dict) -> None:
            res["ts"] = round(wall(), 3)
            res["labels"] = labels
            buf.extend(json_bytes(res, option=OPT_APPEND_NEWLINE))
            if len(buf) >= 65536:
                flush()
    else:
        def emit(res: dict, labels: dict) -> None:
            if not res["success"]:
                buf.extend(f"FAIL {res['target']:<28} {res['module']:<14} {res['reason']}\n"
                           .encode())
                if len(buf) >= 65536:
                    flush()

    import gc

    # Every probe makes a few short-lived objects and no cycles: collect rarely, and never
    # walk what start-up loaded (the collector's passes cost more than a probe). No collection
    # before the freeze: the little garbage of the imports is not worth a full pass (~15 ms).
    gc.freeze()
    gc.set_threshold(100_000, 50, 100)
    by_target = per_target_rate < 1e5  # per-target pacing: a target stays in one process
    if shard:
        k, n = (int(x) for x in shard.split("/"))
        reader = TargetReader(targets_path, config, shard=(k, n), by_target=by_target)
        summary = _run_loop(run_targets(config, reader, concurrency=concurrency, rate=rate,
                                        per_target_rate=per_target_rate, deadline=deadline,
                                        sink=emit))
        flush()
        out.write(b'{"_sipkit_shard_summary":' + json_bytes(summary.state()) + b"}\n")
        out.flush()
        ctx.exit(0)
    if workers > 1 and interval:
        raise click.UsageError("--workers runs one round: leave out --interval")

    def forward(lines: bytes) -> None:
        buf.extend(lines)
        if len(buf) >= 65536:
            flush()

    async def one_round(reader, helpers):
        collect = asyncio.ensure_future(helpers.collect(forward)) if helpers else None
        try:
            summary = await run_targets(config, reader, concurrency=max(1, concurrency // workers),
                                        rate=rate / workers, per_target_rate=per_target_rate,
                                        deadline=deadline, sink=emit)
            if collect is not None:
                codes = await collect
                for state in helpers.summaries:
                    summary.merge(state)
                if max(codes, default=0) >= 2:
                    raise click.exceptions.Exit(max(codes))
            return summary
        finally:
            if helpers:
                helpers.stop()

    import asyncio

    rounds = 0
    failed_any = False
    while True:
        rounds += 1
        t0 = time.monotonic()
        helpers = None
        if workers > 1:
            from ..probe.workers import Helpers

            base = ["-c", str(config_path), "-t", str(targets_path), "--concurrency",
                    str(max(1, concurrency // workers)), "--rate", str(rate / workers),
                    "--per-target-rate", str(per_target_rate)] + (
                ["--json"] if as_json else []) + (["--deadline", str(deadline)] if deadline
                                                   else [])
            helpers = Helpers(base, workers)
        reader = TargetReader(targets_path, config, shard=(0, workers), by_target=by_target)
        try:
            summary = _run_loop(one_round(reader, helpers))
        finally:  # what was probed is written, also when a bad entry ends the round
            flush()
            out.flush()
        s = summary.as_dict()
        failed_any = failed_any or s["failure"] > 0
        click.echo(f"round {rounds}: {s['success']}/{s['probes']} ok, {s['failure']} failed, "
                   f"{s['skipped_deadline']} skipped (deadline) in {s['seconds']} s "
                   f"({s['probes_per_second']}/s); p50 {s['p50_ms']} ms, p99 {s['p99_ms']} ms"
                   + (f"; reasons: {s['failure_reasons']}" if s["failure_reasons"] else ""),
                   err=as_json)
        if not interval or (count and rounds >= count):
            break
        time.sleep(max(0.0, interval - (time.monotonic() - t0)))
    ctx.exit(1 if failed_any else 0)
