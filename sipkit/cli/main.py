"""The `sipkit` command. Sub-commands load lazily so `sipkit --help` stays instant."""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys

import click

from .. import __version__

# name -> "module:attribute"; a module that is not there yet is simply not listed.
COMMANDS = {
    "init": ("sipkit.cli.init", "init", "Write a starter site file (asks on a terminal)."),
    "check": ("sipkit.cli.check", "check", "Check a PBX before (and after) creating a connector."),
    "verify": ("sipkit.cli.verify", "verify", "After creation: calls through the PBX to and from the connector."),
    "connector": ("sipkit.cli.connector", "connector", "Mihu PBX extension connectors: create, list, get, delete."),
    "server": ("sipkit.cli.connector", "server", "The account's SIP connector server: show, allocate, release."),
    "trunk": ("sipkit.cli.trunk", "trunk", "SIP trunks in the Mihu and /sip-trunks APIs: create, list, get, delete, assign."),
    "normalize": ("sipkit.cli.normalize", "normalize", "Apply a connector's number rule to numbers."),
    "probe": ("sipkit.cli.probe", "probe", "Periodic health probes (Prometheus, Nagios, JSON lines)."),
    "nagios": ("sipkit.cli.nagios", "nagios", "One probe as a Nagios/Icinga plugin (-H host -p port -w/-c)."),
    "analyze": ("sipkit.cli.analyze", "analyze", "Diagnose a SIP capture (pcap)."),
    "pbx-config": ("sipkit.cli.pbx_config", "pbx_config", "What to set on the PBX for this connector (pjsip block or menu steps)."),
    "reflector": ("sipkit.cli.reflector", "reflector", "The outside view: see a site's PBX from the internet."),
    "lab": ("sipkit.cli.lab", "lab", "The local SIP lab: a real PBX, connector server and API sandbox."),
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return [name for name, (mod, _, _) in COMMANDS.items() if importlib.util.find_spec(mod)]

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS or name not in self.list_commands(ctx):
            return None
        mod, attr, _ = COMMANDS[name]
        return getattr(importlib.import_module(mod), attr)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # Help text from the table, so listing commands imports none of them.
        rows = [(name, COMMANDS[name][2]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="sipkit")
def cli() -> None:
    """sipkit: will calls work through a Mihu PBX extension connector? Check, create, probe."""


def main(argv: list[str] | None = None) -> int:
    """Entry point: SipkitError -> its exit code and one clear line; anything else -> exit 3."""
    from ..errors import SipkitError

    try:
        rv = cli.main(args=argv, prog_name="sipkit", standalone_mode=False)
        return rv if isinstance(rv, int) else 0
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return 130
    except SipkitError as exc:
        click.echo(f"error: {exc}", err=True)
        return exc.exit_code
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        return 130
    except Exception as exc:  # a bug: one line, no traceback unless asked for
        if os.environ.get("SIPKIT_DEBUG"):
            raise
        click.echo(f"sipkit internal error: {type(exc).__name__}: {exc} "
                   "(set SIPKIT_DEBUG=1 for the traceback and report it)", err=True)
        return 3


def run() -> None:
    sys.exit(main())


if __name__ == "__main__":
    run()
