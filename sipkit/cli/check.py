"""`sipkit check`: thin — parse flags, load settings, run the checks, render."""

from __future__ import annotations

import asyncio
import signal
import sys
import time
from pathlib import Path

import click

from ..errors import UsageError
from .exitcodes import INTERRUPTED

# Checks that depend on the connector existing; `--create` runs them again afterwards.
POST_CREATE = ("allowed_ip", "call_inbound")


def _ids(value: str | None) -> list[str]:
    return [v.strip() for v in (value or "").split(",") if v.strip()]


def _finite_timeout(_ctx, _param, value: float) -> float:
    # FloatRange lets nan through (every comparison with nan is false).
    import math

    if math.isnan(value):
        raise click.BadParameter("not a number; give seconds, e.g. --timeout 4")
    return value


def _writable(flag: str, path: Path) -> None:
    """Fail before any traffic: finding out after the authenticated REGISTERs is too late.
    Opens for append (creating it if needed, never truncating) and removes what it created."""
    import os

    existed = path.exists()
    try:
        if path.is_dir():
            raise IsADirectoryError(21, "is a directory")
        with open(path, "ab"):
            pass
    except OSError as exc:
        raise UsageError(f"{flag} {path}: cannot write there ({exc.strerror or exc}); "
                         "give a file in a writable directory") from None
    if not existed:
        os.unlink(path)


class _Progress:
    """A transient live view on stderr (only on a terminal): one line per check."""

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self.state: dict[str, str] = {}
        self.live = None

    def __enter__(self):
        if self.enabled:
            from rich.console import Console
            from rich.live import Live

            self.live = Live(self._view(), console=Console(stderr=True), transient=True,
                             refresh_per_second=12)
            self.live.__enter__()
        return self

    def __exit__(self, *exc):
        if self.live is not None:
            self.live.__exit__(*exc)

    def _view(self):
        from rich.spinner import Spinner
        from rich.table import Table

        from ..render.human import status_cell

        table = Table.grid(padding=(0, 1))
        for cid, status in self.state.items():
            if status == "running":
                table.add_row(Spinner("dots"), cid, "running…")
            else:
                table.add_row("", cid, status_cell(status))
        return table

    def event(self, cid: str, kind: str, result) -> None:
        self.state[cid] = "running" if kind == "start" else result.status
        if self.live is not None:
            self.live.update(self._view())


def run_options(what: str):
    """The options `check` and `verify` share (one place, so they mean the same)."""
    opts = [
        click.option("-c", "--config", "config",
                     type=click.Path(dir_okay=False, path_type=Path), envvar="SIPKIT_CONFIG",
                     help="Site file (YAML or JSON) with the connector's or trunk's fields."),
        click.option("--set", "sets", multiple=True, metavar="KEY=VALUE",
                     help="Override a site field, e.g. --set port=5061 --set "
                          "check.call_seconds=3."),
        click.option("--json", "as_json", is_flag=True,
                     help="Print the report as JSON, nothing else."),
        click.option("--only", help=f"Comma list of {what} ids to run (their prerequisites "
                                    "run too)."),
        click.option("--skip", help=f"Comma list of {what} ids to skip."),
        click.option("--timeout", type=click.FloatRange(0.1, 120), default=4.0,
                     show_default=True, callback=_finite_timeout,
                     help="Seconds to wait for one network exchange."),
        click.option("--insecure", is_flag=True,
                     help="Do not verify TLS certificates (reported)."),
        click.option("--ca-file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
                     help="PEM file of CA certificates to trust for TLS (default: system "
                          "store)."),
        click.option("--source-ip", metavar="IP", help="Send from this local address."),
        click.option("--strict", is_flag=True, help="Warnings fail too (exit 1)."),
        click.option("-v", "--verbose", count=True,
                     help="Show evidence: SIP messages (redacted), DNS answers."),
        click.option("--color/--no-color", default=None, help="Force colours on or off."),
        click.option("--junit", type=click.Path(dir_okay=False, path_type=Path),
                     help="Also write the verdicts as JUnit XML (one testcase per check) to "
                          "this file."),
        click.option("--pcap", type=click.Path(dir_okay=False, path_type=Path),
                     help="Write every SIP message sipkit sent and received to this pcap (no "
                          "root needed; passwords and digest responses masked)."),
        click.option("--html", "html_file", type=click.Path(dir_okay=False, path_type=Path),
                     help="Also write a self-contained HTML page for a support ticket: "
                          "verdicts, SIP sequence diagrams, call media, settings (no secrets)."),
        click.option("--api-url", envvar="SIPKIT_API_URL", metavar="URL",
                     help="Mihu API base URL."),
        click.option("--token-file", type=click.Path(dir_okay=False, path_type=Path),
                     envvar="SIPKIT_API_TOKEN_FILE", help="File holding the Mihu API token."),
    ]

    def apply(f):
        for opt in reversed(opts):
            f = opt(f)
        return f
    return apply


