"""`sipkit verify`: after creation, prove the real path through the PBX (the VERIFY checks).

Thin, like `check`: the same settings, options and output (sipkit.cli.check.prepare/output);
the checks are the ``VERIFY`` group (sipkit.checks), which a plain `check` never runs.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from ..errors import UsageError
from .check import _ids, _interruptible, _Progress, prepare, write_outputs
from .exitcodes import INTERRUPTED


def _require(site, api) -> None:
    if site.kind != "pbx_extension":
        raise UsageError("verify is for a PBX extension connector (kind: pbx_extension); "
                         "a SIP trunk has its own checks in `sipkit check`")
    if not api.configured:
        raise UsageError("verify asks the Mihu API about the connector: give --api-url and "
                         "--token-file (or SIPKIT_API_URL and SIPKIT_API_TOKEN_FILE)")
    test = site.check.test_extension
    if test is not None and test.username in (site.username_extension, site.auth_username):
        raise UsageError("check.test_extension.username: it is the connector's own extension; "
                         "give a second extension on the same PBX")


def _run(site, options, redactor, recorder, only=(), skip=(), on_event=None):
    """The VERIFY checks; None on Ctrl-C (the calls hung up, the test binding removed)."""
    from ..checks import VERIFY
    from ..checks.runner import run_checks

    return _interruptible(run_checks(site, options, only, skip, on_event=on_event,
                                     redactor=redactor, recorder=recorder, registry=VERIFY))


def exit_code(report, strict: bool) -> int:
    """The report's exit code; an API that is down (4) or refuses the token (2) says so."""
    api = [c.details["api_exit"] for c in report.checks if c.details.get("api_exit")]
    return api[0] if api else report.exit_code(strict)


def append_verify(report, site, options, redactor, recorder, strict: bool) -> int:
    """`check --create`'s last step: run the VERIFY checks, add them to ``report``."""
    if site.kind != "pbx_extension" or not options.api or not options.api.configured:
        return 0
    extra = _run(site, options, redactor, recorder)
    if extra is None:
        return INTERRUPTED
    report.checks = [*report.checks, *extra.checks]
    report.finish(report.duration_ms + extra.duration_ms)
    return exit_code(report, strict)


@click.command()
@click.option("-c", "--config", "config", type=click.Path(dir_okay=False, path_type=Path),
              envvar="SIPKIT_CONFIG", help="Site file (YAML or JSON), with check.test_extension.")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE",
              help="Override a site field, e.g. --set check.call_seconds=3.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON, nothing else.")
@click.option("--only", help="Comma list of verify check ids to run (with prerequisites).")
@click.option("--skip", help="Comma list of verify check ids to skip.")
@click.option("--timeout", type=click.FloatRange(0.1, 120), default=4.0, show_default=True,
              help="Seconds to wait for one network exchange.")
@click.option("--insecure", is_flag=True, help="Do not verify TLS certificates (reported).")
@click.option("--ca-file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="PEM file of CA certificates to trust for TLS.")
@click.option("--source-ip", metavar="IP", help="Send from this local address.")
@click.option("--strict", is_flag=True, help="Warnings fail too (exit 1).")
@click.option("-v", "--verbose", count=True, help="Show evidence (SIP ladders, redacted).")
@click.option("--color/--no-color", default=None, help="Force colours on or off.")
@click.option("--junit", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write the verdicts as JUnit XML to this file.")
@click.option("--pcap", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the calls' SIP messages to this pcap (secrets masked).")
@click.option("--html", "html_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write a self-contained HTML page for a support ticket.")
@click.option("--api-url", envvar="SIPKIT_API_URL", metavar="URL", help="Mihu API base URL.")
@click.option("--token-file", type=click.Path(dir_okay=False, path_type=Path),
              envvar="SIPKIT_API_TOKEN_FILE", help="File holding the Mihu API token.")
def verify(config, sets, as_json, only, skip, timeout, insecure, ca_file, source_ip, strict,
           verbose, color, junit, pcap, html_file, api_url, token_file):
    """Prove the created connector works: calls through the PBX to and from the agent.

    cloud_registration (the API has the connector; the PBX has the cloud's binding),
    call_via_pbx_inbound and call_via_pbx_outbound (as check.test_extension). Exit codes as
    `check`: 0 no failure, 1 a check failed, 2 bad usage or settings, 3 sipkit broke.
    """
    site, api, options, redactor, recorder = prepare(
        config, sets, api_url, token_file, pcap, as_json, timeout=timeout, insecure=insecure,
        ca_file=ca_file, source_ip=source_ip, verbose=verbose)
    _require(site, api)
    with _Progress(not as_json and sys.stderr.isatty()) as progress:
        report = _run(site, options, redactor, recorder, _ids(only), _ids(skip), progress.event)
    if report is None:
        click.echo("interrupted (Ctrl-C): test calls hung up, the test extension's "
                   "registration removed", err=True)
        click.get_current_context().exit(INTERRUPTED)
    write_outputs(report, site, redactor, recorder, pcap=pcap, junit=junit, html_file=html_file,
                  as_json=as_json, verbose=verbose, color=color)
    click.get_current_context().exit(exit_code(report, strict))
