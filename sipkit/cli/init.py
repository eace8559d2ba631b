"""`sipkit init`: write a starter site file.

On a terminal it asks for each field, validating every answer with the site loader itself (the
same messages as `sipkit check`); the PBX password is read without echo and goes into an env
file (mode 0600) that the site file references as ``${VAR}`` — never into the site file.
Without a terminal (or with --no-input) the flags are the answers. ``--from-connector UUID``
starts from a connector that exists in the Mihu API (the API never returns its password).
"""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path

import click

from ..errors import FieldProblem, SettingsError, UsageError
from .connector import api_options

# Valid stand-ins: a field is validated against them, so only its own problems show.
STAND_INS = {"agent_uuid": "3c90c3cc-0d44-4b50-8888-8dd25736052a",
             "phone_number": "+12084439178", "registrar_server": "pbx.example.com",
             "username_extension": "100", "pbx_password": "stand-in",
             "allowed_ip": "198.51.100.10"}
# (field, prompt, default) in the order a technician knows them.
QUESTIONS = (
    ("agent_uuid", "Mihu agent UUID (dashboard → agent)", None),
    ("phone_number", "Phone number of the connector, E.164 (+…)", None),
    ("registrar_server", "PBX public host name or IP", None),
    ("connection_type", "Transport: udp or tls", "udp"),
    ("port", "PBX SIP port", None),
    ("username_extension", "Extension the connector registers as", None),
    ("allowed_ip", "PBX public source IP (for inbound calls)", None),
    ("setup_mode", "Calls: both, inbound or outbound", "both"),
)
COMMENTS = {
    "phone_number": "E.164, in quotes", "registrar_server": "the PBX's public name or IP",
    "username_extension": "the extension the connector registers as",
    "pbx_password": "${VAR} is read from the environment",
    "allowed_ip": "the PBX's public source IP, trusted for inbound calls",
    "setup_mode": "both | inbound | outbound", "connection_type": "udp | tls",
}


def problems_for(answers: dict[str, str], field: str) -> list[FieldProblem]:
    """The loader's problems with ``field`` given these answers (stand-ins for the rest)."""
    from ..settings import load_site

    try:
        load_site(None, {**STAND_INS, **answers}, env={})
    except SettingsError as exc:
        return [p for p in exc.problems if p.field.split(".")[0] == field
                or field in p.field.split("/")]
    return []


def all_problems(answers: dict[str, str]) -> list[FieldProblem]:
    from ..settings import load_site

    try:
        load_site(None, {**answers, "pbx_password": "stand-in"}, env={})
    except SettingsError as exc:
        return exc.problems
    return []


def from_connector(uuid: str, api_url, token_file, timeout: float) -> dict[str, str]:
    """The site fields of an existing connector (GET), as text like a site file holds them."""
    from ..mihu.client import MihuClient

    with MihuClient.from_env(api_url, token_file, timeout) as client:
        c = client.get_connector(uuid)
    out = {"agent_uuid": c.agent_uuid, "phone_number": c.phone_number,
           "registrar_server": c.pbx.registrar_server, "port": str(c.pbx.port),
           "username_extension": c.pbx.username_extension, "connection_type": c.connection_type,
           "setup_mode": c.setup_mode}
    if c.inbound.allowed_ip:
        out["allowed_ip"] = c.inbound.allowed_ip
    if c.auth.has_separate_credentials and c.auth.username:
        out["auth_username"] = c.auth.username
    if c.normalizer is not None:
        norm = {k: v for k, v in c.normalizer.model_dump().items() if v is not None}
        for key, value in norm.items():
            out[f"normalizer.{key}"] = str(value)
    return out


def render_site(answers: dict[str, str], password_env: str, env_file: Path | None) -> str:
    """The site file: the answers, the password as ${VAR}, and the check section."""
    def q(value: str) -> str:
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'

    head = ["# Written by `sipkit init`. Fields: README 'The site file'."]
    if env_file is not None:
        head.append(f"# The password is in {env_file}: source it first "
                    f"(. {shlex.quote(str(env_file))}), then: sipkit check -c THIS_FILE")
    lines = []
    order = ["agent_uuid", "phone_number", "registrar_server", "username_extension",
             "pbx_password", "allowed_ip", "setup_mode", "connection_type", "port",
             "auth_username"]
    values = {**answers, "pbx_password": "${" + password_env + "}"}
    for key in order:
        if values.get(key) in (None, ""):
            continue
        value = values[key] if key == "pbx_password" else q(values[key])
        comment = f"  # {COMMENTS[key]}" if key in COMMENTS else ""
        lines.append(f"{key}: {value}{comment}")
    if answers.get("auth_username"):
        lines.append(f"auth_password: ${{{password_env}}}  # the PBX's digest password")
    norm = {k.split(".", 1)[1]: v for k, v in answers.items() if k.startswith("normalizer.")}
    if norm:
        lines.append("normalizer: {" + ", ".join(f"{k}: {q(v)}" for k, v in norm.items()) + "}")
    lines += ["check:                                # sipkit only; never sent to the API",
              "  connector_server: auto              # ask the API (SIPKIT_API_URL + token)",
              "  call_seconds: 4"]
    if answers.get("check.outbound_test_number"):
        lines.append(f"  outbound_test_number: {q(answers['check.outbound_test_number'])}")
    return "\n".join(head + lines) + "\n"


