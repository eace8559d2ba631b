"""Idempotent trunk provisioning for the three trunk APIs: safe to re-run, never a duplicate.

Each API has its key: a Mihu SIP-trunk connection is looked for by ``phone_number``, a BYO
trunk by ``(phone_number, channel)``, a /sip-trunks trunk by ``name``. Same settings: "exists".
Other settings: TrunkDiffers listing them (passwords excluded: no API returns them), unless
``replace``. What an API never returns cannot be compared, and the result says so. Concurrent
runs on one host are serialized per key (createlock.py); across hosts the APIs offer no guard.
"""

from __future__ import annotations

from typing import Any

from ..net.addresses import split_hostport
from ..settings import TrunkSite
from .client import MihuClient
from .createlock import client_lock
from .errors import TrunkDiffers, ValidationError
from .trunk_models import ByoTrunk, SipTrunk, TrunkConnection

Trunk = TrunkConnection | ByoTrunk | SipTrunk

# What each API never returns, so "exists" cannot vouch for it.
NOT_COMPARED = {
    "mihu": ("username", "password"),
    "mihu_byo": ("name", "direction", "gateway", "port", "username", "password",
                 "secondary_gateway"),
    "sip_trunks": ("password",),
}

# API field (as a 422 names it) -> the trunk file's field.
SITE_FIELD = {"sip.gateway": "gateway", "sip.port": "port", "sip.username": "username",
              "sip.password": "password", "sip.secondary_gateway": "secondary_gateway",
              "sip": "gateway", "host": "gateway", "address": "gateway",
              "auth_username": "username", "auth_password": "password"}


def _host_port(site: TrunkSite) -> tuple[str, int | None]:
    host, port = split_hostport(site.gateway, 0)
    return host.strip("[]"), port or site.port


def body(site: TrunkSite) -> tuple[dict[str, Any], list[str]]:
    """The create body for ``site.api``, secrets revealed (for the client only), and notes on
    settings the API has no field for."""
    password = site.password.get_secret_value() if site.password is not None else None
    notes = []
    if site.transport != "udp" and site.api in ("mihu", "mihu_byo"):
        notes.append(f"the {site.api} API has no transport field: the trunk is created "
                     f"without it (sipkit checked {site.transport})")
    if site.api == "mihu":
        if site.port not in (None, 5060) and not split_hostport(site.gateway, 0)[1]:
            notes.append(f"the Mihu SIP-trunk API has no port field: port {site.port} is not "
                         "sent (write the gateway as host:port if the provider needs it)")
        out = {"name": site.name, "phone_number": site.phone_number, "gateway": site.gateway,
               "username": site.username, "password": password}
        if site.secondary_gateway:
            out["secondary_gateway"] = site.secondary_gateway
        return out, notes
    host, port = _host_port(site)
    if site.api == "mihu_byo":
        sip = {"gateway": host, "port": port, "username": site.username, "password": password,
               "secondary_gateway": site.secondary_gateway}
        return {"phone_number": site.phone_number, "agent_uuid": site.agent_uuid,
                "channel": site.channel, "name": site.name, "direction": site.direction,
                "sip": {k: v for k, v in sip.items() if v is not None}}, notes
    # sip_trunks: the documented request (seed 003); the SDK's transport is not in it.
    if site.transport != "udp":
        notes.append(f"the /sip-trunks API documents no transport field: {site.transport} "
                     "is not sent")
    if site.secondary_gateway:
        notes.append("the /sip-trunks API has no secondary gateway: it is not sent")
    out = {"name": site.name, "host": host, "port": port or 5060, "username": site.username,
           "password": password}
    return {k: v for k, v in out.items() if v is not None}, notes


def differences(existing: Trunk, site: TrunkSite) -> dict[str, tuple[Any, Any]]:
    """Field -> (in the API, in the trunk file), for every readable setting that differs."""
    if isinstance(existing, TrunkConnection):
        want = {"name": site.name, "gateway": site.gateway,
                "secondary_gateway": site.secondary_gateway}
        have = {k: getattr(existing, k) for k in want}
    elif isinstance(existing, ByoTrunk):
        want = {"agent_uuid": site.agent_uuid}
        have = {"agent_uuid": existing.binding(site.channel).agent_uuid}
    else:
        host, port = _host_port(site)
        want = {"gateway": host, "port": port or 5060, "username": site.username}
        have = {"gateway": existing.host, "port": existing.port or 5060,  # SDK: in address
                "username": existing.username}
        if existing.transport is not None:  # only the SDK shape says
            want["transport"], have["transport"] = site.transport, existing.transport
    return {k: (have[k], want[k]) for k in want if have[k] != want[k]}


def key(site: TrunkSite) -> str:
    return {"mihu": f"phone_number {site.phone_number}",
            "mihu_byo": f"phone_number {site.phone_number} on channel {site.channel}",
            "sip_trunks": f"name {site.name!r}"}[site.api]


