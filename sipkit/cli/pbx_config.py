"""`sipkit pbx-config`: what to set on the PBX for this connector, from the site file."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import click

from ..errors import UsageError

BRAND_CHOICES = ("auto", "asterisk", "freepbx", "issabel", "3cx", "yeastar", "grandstream",
                 "cucm", "avaya", "mitel", "freeswitch")


@click.command("pbx-config")
@click.option("-c", "--config", "config", type=click.Path(dir_okay=False, path_type=Path),
              envvar="SIPKIT_CONFIG", help="Site file (YAML or JSON).")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", help="Override a site field.")
@click.option("--pbx", "brand", type=click.Choice(BRAND_CHOICES, case_sensitive=False),
              required=True, help="The PBX brand; auto = fingerprint it (OPTIONS only, no "
              "credentials sent).")
@click.option("--connector-ip", metavar="IP", help="The SIP connector server's address (default: "
              "check.connector_server when it is an IP).")
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON.")
@click.option("--timeout", type=click.FloatRange(0.1, 60), default=4.0, show_default=True,
              help="With --pbx auto: seconds per exchange.")
def pbx_config(config, sets, brand, connector_ip, as_json, timeout):
    """What to set on the PBX for the Mihu connector: a pjsip block for Asterisk/FreePBX,
    numbered menu steps for GUI PBXs, ports to forward, addresses to trust."""
    from ..net.addresses import parse_ip
    from ..pbx.config import plan, render_text
    from ..settings import Site, load_site, parse_overrides

    if config is None and not sets:
        raise UsageError("no settings: give --config site.yaml (or SIPKIT_CONFIG)")
    site = load_site(config, parse_overrides(list(sets)))
    if not isinstance(site, Site):
        raise UsageError("pbx-config is for a PBX extension site (kind: pbx_extension), not a "
                         "SIP trunk")
    if connector_ip and not parse_ip(connector_ip):
        raise UsageError(f"--connector-ip {connector_ip!r} is not an IP address: give the SIP "
                         "connector server's address, e.g. 198.51.100.7")
    fingerprint = None
    brand = brand.lower()
    if brand == "auto":
        fingerprint = _fingerprint(site, timeout)
        if fingerprint is None or fingerprint.get("brand") is None:
            raise UsageError("--pbx auto: the PBX did not say who it is (no known banner or "
                             "style in its OPTIONS answer); give --pbx BRAND")
        brand = fingerprint["brand"]
        if brand in ("kamailio", "opensips"):
            raise UsageError(f"--pbx auto found a {brand} proxy, not a PBX: give --pbx BRAND "
                             "for the PBX behind it")
    result = plan(site, brand, connector_ip)
    if fingerprint is not None:
        result["fingerprint"] = fingerprint
    if as_json:
        click.echo(json.dumps(result, indent=2))
    else:
        if fingerprint is not None:
            click.echo(f"PBX (fingerprint): {fingerprint['label']} "
                       f"(confidence {fingerprint['confidence']:.2f})\n")
        click.echo(render_text(result), nl=False)


def _fingerprint(site, timeout: float) -> dict | None:
    """The transport check only: a few OPTIONS, never a REGISTER (no credentials, nothing a
    PBX counts as a failed attempt)."""
    from ..checks.base import RunOptions
    from ..checks.runner import run_checks

    options = RunOptions(timeout=timeout, source_ip=site.check.source_ip,
                         nameserver=site.check.nameserver)
    report = asyncio.run(run_checks(site, options, only=["transport"]))
    return report.pbx
