"""What the API commands (`connector`, `server`, `trunk`) share: the API options (URL, token
file, never a token flag), the client, output helpers, and the checks run before a create."""

from __future__ import annotations

import json
from pathlib import Path

import click

_api_options = [
    click.option("--api-url", envvar="SIPKIT_API_URL", metavar="URL",
                 help="Mihu API base, e.g. https://YOUR-WORKSPACE.mihu.ai (or SIPKIT_API_URL)."),
    click.option("--token-file", type=click.Path(dir_okay=False, path_type=Path),
                 envvar="SIPKIT_API_TOKEN_FILE",
                 help="File holding the API token (or SIPKIT_API_TOKEN / SIPKIT_API_TOKEN_FILE)."),
    click.option("--timeout", type=click.FloatRange(0.5, 300), default=15.0, show_default=True,
                 help="Seconds per HTTP request."),
    click.option("--json", "as_json", is_flag=True, help="Print JSON only."),
]


def api_options(fn):
    for opt in reversed(_api_options):
        fn = opt(fn)
    return fn


def add_create_command(group: click.Group, *, kind: str, what: str, file_help: str,
                       replace_help: str, provision, show) -> click.Command:
    """`GROUP create --config FILE`, the same for connectors and trunks: load the file (it
    must be of ``kind``), fail early on a missing URL or token, run the checks unless
    --skip-checks, then ``provision(client, site, replace)``; ``show(site, result)`` prints it
    unless --json."""

    @group.command("create", help=f"Create the {what} of a {file_help.split(':')[0].lower()}, "
                   "idempotently: re-running is safe.")
    @click.option("-c", "--config", type=click.Path(dir_okay=False, path_type=Path),
                  required=True, envvar="SIPKIT_CONFIG", help=file_help)
    @click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", help="Override a field.")
    @click.option("--skip-checks", is_flag=True,
                  help="Create without running `sipkit check` first.")
    @click.option("--replace", is_flag=True, help=replace_help)
    @api_options
    def create(config, sets, skip_checks, replace, api_url, token_file, timeout, as_json):
        site = load_kind(config, sets, kind, f"{group.name} create")
        with client(api_url, token_file, timeout) as api:  # before the checks: fail fast
            if not skip_checks:
                precheck(site, what)
            result = provision(api, site, replace)
        echo_json(result) if as_json else show(site, result)

    return create


def client(api_url, token_file, timeout):
    from ..mihu.client import MihuClient

    return MihuClient.from_env(api_url, token_file, timeout)


def console():
    import sys

    from rich.console import Console

    # Piped output is not 80 columns of a terminal: do not squeeze UUIDs into "…".
    return Console(highlight=False, width=None if sys.stdout.isatty() else 140)


def echo_json(data) -> None:
    click.echo(json.dumps(data, indent=2))


def load_kind(config: Path, sets, kind: str, command: str):
    """The site file, which must be of ``kind`` (a trunk file given to `connector create`,
    or the reverse, is a usage error naming the field, not a traceback)."""
    from ..errors import FieldProblem, SettingsError
    from ..settings import load_site, parse_overrides

    overrides = parse_overrides(list(sets))

    def wrong(found: str) -> FieldProblem:
        return FieldProblem("kind", f"is {found}, but `sipkit {command}` needs kind: {kind}",
                            "give the right file, or use `sipkit connector` for PBX "
                            "extensions and `sipkit trunk` for SIP trunks")

    try:
        site = load_site(config, overrides)
    except SettingsError as exc:
        found = overrides.get("kind") or _raw_kind(config)
        if found != kind and not any(p.field == "(file)" for p in exc.problems):
            raise SettingsError(exc.source, [wrong(found)] + exc.problems) from None
        raise
    if site.kind != kind:
        raise SettingsError(str(config), [wrong(site.kind)])
    return site


def _raw_kind(config: Path) -> str:
    """The file's ``kind:`` as written (for the hint when the file does not validate)."""
    import yaml

    try:
        data = yaml.safe_load(Path(config).read_text(encoding="utf-8"))
    except (OSError, ValueError, yaml.YAMLError):
        return "unreadable"
    kind = data.get("kind") if isinstance(data, dict) else None
    return str(kind) if kind else "pbx_extension"


def precheck(site, what: str) -> None:
    """Run `sipkit check` on the site before creating ``what``; refuse if a check failed."""
    import asyncio

    from ..checks.base import RunOptions
    from ..checks.runner import run_checks

    report = asyncio.run(run_checks(site, RunOptions(
        ca_file=site.check.ca_file, nameserver=site.check.nameserver,
        source_ip=site.check.source_ip)))
    failed = [c for c in report.checks if c.status in ("fail", "error")]
    if failed:
        msg = "; ".join(f"{c.id}: {c.summary}" for c in failed)
        raise click.ClickException(f"not creating the {what}: {len(failed)} check(s) failed — "
                                   f"{msg}. Run `sipkit check` for the fixes, or --skip-checks")
