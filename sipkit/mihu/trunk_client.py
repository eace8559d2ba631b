"""The trunk endpoints of ``MihuClient`` (a mixin on its ``_send``: the same retries, error
tree and token handling as the connector endpoints).

Idempotent calls (GET, DELETE, PATCH and PUT with the same body, and the assign POST, whose
repetition assigns the same pair again) are retried; creates go through ``create_once``: one
POST, and after a lost answer a look-up by the trunk's key before anything is said.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from . import endpoints
from .errors import NotFoundError
from .responses import page_data, pages, parse
from .trunk_models import (
    ByoTrunk,
    ByoTrunkPage,
    SipTrunk,
    TrunkAssignment,
    TrunkConnection,
    TrunkConnectionPage,
    unwrap_sip_trunk,
    unwrap_sip_trunks,
)

if TYPE_CHECKING:
    from .client import MihuClient

_LIST_FIX = {404: "check it with `sipkit trunk list`"}


class TrunkApi:
    # -- Mihu SIP-trunk connections (mihu-api.md §2) -------------------------------------
    def list_trunk_connections(self: MihuClient, page: int = 1, per_page: int = 50
                               ) -> TrunkConnectionPage:
        data = self._send("GET", endpoints.TRUNK_CONNECTIONS, retry=True,
                          params={"page": page, "per_page": per_page})
        if isinstance(data, list):  # a bare list: one page holds everything
            data = {"items": data, "pagination": {"total": len(data)}}
        return parse(TrunkConnectionPage, page_data(data))

    def iter_trunk_connections(self: MihuClient) -> Iterator[TrunkConnection]:
        return pages(lambda page: self.list_trunk_connections(page=page))

    def find_trunk_connections(self: MihuClient, phone_number: str) -> list[TrunkConnection]:
        return [c for c in self.iter_trunk_connections() if c.phone_number == phone_number]

    def get_trunk_connection(self: MihuClient, uuid: str) -> TrunkConnection:
        # No get-one endpoint is documented: the list is (and it never returns secrets).
        for c in self.iter_trunk_connections():
            if c.uuid == uuid:
                return c
        raise NotFoundError(f"SIP-trunk connection {uuid} not found", status=404,
                            fix=_LIST_FIX[404])

    def create_trunk_connection(self: MihuClient, body: dict[str, Any]) -> TrunkConnection:
        def same() -> TrunkConnection | None:
            found = [c for c in self.find_trunk_connections(body["phone_number"])
                     if c.name == body["name"] and c.gateway == body["gateway"]]
            return found[-1] if found else None

        return self.create_once(endpoints.TRUNK_CONNECTIONS, body,
                                lambda data: parse(TrunkConnection, data), same)

    def delete_trunk_connection(self: MihuClient, uuid: str) -> None:
        self._send("DELETE", endpoints.TRUNK_CONNECTION.format(uuid=uuid), retry=True,
                   fixes=_LIST_FIX)

    def assign_trunk_connection(self: MihuClient, agent_uuid: str, connection_uuid: str,
                                force: bool = False) -> TrunkAssignment:
        # Retried: assigning the same connection to the same agent again changes nothing,
        # and the phone_in_use check does not count the agent's own binding.
        data = self._send("POST", endpoints.AGENT_SIP_TRUNK.format(uuid=agent_uuid), retry=True,
                          json={"connection_uuid": connection_uuid, "force": force},
                          fixes={409: "another agent answers this number: --force shares it "
                                      "(inbound calls go to the agent assigned last)",
                                 404: "check the agent UUID and `sipkit trunk list`"})
        return parse(TrunkAssignment, data)

    # -- Mihu external (BYO) trunks, keyed by (phone_number, channel) (§3) ---------------
    def list_byo_trunks(self: MihuClient, *, channel: str | None = None,
                        agent_uuid: str | None = None, phone_number: str | None = None,
                        page: int = 1, per_page: int = 50) -> ByoTrunkPage:
        params = {k: v for k, v in {"channel": channel, "agent_uuid": agent_uuid,
                                    "phone_number": phone_number, "page": page,
                                    "per_page": per_page}.items() if v is not None}
        data = self._send("GET", endpoints.BYO_TRUNKS, retry=True, params=params)
        return parse(ByoTrunkPage, page_data(data))

    def iter_byo_trunks(self: MihuClient, **filters: Any) -> Iterator[ByoTrunk]:
        return pages(lambda page: self.list_byo_trunks(page=page, **filters))

    def find_byo_trunk(self: MihuClient, phone_number: str, channel: str) -> ByoTrunk | None:
        for t in self.iter_byo_trunks(channel=channel, phone_number=phone_number):
            if _digits(t.number) == _digits(phone_number) and t.binding(channel).bound:
                return t
        return None

    def get_byo_trunk(self: MihuClient, phone_number: str, channel: str) -> ByoTrunk:
        found = self.find_byo_trunk(phone_number, channel)
        if found is None:
            raise NotFoundError(f"no external trunk for {phone_number} on {channel}",
                                status=404, fix=_LIST_FIX[404])
        return found

    def create_byo_trunk(self: MihuClient, body: dict[str, Any]) -> ByoTrunk:
        return self.create_once(
            endpoints.BYO_TRUNKS, body, lambda data: parse(ByoTrunk, data),
            lambda: self.find_byo_trunk(body["phone_number"], body["channel"]))

    def update_byo_trunk(self: MihuClient, body: dict[str, Any]) -> ByoTrunk:
        # PATCH sets the fields given: sending it twice leaves the same state, so retried.
        return parse(ByoTrunk, self._send("PATCH", endpoints.BYO_TRUNKS, retry=True, json=body,
                                          fixes=_LIST_FIX))

    def assign_byo_trunk(self: MihuClient, phone_number: str, channel: str,
                         agent_uuid: str) -> ByoTrunk:
        return parse(ByoTrunk, self._send(
            "PUT", endpoints.BYO_TRUNK_ASSIGN, retry=True, fixes=_LIST_FIX,
            json={"phone_number": phone_number, "channel": channel, "agent_uuid": agent_uuid}))

    def delete_byo_trunk(self: MihuClient, phone_number: str, channel: str) -> None:
        self._send("DELETE", endpoints.BYO_TRUNKS, retry=True, fixes=_LIST_FIX,
                   params={"phone_number": phone_number, "channel": channel})

    # -- the /sip-trunks API of seed 003 (§7), docs or SDK shape -------------------------
    def list_sip_trunks(self: MihuClient) -> list[SipTrunk]:
        data = self._send("GET", endpoints.SIP_TRUNKS, retry=True)
        return [parse(SipTrunk, t) for t in unwrap_sip_trunks(data)]

    def find_sip_trunks(self: MihuClient, name: str) -> list[SipTrunk]:
        return [t for t in self.list_sip_trunks() if t.name == name]

    def get_sip_trunk(self: MihuClient, trunk_id: str) -> SipTrunk:
        data = self._send("GET", endpoints.SIP_TRUNK.format(id=trunk_id), retry=True,
                          fixes=_LIST_FIX)
        return parse(SipTrunk, unwrap_sip_trunk(data))

    def create_sip_trunk(self: MihuClient, body: dict[str, Any]) -> SipTrunk:
        def same() -> SipTrunk | None:
            found = [t for t in self.find_sip_trunks(body["name"])
                     if t.host == body.get("host", body.get("address"))]
            return found[-1] if found else None

        return self.create_once(endpoints.SIP_TRUNKS, body,
                                lambda data: parse(SipTrunk, unwrap_sip_trunk(data)), same)

    def delete_sip_trunk(self: MihuClient, trunk_id: str) -> None:
        self._send("DELETE", endpoints.SIP_TRUNK.format(id=trunk_id), retry=True,
                   fixes=_LIST_FIX)


def _digits(number: str) -> str:
    # The BYO API accepts the number with or without its leading + (mihu-api.md §3.4).
    return number.lstrip("+")
