"""Typed API responses (shapes from seeds/000; list/server shapes are INFERENCE, mihu-api.md §8)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class _Model(BaseModel):
    model_config = ConfigDict(extra="allow")  # tolerate fields the docs did not show


class Pbx(_Model):
    registrar_server: str
    port: int
    username_extension: str


class Inbound(_Model):
    allowed_ip: str | None = None


class Auth(_Model):
    has_separate_credentials: bool = False
    username: str | None = None


class NormalizerOut(_Model):
    default_prefix: str | None = None
    condition_length: str | None = None
    condition_prefix: str | None = None


class Connector(_Model):
    pbx_extension_connector_uuid: str
    name: str | None = None
    status: str
    phone_number: str
    agent_uuid: str
    agent_name: str | None = None
    sip_connector_server: str | None = None
    connection_type: str
    setup_mode: str
    pbx: Pbx
    inbound: Inbound = Inbound()
    auth: Auth = Auth()
    normalizer: NormalizerOut | None = None
    # INFERENCE: the cloud's view of its REGISTER to the PBX ({state: pending|registered|
    # failed, code, reason, challenged}); only the status field is documented.
    registration: dict | None = None
    created_at: str | None = None
    updated_at: str | None = None

    @property
    def uuid(self) -> str:
        return self.pbx_extension_connector_uuid


class Pagination(_Model):
    current_page: int = 1
    per_page: int = 15
    total: int = 0
    last_page: int = 1
    has_more: bool = False


class ConnectorPage(_Model):
    items: list[Connector]
    pagination: Pagination


class ServerAssignment(_Model):
    assigned: bool
    sip_connector_server: str | None = None


class Call(_Model):
    """A call the agent places (POST /api/v1/call); sip_code/sip_reason are INFERENCE."""

    id: str
    status: str
    to: str | None = None  # the number as dialled, after the connector's normalizer
    sip_code: int | None = None
    sip_reason: str | None = None
