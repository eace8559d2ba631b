"""`sipkit verify`: after creation, prove the real path through the PBX (the VERIFY checks).

Thin, like `check`: the same settings, options and output (sipkit.cli.check.prepare/output);
the checks are the ``VERIFY`` group (sipkit.checks), which a plain `check` never runs.
"""

from __future__ import annotations

import sys

import click

from ..errors import UsageError
from .check import _ids, _interruptible, _Progress, prepare, run_options, write_outputs
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
@run_options("verify check")
def verify(config, sets, as_json, only, skip, timeout, insecure, ca_file, source_ip, strict,
           verbose, color, junit, pcap, html_file, api_url, token_file):
    """Prove the created connector works: calls through the PBX to and from the agent.

    cloud_registration (the API has the connector; the PBX has the cloud's binding),
    call_via_pbx_inbound and call_via_pbx_outbound (as check.test_extension). Exit codes as
    `check`: 0 no failure, 1 a check failed, 2 bad usage or settings, 3 sipkit broke.
    """
    site, api, options, redactor, recorder = prepare(
        config, sets, api_url, token_file, pcap, as_json, junit=junit, timeout=timeout,
        insecure=insecure, ca_file=ca_file, source_ip=source_ip, verbose=verbose)
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
