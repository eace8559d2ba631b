"""`sipkit trunk ...`: SIP trunks in the three trunk APIs, idempotent for scripts.

The trunk file (``kind: sip_trunk``) says which API (``api: mihu | mihu_byo | sip_trunks``) and
the trunk's key there: a Mihu connection's phone number, a BYO trunk's (phone number,
channel), a /sip-trunks trunk's name. Same token, retry and secret rules as `sipkit connector`.
"""

from __future__ import annotations

from pathlib import Path

import click

from ..errors import UsageError
from .api_common import (
    add_create_command,
    api_options,
    client,
    console,
    echo_json,
    load_kind,
)

APIS = ("mihu", "mihu_byo", "sip_trunks")
WORDS = {"created": "created", "exists": "already exists (same settings), nothing to do",
         "replaced": "replaced (deleted and created with these settings)",
         "updated": "updated in place with these settings (PATCH)"}

_config = click.option("-c", "--config", type=click.Path(dir_okay=False, path_type=Path),
                       envvar="SIPKIT_CONFIG", help="Trunk file (kind: sip_trunk).")
_sets = click.option("--set", "sets", multiple=True, metavar="KEY=VALUE",
                     help="Override a field of the trunk file.")
_api = click.option("--api", "api_name", type=click.Choice(APIS),
                    help="Which trunk API, without --config (default mihu).")
_channel = click.option("--channel", type=click.Choice(("call", "whatsapp")),
                        help="mihu_byo: the trunk's channel (default: the file's, or call).")


def _target(config, sets, api_name):
    """(site or None, api) from --config and/or --api."""
    site = load_kind(config, sets, "sip_trunk", "trunk") if config else None
    if site is not None and api_name and api_name != site.api:
        raise UsageError(f"--api {api_name} contradicts api: {site.api} in {config}; "
                         "give one of them")
    return site, site.api if site is not None else (api_name or "mihu")


def rows(api: str, t: dict) -> list[tuple[str, object]]:
    """What is shown of a trunk (no API returns a password)."""
    if api == "mihu":
        return [("uuid", t["uuid"]), ("name", t["name"]), ("phone_number", t["phone_number"]),
                ("gateway", t["gateway"]), ("secondary_gateway", t.get("secondary_gateway")),
                ("status", t.get("status")), ("created_at", t.get("created_at"))]
    if api == "mihu_byo":
        bound = {**(t.get("channels") or {}), **(t.get("bindings") or {})}
        channels = ", ".join(f"{ch} → {b.get('agent_name') or ''} ({b.get('agent_uuid')})"
                             for ch, b in bound.items() if isinstance(b, dict) and b.get("bound"))
        return [("number", t["number"]), ("phone_number_uuid", t.get("phone_number_uuid")),
                ("channels", channels or None), ("source", t.get("source"))]
    port = f":{t['port']}" if t.get("port") else ""
    return [("id", t["id"]), ("name", t["name"]), ("host", f"{t['host']}{port}"),
            ("username", t.get("username")), ("transport", t.get("transport")),
            ("provider", t.get("provider")), ("is_active", t.get("is_active")),
            ("created_at", t.get("created_at"))]


def _show(api: str, trunk: dict, title: str | None = None, notes: list[str] = ()) -> None:
    from rich.table import Table

    t = Table(show_header=False, box=None, title=title, title_justify="left")
    t.add_column(style="bold")
    t.add_column()
    for k, v in rows(api, trunk):
        t.add_row(k, str(v) if v is not None else "-")
    out = console()
    out.print(t)
    for note in notes:
        out.print(f"note: {note}")


def _one(c, site, api: str, ident: str | None, channel: str | None):
    """The trunk named by ID (a phone number for mihu_byo) or by the trunk file's key."""
    from ..mihu.errors import ConflictError, NotFoundError
    from ..mihu.trunk_provision import find, key, trunk_id

    if api == "mihu_byo":
        number = ident or (site.phone_number if site is not None else None)
        if not number:
            raise UsageError("mihu_byo trunks are found by phone number: give it "
                             "(sipkit trunk get +12084439178 --api mihu_byo) or --config")
        return c.get_byo_trunk(number, channel or (site.channel if site else "call"))
    if ident:
        return c.get_trunk_connection(ident) if api == "mihu" else c.get_sip_trunk(ident)
    if site is None:
        raise UsageError("give the trunk's ID (see `sipkit trunk list`) or --config trunk.yaml")
    found = find(c, site)
    if not found:
        raise NotFoundError(f"no trunk with {key(site)}", status=404,
                            fix="create it with `sipkit trunk create --config FILE`")
    if len(found) > 1:
        ids = ", ".join(trunk_id(t) for t in found)
        raise ConflictError(f"{len(found)} trunks have {key(site)} ({ids})", status=409,
                            fix="name one by its ID")
    return found[0]


