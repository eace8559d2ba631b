"""`sipkit reflector`: the outside view service (serve) and its tokens (token)."""

from __future__ import annotations

from pathlib import Path

import click


@click.group()
def reflector() -> None:
    """The reflector: sees a site's PBX from the internet, for outside_reach, sip_alg and
    nat_binding (README 'The outside view')."""


@reflector.command()
@click.option("-c", "--config", "config", required=True,
              type=click.Path(dir_okay=False, path_type=Path), envvar="SIPKIT_REFLECTOR_CONFIG",
              help="reflector.yaml: listen address, TLS certificate, public IP, token file.")
def serve(config: Path) -> None:
    """Serve the HTTPS API and the SIP sockets until stopped (SIGTERM)."""
    import asyncio

    from ..reflector.config import load_config
    from ..reflector.server import serve as run

    cfg = load_config(config)
    try:
        asyncio.run(run(cfg, ready=lambda r: click.echo(
            f"sipkit reflector: API https://{cfg.listen}, SIP udp/tcp {r.sip.address}",
            err=True)))
    except OSError as exc:
        from ..errors import UsageError

        raise UsageError(f"cannot listen ({exc.strerror or exc}): check listen, public_ip and "
                         "sip_port in the reflector config, and that no other service holds "
                         "them") from None


@reflector.command()
@click.argument("name")
def token(name: str) -> None:
    """Make a new token for NAME: the token (give it to the agent) and the entry for the
    token file (which keeps only its hash)."""
    from ..reflector.tokens import digest, new_token

    value = new_token()
    click.echo(f"# give this token to the agent (SIPKIT_REFLECTOR_TOKEN_FILE):\n{value}")
    click.echo(f"# add this entry to the reflector's token file:\n- name: {name}\n"
               f"  sha256: {digest(value)}\n  allow: []")