@click.command()
@run_options("check")
@click.option("--nameserver", metavar="IP[:PORT]", help="Ask this DNS server, not the system's.")
@click.option("--create", is_flag=True,
              help="If no check failed: allocate the SIP connector server if needed and create "
                   "the connector in the Mihu API (idempotent).")
@click.option("--replace", is_flag=True, help="With --create: replace a connector for this "
              "number that has other settings.")
def check(config, sets, as_json, only, skip, timeout, insecure, ca_file, nameserver, source_ip,
          strict, verbose, color, create, replace, junit, pcap, html_file, api_url, token_file):
    """Check that a PBX extension (or a SIP trunk) will work with Mihu.

    One verdict per check, with the cause and the fix. Exit 0: no failure; 1: a check failed;
    2: bad usage or settings; 3: sipkit itself broke; 4: the Mihu API is down (--create).
    """
    from ..checks.runner import run_checks

    site, api, options, redactor, recorder = prepare(
        config, sets, api_url, token_file, pcap, as_json, junit=junit, timeout=timeout,
        insecure=insecure,
        ca_file=ca_file, nameserver=nameserver, source_ip=source_ip, verbose=verbose)
    live = not as_json and sys.stderr.isatty()
    finished: list = []

    def on_event(cid, kind, result):
        progress.event(cid, kind, result)
        if kind == "done":
            finished.append(result)

    t0 = time.monotonic()
    with _Progress(live) as progress:
        report = _interruptible(run_checks(site, options, _ids(only), _ids(skip),
                                           on_event=on_event, redactor=redactor,
                                           recorder=recorder))
    interrupted = report is None
    if interrupted:  # Ctrl-C: the calls hung up and the checks cleaned up; say what finished
        from ..report import Report

        report = Report(target=site.public_view(), checks=finished,
                        options={"interrupted": True}).finish((time.monotonic() - t0) * 1000)
        create = False
    code = INTERRUPTED if interrupted else report.exit_code(strict)
    if create:
        code = _create(report, site, code, replace, api)
        if report.provisioning and report.provisioning.get("connector"):
            # Checks that need the connector (server allocated, source allowed) run again.
            again = [c.id for c in report.checks if c.id in POST_CREATE]
            if again:
                rerun = _interruptible(run_checks(site, options, only=again,
                                                  redactor=redactor, recorder=recorder))
                if rerun is None:  # Ctrl-C: the first run's verdicts and the connector stand
                    interrupted, code = True, INTERRUPTED
                else:
                    fresh = {c.id: c for c in rerun.checks if c.id in again}
                    report.checks = [fresh.get(c.id, c) for c in report.checks]
                    report.finish(report.duration_ms + rerun.duration_ms)
                    code = max(code, report.exit_code(strict))
            if not interrupted:  # last step: the real path through the PBX (sipkit verify)
                from .verify import append_verify

                code = max(code, append_verify(report, site, options, redactor, recorder,
                                               strict))
    write_outputs(report, site, redactor, recorder, pcap=pcap, junit=junit,
                  html_file=html_file, as_json=as_json, verbose=verbose, color=color)
    if interrupted:
        click.echo("interrupted (Ctrl-C): test calls hung up, their registrations removed; "
                   f"{len(finished)} check(s) finished, the others did not", err=True)
    click.get_current_context().exit(code)


