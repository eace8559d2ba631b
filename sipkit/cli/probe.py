"""`sipkit probe serve|run`: fleet health probes (Prometheus exporter, JSON lines, Nagios)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import click

_config = click.option("-c", "--config", "config_path", required=True,
                       type=click.Path(dir_okay=False, path_type=Path),
                       help="probes.yaml: the modules (see probes/probes.yaml).")

NAGIOS = {0: "OK", 1: "WARNING", 2: "CRITICAL", 3: "UNKNOWN"}


@click.group()
def probe() -> None:
    """Periodic SIP health probes for many PBX endpoints."""


@probe.command()
@_config
@click.option("--listen", default="127.0.0.1:9116", show_default=True, metavar="IP:PORT")
@click.option("--timeout", type=float, default=10.0, show_default=True,
              help="Probe budget when Prometheus sends no scrape timeout header.")
def serve(config_path, listen, timeout):
    """Prometheus exporter: GET /probe?module=NAME&target=HOST[:PORT] and /metrics."""
    from ..probe.config import load_config
    from ..probe.exporter import Exporter, make_server

    config = load_config(config_path)
    host, _, port = listen.rpartition(":")
    if not port.isdigit():
        raise click.BadParameter("must be IP:PORT", param_hint="--listen")
    server = make_server(Exporter(config, timeout), host.strip("[]"), int(port))
    click.echo(f"sipkit exporter on http://{listen}/probe (modules: "
               f"{', '.join(config.modules)})", err=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


def _nagios(config, module_name: str, target: str) -> int:
    import asyncio

    from ..probe.probers import run_probe

    module = config.modules.get(module_name)
    if module is None:
        click.echo(f"SIP UNKNOWN - unknown module {module_name!r}")
        return 3
    res = asyncio.run(run_probe(module_name, module, target))
    code = 0 if res.success else 2
    if res.success and res.tls_days_left is not None and res.tls_days_left < module.warn_days:
        code, res.reason = 1, f"certificate expires in {res.tls_days_left} days"
    if res.success and module.warn_rtt_ms and res.rtt_s and res.rtt_s * 1000 > module.warn_rtt_ms:
        code, res.reason = 1, f"RTT {res.rtt_s * 1000:.0f} ms over {module.warn_rtt_ms:.0f} ms"
    perf = [f"time={res.duration_s:.6f}s;;;0"]
    if res.rtt_s is not None:
        perf.append(f"rtt={res.rtt_s:.6f}s;{(module.warn_rtt_ms or 0) / 1000 or ''};;0")
    if res.status_code is not None:
        perf.append(f"status={res.status_code}")
    if res.tls_days_left is not None:
        perf.append(f"cert_days={res.tls_days_left};{module.warn_days};0;")
    click.echo(f"SIP {NAGIOS[code]} - {target} {module_name}: {res.reason} | {' '.join(perf)}")
    return code


@probe.command()
@_config
@click.option("-t", "--targets", "targets_path", type=click.Path(dir_okay=False, path_type=Path),
              help="targets.yaml: target + module (+ labels) per entry.")
@click.option("--json", "as_json", is_flag=True, help="One JSON line per probe on stdout.")
@click.option("--interval", type=click.FloatRange(0.1), help="Repeat every S seconds.")
@click.option("--count", type=click.IntRange(1), help="With --interval: stop after N rounds.")
@click.option("--concurrency", type=click.IntRange(1, 10000), default=200, show_default=True)
@click.option("--rate", type=click.FloatRange(0.1), default=2000.0, show_default=True,
              help="Probes per second, all targets together.")
@click.option("--per-target-rate", type=click.FloatRange(0.01), default=5.0, show_default=True,
              help="Probes per second to one target at most.")
@click.option("--deadline", type=click.FloatRange(0.1), help="Seconds for one round at most.")
@click.option("--nagios", is_flag=True, help="One probe, Nagios output and exit code 0/1/2/3.")
@click.option("--module", "module_name", help="With --nagios: the module.")
@click.option("--target", help="With --nagios: the target.")
def run(config_path, targets_path, as_json, interval, count, concurrency, rate, per_target_rate,
        deadline, nagios, module_name, target):
    """Probe a target list (JSON lines and a summary), or one target in Nagios mode."""
    from ..errors import SipkitError
    from ..probe.config import load_config, load_targets

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
    targets = load_targets(targets_path, config)

    import asyncio

    from ..probe.runner import run_targets

    def emit(res, t) -> None:
        if as_json:
            sys.stdout.write(json.dumps({"ts": round(time.time(), 3), **res.as_dict(),
                                         "labels": t.labels}) + "\n")
        elif not res.success:
            click.echo(f"FAIL {res.target:<28} {res.module:<14} {res.reason}")

    rounds = 0
    failed_any = False
    while True:
        rounds += 1
        t0 = time.monotonic()
        summary = asyncio.run(run_targets(config, targets, concurrency=concurrency, rate=rate,
                                          per_target_rate=per_target_rate, deadline=deadline,
                                          on_result=emit))
        sys.stdout.flush()
        s = summary.as_dict()
        failed_any = failed_any or s["failure"] > 0
        click.echo(f"round {rounds}: {s['success']}/{s['probes']} ok, {s['failure']} failed, "
                   f"{s['skipped_deadline']} skipped (deadline) in {s['seconds']} s; "
                   f"p50 {s['p50_ms']} ms, p99 {s['p99_ms']} ms"
                   + (f"; reasons: {s['failure_reasons']}" if s["failure_reasons"] else ""),
                   err=as_json)
        if not interval or (count and rounds >= count):
            break
        time.sleep(max(0.0, interval - (time.monotonic() - t0)))
    ctx.exit(1 if failed_any else 0)