@click.group()
def trunk() -> None:
    """SIP trunks: Mihu SIP-trunk connections (api mihu), Mihu external BYO trunks (mihu_byo),
    the /sip-trunks API (sip_trunks). Exit codes: 0 ok, 1 refused (404/409/differs), 2 fix input
    or credentials (401/403/422, bad trunk file), 3 sipkit broke, 4 API unreachable or failing."""


def _provision(c, site, replace: bool) -> dict:
    from ..mihu.trunk_provision import provision_trunk

    return provision_trunk(c, site, replace=replace)


def _created(site, result: dict) -> None:
    _show(site.api, result["trunk"], f"trunk {WORDS[result['action']]} (api {site.api})",
          result["notes"])


create = add_create_command(
    trunk, kind="sip_trunk", what="trunk", provision=_provision, show=_created,
    file_help="Trunk file: the same one `sipkit check` reads.",
    replace_help="If the trunk exists with other settings, make it match this file (mihu, "
                 "sip_trunks: delete and create; mihu_byo: update in place).")


@trunk.command("list")
@_config
@_sets
@_api
@_channel
@click.option("--agent-uuid", help="mihu_byo: only this agent's trunks.")
@click.option("--phone-number", help="mihu_byo: numbers containing these digits.")
@click.option("--page", type=click.IntRange(1), default=1, show_default=True)
@click.option("--per-page", type=click.IntRange(1, 100), default=50, show_default=True)
@click.option("--all", "all_pages", is_flag=True, help="Follow every page.")
@api_options
def list_(config, sets, api_name, channel, agent_uuid, phone_number, page, per_page, all_pages,
          api_url, token_file, timeout, as_json):
    """List the trunks of one API (pagination where the API has it)."""
    _, api = _target(config, sets, api_name)
    with client(api_url, token_file, timeout) as c:
        pagination: dict = {}
        if api == "sip_trunks":  # no pagination in that API
            items = [t.model_dump(mode="json") for t in c.list_sip_trunks()]
        elif api == "mihu" and all_pages:
            items = [t.model_dump(mode="json") for t in c.iter_trunk_connections()]
        elif api == "mihu":
            result = c.list_trunk_connections(page=page, per_page=per_page)
            items = [t.model_dump(mode="json") for t in result.items]
            pagination = result.pagination.model_dump()
        else:
            filters = {"channel": channel, "agent_uuid": agent_uuid, "phone_number": phone_number}
            if all_pages:
                items = [t.model_dump(mode="json") for t in c.iter_byo_trunks(**filters)]
            else:
                result = c.list_byo_trunks(page=page, per_page=per_page, **filters)
                items = [t.model_dump(mode="json") for t in result.items]
                pagination = result.pagination.model_dump()
    pagination = pagination or {"total": len(items)}
    if as_json:
        echo_json({"api": api, "items": items, "pagination": pagination})
        return
    from rich.table import Table

    table = [rows(api, item) for item in items]
    # Columns no trunk fills (the docs' /sip-trunks shape has no transport) are left out.
    keep = [i for i in range(len(table[0])) if any(r[i][1] is not None for r in table)] \
        if table else []
    t = Table(*([table[0][i][0] for i in keep] if table else ["trunk"]))
    for col in t.columns:
        col.no_wrap = True
    for r in table:
        t.add_row(*(str(r[i][1]) if r[i][1] is not None else "-" for i in keep))
    out = console()
    out.print(t)
    more = f", page {pagination['current_page']} of {pagination['last_page']}" \
        if "last_page" in pagination else ""
    out.print(f"{pagination['total']} trunk(s) in api {api}{more}")