def trunk_id(trunk: Trunk) -> str:
    if isinstance(trunk, TrunkConnection):
        return trunk.uuid
    if isinstance(trunk, SipTrunk):
        return trunk.id
    return trunk.number


def find(client: MihuClient, site: TrunkSite) -> list[Trunk]:
    """The trunks with this file's key (a Mihu number or a /sip-trunks name may repeat)."""
    if site.api == "mihu":
        return list(client.find_trunk_connections(site.phone_number))
    if site.api == "mihu_byo":
        found = client.find_byo_trunk(site.phone_number, site.channel)
        return [found] if found is not None else []
    return list(client.find_sip_trunks(site.name))


def _create(client: MihuClient, site: TrunkSite, data: dict[str, Any]) -> Trunk:
    create = {"mihu": client.create_trunk_connection, "mihu_byo": client.create_byo_trunk,
              "sip_trunks": client.create_sip_trunk}[site.api]
    return create(data)


def delete(client: MihuClient, site: TrunkSite, trunk: Trunk) -> None:
    if isinstance(trunk, TrunkConnection):
        client.delete_trunk_connection(trunk.uuid)
    elif isinstance(trunk, SipTrunk):
        client.delete_sip_trunk(trunk.id)
    else:
        client.delete_byo_trunk(site.phone_number, site.channel)


def _update_byo(client: MihuClient, site: TrunkSite, existing: ByoTrunk, data: dict
                ) -> ByoTrunk:
    """BYO trunks update in place (PATCH, then PUT assign if the agent moves): the binding
    and the number stay, and no window opens where the number has no trunk."""
    patch = {k: data[k] for k in ("phone_number", "channel", "name", "direction", "sip")}
    updated = client.update_byo_trunk(patch)
    if existing.binding(site.channel).agent_uuid != site.agent_uuid:
        updated = client.assign_byo_trunk(site.phone_number, site.channel, site.agent_uuid)
    return updated


def lock(client: MihuClient, site: TrunkSite):
    """This trunk's create lock on this host (createlock.py)."""
    return client_lock(client, f"trunk {site.api} {key(site)}", f"the trunk for {key(site)}")


def ensure_trunk(client: MihuClient, site: TrunkSite, replace: bool = False
                 ) -> tuple[Trunk, str, list[str]]:
    """(trunk, "created" | "exists" | "replaced" | "updated", notes). Under the trunk's
    lock: two runs at once on this host make one trunk."""
    with lock(client, site):
        return _ensure_trunk(client, site, replace)


def _ensure_trunk(client: MihuClient, site: TrunkSite, replace: bool
                  ) -> tuple[Trunk, str, list[str]]:
    data, notes = body(site)
    found = find(client, site)
    same = [t for t in found if not differences(t, site)]
    unread = NOT_COMPARED[site.api]
    if same and not (replace and site.api == "mihu_byo"):
        notes.append(f"not compared (the API never returns them): {', '.join(unread)}")
        if site.api == "mihu_byo":
            notes.append("--replace pushes this file's values to it (PATCH)")
        else:  # no update endpoint: a new password alone needs delete + create
            notes.append("a changed password alone: `sipkit trunk delete`, then `create`"
                         + (" and `assign` again" if site.api == "mihu" else ""))
        return same[0], "exists", notes
    if found:
        existing = found[0]
        if not replace:
            listed = "; ".join(f"{k}: {a!r} in the API, {b!r} in the trunk file"
                               for k, (a, b) in differences(existing, site).items())
            err = TrunkDiffers(f"trunk {trunk_id(existing)} for {key(site)} exists with other "
                               f"settings ({listed})")
            err.differences = differences(existing, site)  # type: ignore[attr-defined]
            raise err
        if isinstance(existing, ByoTrunk):
            return _update_byo(client, site, existing, data), "updated", notes
        delete(client, site, existing)
        return _create(client, site, data), "replaced", notes
    return _create(client, site, data), "created", notes


def site_fields(exc: ValidationError) -> ValidationError:
    """A 422 naming an API field (``sip.gateway``), re-said with the trunk file's field."""
    field = SITE_FIELD.get(exc.field or "", exc.field)
    if not field:
        return exc
    return ValidationError(exc.message, status=exc.status, code=exc.code, field=field,
                           fix=f"correct `{field}` in the trunk file (README 'SIP trunks')")


def provision_trunk(client: MihuClient, site: TrunkSite, replace: bool = False
                    ) -> dict[str, Any]:
    """ensure_trunk, JSON-ready and free of secrets (no API returns a password)."""
    try:
        trunk, action, notes = ensure_trunk(client, site, replace)
    except ValidationError as exc:
        raise site_fields(exc) from None
    return {"action": action, "api": site.api, "key": key(site), "id": trunk_id(trunk),
            "trunk": trunk.model_dump(mode="json"), "notes": notes}