def prepare(config, sets, api_url, token_file, pcap, as_json: bool, **flags):
    """Settings, API settings, run options, the redactor and the --pcap recorder, from the
    flags (check and verify)."""
    from ..checks.base import RunOptions
    from ..checks.runner import secrets_of
    from ..mihu.config import ApiSettings
    from ..redact import Redactor
    from ..settings import load_site, parse_overrides

    try:
        if config is None and not sets:
            raise UsageError("no settings: give --config site.yaml (or SIPKIT_CONFIG), "
                             "see README 'Site file'")
        site = load_site(config, parse_overrides(list(sets)))
        for flag, path in (("--pcap", pcap), ("--junit", flags.get("junit"))):
            if path is not None:  # before any traffic, not after the REGISTERs
                _writable(flag, path)
        api = ApiSettings.load(api_url, token_file)
    except UsageError as exc:
        if as_json:  # scripts read stdout: the error as JSON there, the message on stderr
            from ..render.json import error_object

            click.echo(error_object(exc))
        raise
    c = site.check
    options = RunOptions(
        timeout=flags["timeout"], insecure=flags["insecure"],
        ca_file=flags["ca_file"] or c.ca_file, nameserver=flags.get("nameserver") or c.nameserver,
        source_ip=flags["source_ip"] or c.source_ip, verbose=flags["verbose"], api=api)
    redactor = Redactor(secrets_of(site) + ([api.token.get_secret_value()] if api.token else []))
    recorder = None
    if pcap is not None:
        from ..pcap import PcapRecorder

        recorder = PcapRecorder()
    return site, api, options, redactor, recorder


def write_outputs(report, site, redactor, recorder, *, pcap, junit, html_file, as_json,
                  verbose, color) -> None:
    """--pcap, --junit, --html, then the report on stdout (check and verify)."""

    if recorder is not None:
        written = recorder.write(pcap, redactor.secrets)
        report.options["pcap"] = {"file": str(pcap), "packets": written,
                                  "dropped_over_limit": recorder.dropped}
    if junit is not None:
        from ..render.junit import render as render_junit

        junit.write_text(render_junit(report, redactor))
    if html_file is not None:
        from ..render.html import render as render_html

        html_file.write_text(render_html(report, redactor, {"check": site.check.model_dump(
            mode="json")}), encoding="utf-8")
    _output(report, redactor, as_json, verbose, color)


def _output(report, redactor, as_json: bool, verbose: int, color: bool | None) -> None:
    if as_json:
        from ..render.json import render as render_json

        click.echo(render_json(report, redactor))
    else:
        from ..render.human import render as render_human
        from ..render.human import screen

        color, width = screen(sys.stdout, color)
        click.echo(render_human(report, redactor, verbose=verbose, color=color, width=width),
                   nl=False, color=color)


def _interruptible(coro):
    """asyncio.run, except that Ctrl-C cancels the checks and returns None once they have
    cleaned up (a test call hangs up and un-registers on cancellation: sipkit.media.call).
    A second Ctrl-C is Python's own KeyboardInterrupt."""

    async def main():
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        hit = []

        def on_sigint():
            hit.append(True)
            loop.remove_signal_handler(signal.SIGINT)
            task.cancel()

        loop.add_signal_handler(signal.SIGINT, on_sigint)
        try:
            return await coro
        except asyncio.CancelledError:
            if hit:
                return None
            raise
        finally:
            loop.remove_signal_handler(signal.SIGINT)

    return asyncio.run(main())


def _create(report, site, code: int, replace: bool, api) -> int:
    """Create only on a clean report; API errors become the report's provisioning entry."""
    from ..errors import SipkitError

    if code != 0:
        failed = [c.id for c in report.checks if c.status in ("fail", "error")] or ["(--strict)"]
        report.provisioning = {"action": "none",
                               "reason": f"not created: {', '.join(failed)} did not pass"}
        return code
    from ..mihu.client import MihuClient
    from ..mihu.provision import provision

    if site.kind == "sip_trunk":
        from ..mihu.trunk_provision import provision_trunk as provision
    try:
        with MihuClient.from_settings(api) as client:
            report.provisioning = provision(client, site, replace=replace)
    except SipkitError as exc:
        report.provisioning = {"action": "error", "reason": str(exc)}
        return exc.exit_code
    return code