@trunk.command("get")
@click.argument("ident", metavar="[ID]", required=False)
@_config
@_sets
@_api
@_channel
@api_options
def get(ident, config, sets, api_name, channel, api_url, token_file, timeout, as_json):
    """Show one trunk: by ID (mihu_byo: the phone number), or the one of --config."""
    from ..mihu.trunk_provision import trunk_id

    site, api = _target(config, sets, api_name)
    with client(api_url, token_file, timeout) as c:
        found = _one(c, site, api, ident, channel)
    data = found.model_dump(mode="json")
    if as_json:
        echo_json({"api": api, "id": trunk_id(found), "trunk": data})
    else:
        _show(api, data)


@trunk.command("delete")
@click.argument("ident", metavar="[ID]", required=False)
@_config
@_sets
@_api
@_channel
@click.option("--missing-ok", is_flag=True, help="Exit 0 if it does not exist (for scripts).")
@api_options
def delete(ident, config, sets, api_name, channel, missing_ok, api_url, token_file, timeout,
           as_json):
    """Delete one trunk: by ID (mihu_byo: the phone number), or the one of --config."""
    from ..mihu.errors import NotFoundError
    from ..mihu.trunk_provision import key

    site, api = _target(config, sets, api_name)
    with client(api_url, token_file, timeout) as c:
        try:
            found = _one(c, site, api, ident, channel)
            if api == "mihu":
                c.delete_trunk_connection(found.uuid)
            elif api == "sip_trunks":
                c.delete_sip_trunk(found.id)
            else:
                c.delete_byo_trunk(found.number, channel or (site.channel if site else "call"))
            state, name = "deleted", (found.uuid if api == "mihu" else
                                      found.id if api == "sip_trunks" else found.number)
        except NotFoundError:
            if not missing_ok:
                raise
            state, name = "absent", ident or (key(site) if site else "")
    if as_json:
        echo_json({"api": api, "id": name, "result": state})
    else:
        click.echo(f"trunk {name} {'deleted' if state == 'deleted' else 'did not exist'}")


@trunk.command("assign")
@_config
@_sets
@_api
@_channel
@click.option("--connection", "connection_uuid", metavar="UUID",
              help="mihu: the connection (default: the one of --config).")
@click.option("--agent-uuid", help="The agent (default: agent_uuid of the trunk file).")
@click.option("--phone-number", help="mihu_byo: the trunk's number (default: the file's).")
@click.option("--force", is_flag=True,
              help="mihu: assign even if another agent answers the number (phone_in_use): "
                   "both share it outbound, inbound goes to the agent assigned last.")
@api_options
def assign(config, sets, api_name, channel, connection_uuid, agent_uuid, phone_number, force,
           api_url, token_file, timeout, as_json):
    """Assign the trunk to an agent for calls (idempotent: the same pair again is a no-op)."""
    site, api = _target(config, sets, api_name)
    agent = agent_uuid or (site.agent_uuid if site is not None else None)
    if api == "sip_trunks":
        raise UsageError("the /sip-trunks API has no assignment: its trunks serve call "
                         "transfers, attached per number (PATCH /numbers/{id} transfer_trunk_id)")
    if not agent:
        raise UsageError("agent_uuid: which agent? Fix: set agent_uuid in the trunk file or "
                         "give --agent-uuid")
    with client(api_url, token_file, timeout) as c:
        if api == "mihu":
            uuid = connection_uuid or _one(c, site, api, None, None).uuid
            data = {"api": api, **c.assign_trunk_connection(agent, uuid, force).model_dump()}
            words = f"connection {uuid} ({data.get('phone_number')}) assigned to agent {agent}"
        else:
            number = phone_number or (site.phone_number if site is not None else None)
            if not number:
                raise UsageError("phone_number: which BYO trunk? Fix: --phone-number or --config")
            ch = channel or (site.channel if site is not None else "call")
            snap = c.assign_byo_trunk(number, ch, agent)
            data = {"api": api, "phone_number": number, "channel": ch, "agent_uuid": agent,
                    "trunk": snap.model_dump(mode="json")}
            words = f"{number} ({ch}) assigned to agent {agent}"
    echo_json(data) if as_json else click.echo(words)
