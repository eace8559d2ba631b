"""For the checks: which SIP connector server the API has for this account."""

from __future__ import annotations

import asyncio

from .client import MihuClient
from .config import ApiSettings
from .errors import ApiError


def _assigned(api: ApiSettings) -> tuple[str | None, str | None]:
    try:
        with MihuClient.from_settings(api, timeout=5.0) as client:
            state = client.get_server()
    except ApiError as exc:
        return None, f"could not ask the Mihu API for the connector server: {exc}"
    if not state.assigned or not state.sip_connector_server:
        return None, ("no SIP connector server is allocated to this account yet: "
                      "`sipkit server allocate` (or `sipkit check --create`) allocates one")
    return state.sip_connector_server, None


async def assigned_server(api: ApiSettings) -> tuple[str | None, str | None]:
    """(address, None) or (None, why not). Runs the sync client off the event loop."""
    return await asyncio.to_thread(_assigned, api)


def _exists(api: ApiSettings, phone_number: str) -> bool | None:
    try:
        with MihuClient.from_settings(api, timeout=5.0) as client:
            return client.find_connector(phone_number) is not None
    except ApiError:
        return None


async def connector_exists(api: ApiSettings | None, phone_number: str) -> bool | None:
    """True/False from the API; None when the API is not configured or not answering."""
    if api is None or not api.configured:
        return None
    return await asyncio.to_thread(_exists, api, phone_number)
