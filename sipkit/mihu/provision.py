"""Idempotent provisioning: safe to re-run from scripts, never a duplicate.

``ensure_connector`` looks for a connector with the same phone number (and agent) before it
creates one. Same settings: "exists". Other settings: ConnectorDiffers, listing the fields
(passwords cannot be compared, the API never returns them), unless ``replace``. Concurrent
runs on one host are serialized per number (createlock.py); across hosts the API has no guard,
but a create refused 409 because the other host's run made the same connector reads "exists".
"""

from __future__ import annotations

from typing import Any

from ..settings import Site
from .client import MihuClient
from .createlock import client_lock
from .errors import ConflictError, ConnectorDiffers
from .models import Connector, ServerAssignment


def ensure_server(client: MihuClient) -> tuple[ServerAssignment, str]:
    """(assignment, "existing" | "allocated"). No lock: allocate is idempotent by contract,
    so two runs at once get the same server."""
    current = client.get_server()
    if current.assigned and current.sip_connector_server:
        return current, "existing"
    return client.allocate_server(), "allocated"


def _norm(n: Any) -> dict:
    if n is None:
        return {}
    data = n if isinstance(n, dict) else n.model_dump()
    return {k: v for k, v in data.items() if v not in (None, "")}


def differences(existing: Connector, site: Site) -> dict[str, tuple[Any, Any]]:
    """Field -> (in Mihu, in the site file), for every setting that differs."""
    want = {
        "agent_uuid": site.agent_uuid,
        "registrar_server": site.registrar_server,
        "port": site.port,
        "username_extension": site.username_extension,
        "allowed_ip": site.allowed_ip,
        "setup_mode": site.setup_mode,
        "connection_type": site.connection_type,
        "auth_username": site.auth_username,
        "normalizer": _norm(site.normalizer),
    }
    have = {
        "agent_uuid": existing.agent_uuid,
        "registrar_server": existing.pbx.registrar_server,
        "port": existing.pbx.port,
        "username_extension": existing.pbx.username_extension,
        "allowed_ip": existing.inbound.allowed_ip,
        "setup_mode": existing.setup_mode,
        "connection_type": existing.connection_type,
        "auth_username": existing.auth.username if existing.auth.has_separate_credentials else None,
        "normalizer": _norm(existing.normalizer),
    }
    return {k: (have[k], want[k]) for k in want if have[k] != want[k]}


def lock(client: MihuClient, site: Site):
    """This connector's create lock on this host (createlock.py)."""
    return client_lock(client, f"connector {site.phone_number}",
                       f"the connector for {site.phone_number}")


def ensure_connector(client: MihuClient, site: Site, replace: bool = False
                     ) -> tuple[Connector, str]:
    """(connector, "created" | "exists" | "replaced"). Under the connector's lock: two runs
    at once on this host make one connector."""
    with lock(client, site):
        return _ensure_connector(client, site, replace)


def _ensure_connector(client: MihuClient, site: Site, replace: bool) -> tuple[Connector, str]:
    existing = client.find_connector(site.phone_number)
    if existing is None:
        try:
            return client.create_connector(site.api_body()), "created"
        except ConflictError:
            # Another host's run may have created it between our find and this create (no
            # lock reaches there): then it is judged like one found, as a re-run would judge
            # it. Refused for another reason: the API's own words stand.
            existing = client.find_connector(site.phone_number)
            if existing is None:
                raise
            replace = False  # never delete what another run has just made
    diff = differences(existing, site)
    if not diff:
        return existing, "exists"
    if not replace:
        listed = "; ".join(f"{k}: {a!r} in Mihu, {b!r} in the site file"
                           for k, (a, b) in diff.items())
        err = ConnectorDiffers(f"connector {existing.uuid} for {site.phone_number} exists "
                               f"with other settings ({listed})")
        err.differences = diff  # type: ignore[attr-defined]
        raise err
    client.delete_connector(existing.uuid)
    return client.create_connector(site.api_body()), "replaced"


def provision(client: MihuClient, site: Site, replace: bool = False) -> dict[str, Any]:
    """Server first (connectors are pushed to it), then the connector. JSON-ready, no secrets."""
    server, server_action = ensure_server(client)
    connector, action = ensure_connector(client, site, replace=replace)
    return {"action": action, "server_action": server_action,
            "sip_connector_server": server.sip_connector_server,
            "connector": connector.model_dump(mode="json")}
