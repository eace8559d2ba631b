"""`sipkit connector ...` and `sipkit server ...`: the Mihu API, idempotent for scripts."""

from __future__ import annotations

import json

import click

from .api_common import add_create_command, api_options
from .api_common import client as _client
from .api_common import console as _console
from .api_common import echo_json as _echo_json


def _show(connector: dict, title: str | None = None) -> None:
    from rich.table import Table

    t = Table(show_header=False, box=None, title=title, title_justify="left")
    t.add_column(style="bold")
    t.add_column()
    pbx, auth = connector.get("pbx") or {}, connector.get("auth") or {}
    rows = [
        ("uuid", connector["pbx_extension_connector_uuid"]), ("name", connector.get("name")),
        ("status", connector["status"]), ("phone_number", connector["phone_number"]),
        ("agent", f"{connector.get('agent_name') or ''} ({connector['agent_uuid']})"),
        ("sip_connector_server", connector.get("sip_connector_server")),
        ("pbx", f"{connector['connection_type']} {pbx.get('registrar_server')}:{pbx.get('port')} "
                f"ext {pbx.get('username_extension')}"),
        ("setup_mode", connector["setup_mode"]),
        ("allowed_ip", (connector.get("inbound") or {}).get("allowed_ip")),
        ("auth_username", auth.get("username") if auth.get("has_separate_credentials") else "-"),
        ("normalizer", json.dumps(connector.get("normalizer")) if connector.get("normalizer")
         else "-"),
        ("created_at", connector.get("created_at")),
    ]
    for k, v in rows:
        t.add_row(k, str(v) if v is not None else "-")
    _console().print(t)


@click.group()
def connector() -> None:
    """Mihu PBX extension connectors. Exit codes: 0 ok, 1 refused (404/409/differs),
    2 fix input or credentials (401/403/422), 4 API unreachable or failing (retry later)."""


def _provision(client, site, replace: bool) -> dict:
    from ..mihu.provision import provision

    return provision(client, site, replace=replace)


def _created(site, result: dict) -> None:
    words = {"created": "created", "exists": "already exists (same settings), nothing to do",
             "replaced": "replaced (deleted and created with these settings)"}
    _show(result["connector"], f"connector {words[result['action']]}")


create = add_create_command(
    connector, kind="pbx_extension", what="connector", provision=_provision, show=_created,
    file_help="Site file: the same one `sipkit check` reads.",
    replace_help="If a connector for this number exists with other settings, delete it and "
                 "create it anew.")


@connector.command("list")
@click.option("--agent-uuid")
@click.option("--phone-number")
@click.option("--status")
@click.option("--page", type=click.IntRange(1), default=1, show_default=True)
@click.option("--per-page", type=click.IntRange(1, 100), default=15, show_default=True)
@click.option("--all", "all_pages", is_flag=True, help="Follow every page.")
@api_options
def list_(agent_uuid, phone_number, status, page, per_page, all_pages, api_url, token_file,
          timeout, as_json):
    """List connectors (filters and pagination as the API has them)."""
    filters = {"agent_uuid": agent_uuid, "phone_number": phone_number, "status": status}
    with _client(api_url, token_file, timeout) as client:
        if all_pages:
            items = [c.model_dump(mode="json") for c in client.iter_connectors(**filters)]
            pagination = {"total": len(items)}
        else:
            result = client.list_connectors(page=page, per_page=per_page, **filters)
            items = [c.model_dump(mode="json") for c in result.items]
            pagination = result.pagination.model_dump()
    if as_json:
        _echo_json({"items": items, "pagination": pagination})
        return
    from rich.table import Table

    t = Table("uuid", "phone_number", "extension", "registrar", "mode", "status")
    t.columns[0].overflow = "fold"  # a narrow terminal folds the UUID; never cuts the number
    t.columns[1].no_wrap = True
    t.columns[1].min_width = 16  # "+" and up to 15 digits (E.164)
    t.columns[3].overflow = "fold"
    for c in items:
        t.add_row(c["pbx_extension_connector_uuid"], c["phone_number"],
                  c["pbx"]["username_extension"],
                  f"{c['connection_type']} {c['pbx']['registrar_server']}:{c['pbx']['port']}",
                  c["setup_mode"], c["status"])
    console = _console()
    console.print(t)
    more = f", page {pagination['current_page']} of {pagination['last_page']}" \
        if "last_page" in pagination else ""
    console.print(f"{pagination['total']} connector(s){more}")


@connector.command("get")
@click.argument("uuid")
@api_options
def get(uuid, api_url, token_file, timeout, as_json):
    """Show one connector."""
    with _client(api_url, token_file, timeout) as client:
        data = client.get_connector(uuid).model_dump(mode="json")
    _echo_json(data) if as_json else _show(data)


@connector.command("delete")
@click.argument("uuid")
@click.option("--missing-ok", is_flag=True, help="Exit 0 if it does not exist (for scripts).")
@api_options
def delete(uuid, missing_ok, api_url, token_file, timeout, as_json):
    """Delete one connector (the agent and the number are kept)."""
    from ..mihu.errors import NotFoundError

    with _client(api_url, token_file, timeout) as client:
        try:
            client.delete_connector(uuid)
            state = "deleted"
        except NotFoundError:
            if not missing_ok:
                raise
            state = "absent"
    _echo_json({"uuid": uuid, "result": state}) if as_json else click.echo(
        f"connector {uuid} {'deleted' if state == 'deleted' else 'did not exist'}")


@click.group()
def server() -> None:
    """The account's SIP connector server (connectors are pushed to it)."""


def _server_out(state: dict, as_json: bool, words: str) -> None:
    if as_json:
        _echo_json(state)
    else:
        click.echo(words)


@server.command("show")
@api_options
def show(api_url, token_file, timeout, as_json):
    """Which server is allocated, if any."""
    with _client(api_url, token_file, timeout) as client:
        st = client.get_server().model_dump()
    _server_out(st, as_json, f"SIP connector server: {st['sip_connector_server']}"
                if st["assigned"] else "no SIP connector server allocated (`sipkit server allocate`)")


@server.command("allocate")
@api_options
def allocate(api_url, token_file, timeout, as_json):
    """Allocate one (idempotent: an allocated server is kept)."""
    from ..mihu.provision import ensure_server

    with _client(api_url, token_file, timeout) as client:
        st, action = ensure_server(client)
    data = {**st.model_dump(), "action": action}
    _server_out(data, as_json, f"SIP connector server {st.sip_connector_server} "
                f"({'already allocated' if action == 'existing' else 'allocated'})")


@server.command("release")
@api_options
def release(api_url, token_file, timeout, as_json):
    """Release it (refused while connectors exist)."""
    with _client(api_url, token_file, timeout) as client:
        released = client.release_server()
    _server_out({"released": released}, as_json,
                "SIP connector server released" if released else
                "no SIP connector server was allocated: nothing to release")
