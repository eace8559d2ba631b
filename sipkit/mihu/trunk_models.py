"""Typed responses of the three trunk APIs (mihu-api.md §2, §3, §7). Passwords are in none of
them (the APIs never return them); a Mihu connection does not return its username either."""

from __future__ import annotations

from typing import Any

from pydantic import Field, model_validator

from ..net.addresses import split_hostport
from .models import Pagination, _Model


class TrunkConnection(_Model):
    """A Mihu SIP-trunk connection (POST /api/v1/channels/sip-trunk/connections)."""

    uuid: str
    name: str
    phone_number: str
    gateway: str
    secondary_gateway: str | None = None
    status: str | None = None
    created_at: str | None = None
    updated_at: str | None = None


class TrunkConnectionPage(_Model):
    items: list[TrunkConnection]
    pagination: Pagination


class TrunkAssignment(_Model):
    agent_uuid: str
    connection_uuid: str
    phone_number: str | None = None


class Binding(_Model):
    bound: bool = False
    agent_uuid: str | None = None
    agent_name: str | None = None


class ByoTrunk(_Model):
    """A BYO (external) trunk: the phone number's per-channel snapshot (create/update/assign
    answers carry ``channels``, list items ``bindings``). The SIP settings are not in it."""

    phone_number_uuid: str | None = None
    number: str
    is_external: bool | None = None
    source: str | None = None
    status: str | None = None
    channels: dict[str, Any] = Field(default_factory=dict)
    bindings: dict[str, Any] = Field(default_factory=dict)

    def binding(self, channel: str) -> Binding:
        raw = self.bindings.get(channel) or self.channels.get(channel) or {}
        return Binding.model_validate(raw if isinstance(raw, dict) else {})


class ByoTrunkPage(_Model):
    items: list[ByoTrunk]
    pagination: Pagination = Pagination()


class SipTrunk(_Model):
    """A trunk of the seed-003 /sip-trunks API, in one shape whichever the server speaks:
    the docs' ``{id, name, host, port, username, created_at}`` or the newer SDK's ``{id, name,
    address, transport, auth_username, provider, is_active, ...}`` (the research found both)."""

    id: str
    name: str
    host: str
    port: int | None = None
    username: str | None = None
    transport: str | None = None
    provider: str | None = None
    is_active: bool | None = None
    created_at: str | None = None
    updated_at: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _either_shape(cls, data: Any) -> Any:
        if not isinstance(data, dict) or "host" in data or "address" not in data:
            return data
        out = dict(data)
        address = str(out.pop("address"))
        try:
            host, port = split_hostport(address, 0)  # "host" or "host:port"
        except ValueError:
            host, port = address, 0  # shown as the server wrote it
        out["host"] = host.strip("[]")
        if port and out.get("port") is None:
            out["port"] = port
        if "username" not in out and "auth_username" in out:
            out["username"] = out.pop("auth_username")
        return out


def unwrap_sip_trunk(body: Any) -> Any:
    """The trunk inside ``{"sip_trunk": ...}`` (docs), ``{"trunk": ...}`` (SDK) or bare."""
    if isinstance(body, dict):
        for key in ("sip_trunk", "trunk"):
            if isinstance(body.get(key), dict):
                return body[key]
    return body


def unwrap_sip_trunks(body: Any) -> list:
    """The list inside ``{"trunks": [...]}`` (both shapes), ``{"sip_trunks": [...]}`` or bare."""
    if isinstance(body, dict):
        for key in ("trunks", "sip_trunks", "items", "data"):
            if isinstance(body.get(key), list):
                return body[key]
    return body if isinstance(body, list) else []
