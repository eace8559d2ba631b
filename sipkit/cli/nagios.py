"""`sipkit nagios`: one probe as a Nagios/Icinga plugin, without a YAML file.

Monitoring Plugins conventions (https://www.monitoring-plugins.org/doc/guidelines.html):
``-H host -p port -t timeout -w RANGE -c RANGE``, ``-V``, one line ``SIP STATE - text | perfdata``
and the exit codes 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN. A problem of the *check's own
configuration* (bad flags, a bad probes.yaml, a password variable that is not set) is UNKNOWN,
never CRITICAL: the service is not known to be down. Thresholds are Nagios ranges
(nagiosplugin.Range: ``10``, ``10:``, ``~:10``, ``@10:20``): on the round trip in seconds, or
with ``--prober tls`` on the certificate's days left, where a bare ``N`` means "alert below N
days".
"""

from __future__ import annotations

import click

from .. import __version__

STATES = ("OK", "WARNING", "CRITICAL", "UNKNOWN")
OK, WARNING, CRITICAL, UNKNOWN = range(4)


class PluginCommand(click.Command):
    """Bad arguments are UNKNOWN (exit 3) on one line, as monitoring systems expect."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except click.UsageError as exc:
            unknown(exc.format_message())
            raise AssertionError("unreachable") from None


def unknown(text: str) -> None:
    click.echo(f"SIP UNKNOWN - {' '.join(text.split())}")
    raise click.exceptions.Exit(UNKNOWN)


def threshold(value: str | None, what: str, days: bool):
    """A Nagios range; for days left a bare number N means N: (alert below N)."""
    if value is None:
        return None
    from nagiosplugin import Range

    text = value.strip()
    if days and text.replace(".", "", 1).isdigit():
        text += ":"
    try:
        return Range(text)
    except ValueError:
        unknown(f"{what} {value!r} is not a Nagios range (e.g. 0.5, 10:, ~:2, @1:3)")


def state_of(value: float | None, warning, critical) -> int:
    if value is None:
        return OK
    if critical is not None and not critical.match(value):
        return CRITICAL
    if warning is not None and not warning.match(value):
        return WARNING
    return OK


def _module(config, module_name, prober, transport, timeout, username, auth_username,
            password_env, password_file, insecure, ca_file, source_ip):
    """The probe module: from probes.yaml (--config/--module) or from the flags."""
    from ..errors import SettingsError
    from ..probe.config import Module, load_config

    if config is not None:
        if not module_name:
            unknown("--config needs --module NAME")
        try:
            modules = load_config(config).modules
        except SettingsError as exc:  # every field error, on the one UNKNOWN line
            unknown(f"{exc.source}: " + "; ".join(f"{p.field}: {p.problem}"
                                                   for p in exc.problems))
        if module_name not in modules:
            unknown(f"no module {module_name!r} in {config} (it has: {', '.join(modules)})")
        module = modules[module_name]
        return module.model_copy(update={"timeout": timeout}) if timeout else module
    fields = {"prober": prober, "transport": transport or ("tls" if prober == "tls" else "udp"),
              "username": username, "auth_username": auth_username,
              "password_env": password_env, "password_file": password_file,
              "insecure": insecure, "ca_file": ca_file, "source_ip": source_ip}
    if timeout:
        fields["timeout"] = timeout
    try:
        return Module.model_validate({k: v for k, v in fields.items() if v is not None})
    except ValueError as exc:
        errors = getattr(exc, "errors", lambda: [])()
        unknown("; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors)
                or str(exc))


def _credentials_problem(module) -> str | None:
    """Credentials a register probe needs but cannot have: a configuration problem."""
    if module.prober != "register":
        return None
    if not module.username:
        return "register needs --username (the extension)"
    if module.password_file is not None:
        if module.password() is None:
            return f"password_file {module.password_file} cannot be read"
        return None
    if not module.password_env:
        return "register needs --password-env VAR (or --password-file)"
    if module.password() is None:
        return f"password_env {module.password_env} is not set in the environment"
    return None


@click.command(cls=PluginCommand, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-H", "--hostname", required=True, help="Host name or IP of the SIP server.")
@click.option("-p", "--port", type=click.IntRange(1, 65535),
              help="Port (default 5060; 5061 for TLS).")
@click.option("-t", "--timeout", type=click.FloatRange(0.1, 60), default=None,
              help="Seconds for one exchange (default 3, or the module's).")
@click.option("-w", "--warning", metavar="RANGE",
              help="WARNING range: round trip in seconds; days left with --prober tls.")
@click.option("-c", "--critical", metavar="RANGE",
              help="CRITICAL range: round trip in seconds; days left with --prober tls.")
@click.option("-P", "--prober", type=click.Choice(["options", "register", "tls", "dns"]),
              default="options", show_default=True)
@click.option("-T", "--transport", type=click.Choice(["udp", "tcp", "tls"]),
              help="Default udp (tls for --prober tls).")
@click.option("-u", "--username", help="register: the extension.")
@click.option("--auth-username", help="register: a separate digest user.")
@click.option("--password-env", metavar="VAR", help="register: the variable with the password.")
@click.option("--password-file", type=click.Path(dir_okay=False),
              help="register: a file holding the password.")
@click.option("--insecure", is_flag=True, help="Do not verify TLS certificates.")
@click.option("--ca-file", type=click.Path(dir_okay=False), help="CA PEM for TLS.")
@click.option("--source-ip", help="Send from this local address.")
@click.option("--config", type=click.Path(dir_okay=False),
              help="Take the module from this probes.yaml instead of the flags.")
@click.option("--module", "module_name", help="With --config: the module's name.")
@click.version_option(__version__, "-V", "--version", prog_name="sipkit nagios")
def nagios(hostname, port, timeout, warning, critical, prober, transport, username, auth_username,
           password_env, password_file, insecure, ca_file, source_ip, config, module_name):
    """One SIP probe as a Nagios/Icinga plugin: exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN."""
    from ..net.addresses import hostport

    module = _module(config, module_name, prober, transport, timeout, username, auth_username,
                     password_env, password_file, insecure, ca_file, source_ip)
    days = module.prober == "tls"
    warn = threshold(warning, "-w", days)
    crit = threshold(critical, "-c", days)
    target = hostport(hostname, port) if port else hostname
    raise click.exceptions.Exit(run_module(module, module_name or module.prober, target,
                                           warn, crit))


def run_module(module, name: str, target: str, warn=None, crit=None) -> int:
    """One probe of ``module`` on ``target``, printed as the plugin line; the exit code.
    (Public: `probe run --nagios` can answer the same way.)"""
    import asyncio

    from ..probe.probers import run_probe

    days = module.prober == "tls"
    if days and warn is None:  # the module's own thresholds when no -w is given
        warn = threshold(str(module.warn_days), "warn_days", True)
    if not days and warn is None and module.warn_rtt_ms:
        warn = threshold(str(module.warn_rtt_ms / 1000), "warn_rtt_ms", False)
    problem = _credentials_problem(module)
    if problem:
        unknown(f"{problem} (a configuration problem, not the server)")
    res = asyncio.run(run_probe(name, module, target))
    if res.reason.startswith("bad target"):
        unknown(res.reason)
    if not res.success:
        code = CRITICAL  # no answer, refused, 5xx, TLS failure, registration refused
    elif days:
        code = state_of(res.tls_days_left, warn, crit)
    else:
        code = state_of(res.rtt_s, warn, crit)
    perf = [f"time={res.duration_s:.6f}s;;;0"]
    if res.rtt_s is not None:
        perf.append(f"rtt={res.rtt_s:.6f}s;{'' if days or warn is None else warn};"
                    f"{'' if days or crit is None else crit};0")
    if res.tls_days_left is not None:
        perf.append(f"days_left={res.tls_days_left};{warn if days and warn else ''};"
                    f"{crit if days and crit else ''}")
    if res.status_code is not None:
        perf.append(f"status={res.status_code}")
    reason = res.reason
    if code != OK and res.success:
        reason += (f" (days left {res.tls_days_left} outside {crit if code == CRITICAL else warn})"
                   if days else f" (RTT {res.rtt_s:.3f} s outside "
                   f"{crit if code == CRITICAL else warn})")
    click.echo(f"SIP {STATES[code]} - {target} {module.prober}: {reason} | {' '.join(perf)}")
    return code
