"""`sipkit lab up|down|status`: the local lab of real peers on loopback."""

from __future__ import annotations

import json
from pathlib import Path

import click


def _lab(directory: Path | None, prefix: str | None):
    from ..lab.manager import DEFAULT_PREFIX, Lab, default_dir, recorded_prefix

    directory = directory or default_dir()
    if prefix is None:  # keep the prefix a lab was started with
        prefix = recorded_prefix(directory) or DEFAULT_PREFIX
    parts = prefix.split(".")
    if len(parts) != 3 or parts[0] != "127" or not all(p.isdigit() and int(p) < 256 for p in parts):
        raise click.BadParameter("must be three octets inside 127.0.0.0/8, e.g. 127.0.0",
                                 param_hint="--prefix")
    return Lab(directory=directory, prefix=prefix)


_dir = click.option("--dir", "directory", type=click.Path(file_okay=False, path_type=Path),
                    envvar="SIPKIT_LAB_DIR", help="Lab directory (default ~/.local/state/sipkit/lab).")
_prefix = click.option("--prefix", default=None, metavar="127.X.Y", envvar="SIPKIT_LAB_PREFIX",
                       help="Loopback /24 the lab binds to (default 127.0.0: PBX on 127.0.0.1).")
_json = click.option("--json", "as_json", is_flag=True, help="Print JSON.")


@click.group()
def lab() -> None:
    """The local lab: a real Kamailio PBX, a SIP connector server, an echo UAS, the API sandbox."""


@lab.command()
@_dir
@_prefix
@_json
def up(directory, prefix, as_json):
    """Start the lab (idempotent) and wait until every peer answers."""
    summary = _lab(directory, prefix).up()
    if as_json:
        click.echo(json.dumps(summary, indent=2))
        return
    started = ", ".join(summary["started"]) or "nothing (already running)"
    click.echo(f"lab up in {summary['seconds']} s: started {started}")
    for name, endpoint in summary["components"].items():
        click.echo(f"  {name:<10} {endpoint}")
    click.echo(f"site file (UDP): {summary['site_file']}")
    click.echo(f"site file (TLS): {summary['tls_site_file']}")
    if summary.get("ipv6_site_file"):
        click.echo(f"site file (IPv6, signalling): {summary['ipv6_site_file']}")
    click.echo(f"API env:         {summary['env_file']}  (source it: . {summary['env_file']})")
    click.echo(f"extensions:      100, 101, 102 (passwords in "
               f"{Path(summary['directory']) / 'secrets.json'})")


@lab.command()
@_dir
@_prefix
@_json
def down(directory, prefix, as_json):
    """Stop what `lab up` started, and nothing else."""
    result = _lab(directory, prefix).down()
    if as_json:
        click.echo(json.dumps(result))
        return
    click.echo(f"lab down: stopped {', '.join(result['stopped']) or 'nothing'}"
               + (f" (killed: {', '.join(result['killed'])})" if result["killed"] else ""))


@lab.command()
@_dir
@_prefix
@_json
def status(directory, prefix, as_json):
    """Show the lab's processes and whether they answer. Exit 1 if any is down."""
    rows = _lab(directory, prefix).status()
    if as_json:
        click.echo(json.dumps(rows, indent=2))
    elif not rows:
        click.echo("lab is not running")
    for r in rows if not as_json else []:
        state = "up" if r["answering"] else ("not answering" if r["alive"] else "dead")
        click.echo(f"  {r['name']:<10} pid {r['pid']:<7} {state:<14} {r['endpoint']}")
    if not rows or not all(r["answering"] for r in rows):
        click.get_current_context().exit(1)