def _ask(answers: dict[str, str], field: str, text: str, default: str | None) -> None:
    while True:
        value = click.prompt(text, default=answers.get(field) or default, show_default=True)
        value = value.strip()
        trial = {k: v for k, v in answers.items() if k != field}
        trial[field] = value
        problems = problems_for(trial, field)
        if not problems:
            answers[field] = value
            return
        for p in problems:  # the loader's own words
            click.echo(f"  {p}", err=True)


@click.command()
@click.argument("site_file", type=click.Path(dir_okay=False, path_type=Path),
                default="site.yaml")
@click.option("--agent-uuid")
@click.option("--phone-number", help="E.164, e.g. +12084439178.")
@click.option("--registrar-server", help="The PBX's public host name or IP.")
@click.option("--username-extension")
@click.option("--allowed-ip", help="The PBX's public source IP.")
@click.option("--connection-type", type=click.Choice(["udp", "tls"]))
@click.option("--port", help="Default: 5060 for udp, 5061 for tls.")
@click.option("--setup-mode", type=click.Choice(["both", "inbound", "outbound"]))
@click.option("--outbound-test-number", help="A number the outbound test call may dial.")
@click.option("--password-env", default="PBX_PASSWORD", show_default=True, metavar="VAR",
              help="The environment variable the site file reads the password from.")
@click.option("--env-file", type=click.Path(dir_okay=False, path_type=Path),
              help="Where the password typed at the prompt goes (default: SITE_FILE with "
                   ".env; mode 0600).")
@click.option("--from-connector", "connector_uuid", metavar="UUID",
              help="Start from this existing connector in the Mihu API.")
@click.option("--no-input", is_flag=True, help="Never prompt, even on a terminal.")
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
@api_options
def init(site_file, agent_uuid, phone_number, registrar_server, username_extension, allowed_ip,
         connection_type, port, setup_mode, outbound_test_number, password_env, env_file,
         connector_uuid, no_input, force, api_url, token_file, timeout, as_json):
    """Write a starter site file, asking on a terminal (answers checked as `sipkit check`
    would); the password goes to an env file, never into the site file."""
    if site_file.exists() and not force:
        raise UsageError(f"{site_file} exists: give another name, or --force to overwrite it")
    if not password_env.isidentifier():
        raise UsageError(f"--password-env {password_env!r} is not a variable name: use e.g. "
                         "PBX_PASSWORD")
    answers: dict[str, str] = {}
    if connector_uuid:
        answers.update(from_connector(connector_uuid, api_url, token_file, timeout))
    given = {"agent_uuid": agent_uuid, "phone_number": phone_number,
             "registrar_server": registrar_server, "username_extension": username_extension,
             "allowed_ip": allowed_ip, "connection_type": connection_type, "port": port,
             "setup_mode": setup_mode, "check.outbound_test_number": outbound_test_number}
    answers.update({k: v for k, v in given.items() if v is not None})
    interactive = not no_input and sys.stdin.isatty()
    env_file = env_file or site_file.with_suffix(".env")
    password = None
    if interactive:
        for field, text, default in QUESTIONS:
            if field in answers:
                continue
            if field == "port":
                default = "5061" if answers.get("connection_type") == "tls" else "5060"
            _ask(answers, field, text, default)
        password = click.prompt(f"PBX password for extension {answers['username_extension']} "
                                f"(not shown; saved in {env_file})", hide_input=True,
                                default="", show_default=False)
    answers.setdefault("port", "5061" if answers.get("connection_type") == "tls" else "5060")
    problems = all_problems(answers)
    if problems:
        raise SettingsError("sipkit init (give the missing fields as flags, e.g. "
                            "--phone-number +12084439178)", problems)
    if password:
        _write_private(env_file, f"export {password_env}={shlex.quote(password)}\n")
    site_file.write_text(render_site(answers, password_env, env_file if password else None))
    site_file.chmod(0o600)
    if as_json:
        import json

        click.echo(json.dumps({"site_file": str(site_file),
                               "env_file": str(env_file) if password else None,
                               "password_env": password_env}))
        return
    click.echo(f"wrote {site_file}" + (f" and {env_file} (the password, mode 0600)"
                                        if password else ""))
    step = f". {shlex.quote(str(env_file))} && " if password else f"export {password_env}='…' && "
    click.echo(f"next: {step}sipkit check -c {shlex.quote(str(site_file))}")


def _write_private(path: Path, text: str) -> None:
    """Create with 0600 from the start: the password never sits in a world-readable file."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(path, 0o600)
