"""The sandbox's three trunk APIs (mihu-api.md §2, §3, §7), on the sandbox's SQLite file.

- Mihu SIP-trunk connections: create, list, delete; assign one to an agent (409 phone_in_use
  when another agent answers the number, unless ``force``; the agent's old binding goes).
  A number may have several connections (the docs say nothing of uniqueness), so only the
  client's look-up keeps a lost answer from making a second one.
- Mihu external (BYO) trunks under /phone-numbers/trunks, keyed by (phone_number, channel):
  create (409 when the pair exists or the agent serves another number on the channel), PATCH
  (partial; an empty string clears a credential), PUT assign, DELETE ?phone_number=&channel=,
  list (one row per number, with its bindings, paginated).
- The /sip-trunks API of seed 003 with its own envelopes and errors (``{"error": {code,
  message, param, type}}``). It accepts the docs' and the SDK's request shape and answers in the
  docs' shape (``{"sip_trunk": ...}``) or, with ``shape = "sdk"``, the SDK's (``{"trunk": ...}``).

Passwords are stored and never returned; a connection's username is not returned either. The
validation is written from the research, not from sipkit.settings.
"""

from __future__ import annotations

import ipaddress
import json
import re
import uuid as uuidlib
from collections.abc import Callable
from typing import Any, ClassVar
from urllib.parse import parse_qs

from .sandbox import ApiFailure, Raw, Sandbox, _now, paginate, query_one

CONNECTIONS = "/api/v1/channels/sip-trunk/connections"
AGENT_TRUNK = re.compile(r"/api/v1/agents/([^/]+)/channels/call/sip-trunk")
BYO = "/api/v1/phone-numbers/trunks"
SIP_TRUNKS = "/api/v1/sip-trunks"

SCHEMA = """
create table if not exists trunk_connections (
  uuid text primary key, phone_number text not null, body text not null,
  status text not null default 'active', created_at text not null, updated_at text not null);
create table if not exists trunk_assignments (
  agent_uuid text primary key, connection_uuid text not null, phone_number text not null,
  assigned_at text not null);
create table if not exists byo_trunks (
  phone_number text not null, channel text not null, number_uuid text not null,
  agent_uuid text not null, body text not null, created_at text not null,
  updated_at text not null, primary key (phone_number, channel));
create table if not exists sip_trunks (
  id text primary key, name text not null, body text not null, created_at text not null,
  updated_at text not null);
"""

_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_E164 = re.compile(r"\+[1-9][0-9]{6,14}")
# A provider's SIP host: a name or an IP (IPv6 in brackets), optionally :port; no scheme.
_HOST = re.compile(r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.-]{0,253}[A-Za-z0-9])?)"
                   r"(?::[0-9]{1,5})?")


def _fail(field: str, words: str) -> ApiFailure:
    return ApiFailure(422, "VALIDATION_ERROR", f"The {field} {words}.", field=field)


def _object(body: object, failure: type[ApiFailure] = ApiFailure) -> dict:
    if not isinstance(body, dict):
        raise failure(400, "BAD_REQUEST", "The request body must be a JSON object")
    return body


def _string(body: dict, name: str, *, required: bool = False, max_len: int = 255,
            nullable: bool = False, fail: Callable[[str, str], ApiFailure] = _fail) -> None:
    value = body.get(name)
    if value is None or value == "":
        if required:
            raise fail(name, "field is required")
        if value is None and name in body and not nullable:
            raise fail(name, "must be a string")
        return
    if not isinstance(value, str):
        raise fail(name, "must be a string")
    if len(value) > max_len:
        raise fail(name, f"may not be greater than {max_len} characters")


def _host(body: dict, name: str, fail: Callable[[str, str], ApiFailure] = _fail) -> None:
    value = body.get(name)
    if not isinstance(value, str) or not value:
        return
    match = _HOST.fullmatch(value)
    if not match or re.fullmatch(r"\+?[0-9]+", value) or not _v6_ok(match.group(1)):
        raise fail(name, "must be a SIP host name or IP address, without a scheme")


def _v6_ok(host: str) -> bool:
    if not host.startswith("["):
        return True
    try:
        ipaddress.IPv6Address(host[1:-1])
    except ValueError:
        return False
    return True


def _known(body: dict, allowed: tuple[str, ...], prefix: str = "",
           fail: Callable[[str, str], ApiFailure] = _fail) -> None:
    unknown = sorted(set(body) - set(allowed))
    if unknown:
        raise fail(prefix + unknown[0], "field is not allowed")


def _port(body: dict, name: str, field: str,
          fail: Callable[[str, str], ApiFailure] = _fail) -> None:
    value = body.get(name)
    if name in body and (isinstance(value, bool) or not isinstance(value, int)
                         or not 0 < value < 65536):
        raise fail(field, "must be an integer between 1 and 65535")


def _enum(body: dict, name: str, values: tuple[str, ...], *, required: bool = False,
          fail: Callable[[str, str], ApiFailure] = _fail) -> None:
    value = body.get(name)
    if value is None:
        if required:
            raise fail(name, "field is required")
        return
    if value not in values:
        raise fail(name, f"must be one of {', '.join(values)}")


def _uuid(body: dict, name: str) -> None:
    value = body.get(name)
    if value is None or value == "":
        raise _fail(name, "field is required")
    if not isinstance(value, str) or not _UUID.fullmatch(value):
        raise _fail(name, "must be a valid UUID")


def _split(address: str) -> tuple[str, int]:
    """The SDK's ``address``: ``host``, ``host:port`` or ``[v6]:port``."""
    match = re.fullmatch(r"(\[[^\]]+\]|[^:]+):([0-9]{1,5})", address)
    if not match:
        return address, 5060
    if not 0 < int(match.group(2)) < 65536:
        raise _sfail("address", "has a port outside 1-65535")
    return match.group(1), int(match.group(2))


class SovereignFailure(ApiFailure):
    """An error of the /sip-trunks API, in its envelope (doc.hmsovereign.com error codes)."""

    KINDS: ClassVar[dict[int, str]] = {400: "invalid_request_error", 404: "not_found_error", 422: "invalid_request_error"}

    def body(self) -> dict:
        err = {"code": self.code.lower(), "message": self.message,
               "type": self.KINDS.get(self.status, "api_error")}
        if self.field:
            err["param"] = self.field
        return {"error": err}


def _sfail(field: str, words: str) -> ApiFailure:
    return SovereignFailure(422, "VALIDATION_ERROR", f"The {field} {words}.", field=field)


def _sovereign(read_body: Callable[[], object]) -> Callable[[], object]:
    """The body reader, its errors (malformed JSON) in the /sip-trunks envelope."""
    def read() -> object:
        try:
            return read_body()
        except ApiFailure as exc:
            raise SovereignFailure(exc.status, exc.code, exc.message, exc.details,
                                   exc.field) from None
    return read


class Trunks:
    def __init__(self, sandbox: Sandbox):
        self.sb = sandbox
        self.db = sandbox.db
        self.db.executescript(SCHEMA)
        self.shape = "docs"  # how /sip-trunks answers: "docs" or "sdk" (tests switch it)

    @staticmethod
    def owns(path: str) -> bool:
        return (path in (CONNECTIONS, BYO, BYO + "/assign", SIP_TRUNKS)
                or path.startswith((CONNECTIONS + "/", SIP_TRUNKS + "/"))
                or AGENT_TRUNK.fullmatch(path) is not None)

    def route(self, method: str, path: str, query: str, read_body: Callable[[], object]
              ) -> tuple[int, Any]:
        q = parse_qs(query)
        if path.startswith(SIP_TRUNKS):
            read_body = _sovereign(read_body)
        routes: dict[tuple[str, str], Callable[[], tuple[int, Any]]] = {
            ("POST", CONNECTIONS): lambda: (201, self.create_connection(read_body())),
            ("GET", CONNECTIONS): lambda: (200, paginate(self.connections(), q, 50)),
            ("POST", BYO): lambda: (201, self.create_byo(read_body())),
            ("PATCH", BYO): lambda: (200, self.update_byo(read_body())),
            ("GET", BYO): lambda: (200, self.list_byo(q)),
            ("DELETE", BYO): lambda: (200, self.delete_byo(q)),
            ("PUT", BYO + "/assign"): lambda: (200, self.assign_byo(read_body())),
            ("POST", SIP_TRUNKS): lambda: (201, Raw(self.create_sip_trunk(read_body()))),
            ("GET", SIP_TRUNKS): lambda: (200, Raw({"trunks": self.sip_trunks()})),
        }
        if (method, path) in routes:
            return routes[(method, path)]()
        if path.startswith(CONNECTIONS + "/") and path.count("/") == 6:
            if method == "DELETE":
                return 200, self.delete_connection(path.rsplit("/", 1)[1])
        elif match := AGENT_TRUNK.fullmatch(path):
            if method == "POST":
                return 200, self.assign_connection(match.group(1), read_body())
        elif path.startswith(SIP_TRUNKS + "/") and path.count("/") == 4:
            trunk_id = path.rsplit("/", 1)[1]
            if method == "GET":
                return 200, Raw(self._wrap(self.sip_trunk(trunk_id)))
            if method == "DELETE":
                self.delete_sip_trunk(trunk_id)
                return (204, Raw(None)) if self.shape == "docs" else (200, Raw({"success": True}))
        elif path in (CONNECTIONS, BYO, BYO + "/assign", SIP_TRUNKS):
            failure = SovereignFailure if path == SIP_TRUNKS else ApiFailure
            raise failure(405, "METHOD_NOT_ALLOWED", f"{method} is not allowed here")
        else:
            failure = SovereignFailure if path.startswith(SIP_TRUNKS) else ApiFailure
            raise failure(404, "NOT_FOUND", "Endpoint not found")
        failure = SovereignFailure if path.startswith(SIP_TRUNKS) else ApiFailure
        raise failure(405, "METHOD_NOT_ALLOWED", f"{method} is not allowed here")

    # -- Mihu SIP-trunk connections -------------------------------------------------------
    @staticmethod
    def _connection_view(row) -> dict:
        uid, body, status, created, updated = row[0], json.loads(row[1]), row[2], row[3], row[4]
        return {"uuid": uid, "name": body["name"], "phone_number": body["phone_number"],
                "gateway": body["gateway"], "secondary_gateway": body.get("secondary_gateway"),
                "status": status, "created_at": created, "updated_at": updated}

    def _connection_rows(self, where: str = "", args: tuple = ()) -> list:
        return self.db.execute("select uuid, body, status, created_at, updated_at from "
                               f"trunk_connections {where} order by created_at, rowid",
                               args).fetchall()

    def connections(self) -> list[dict]:
        return [self._connection_view(r) for r in self._connection_rows()]

    def create_connection(self, body: object) -> dict:
        data = _object(body)
        fields = ("name", "phone_number", "gateway", "username", "password", "secondary_gateway")
        _known(data, fields)
        for name in fields[:5]:
            _string(data, name, required=True, max_len=32 if name == "phone_number" else 255)
        _string(data, "secondary_gateway", nullable=True)
        _host(data, "gateway")
        _host(data, "secondary_gateway")
        uid, now = str(uuidlib.uuid4()), _now()
        with self.sb.lock:  # the number is stored exactly as sent (no normalisation)
            self.db.execute("insert into trunk_connections values (?, ?, ?, 'active', ?, ?)",
                            (uid, data["phone_number"], json.dumps(data), now, now))
        return self._connection_view(self._connection_rows("where uuid = ?", (uid,))[0])

    def delete_connection(self, uid: str) -> None:
        with self.sb.lock:
            if self.db.execute("delete from trunk_connections where uuid = ?",
                               (uid,)).rowcount == 0:
                raise ApiFailure(404, "NOT_FOUND", "SIP trunk connection not found")
            # "removes agent assignments that depend on it" (the docs index)
            self.db.execute("delete from trunk_assignments where connection_uuid = ?", (uid,))

    def assign_connection(self, agent_uuid: str, body: object) -> dict:
        if not _UUID.fullmatch(agent_uuid):
            raise ApiFailure(404, "NOT_FOUND", "Agent not found")
        data = _object(body)
        _known(data, ("connection_uuid", "force"))
        _uuid(data, "connection_uuid")
        force = data.get("force", False)
        if not isinstance(force, bool):
            raise _fail("force", "field must be true or false")
        with self.sb.lock:
            rows = self._connection_rows("where uuid = ?", (data["connection_uuid"],))
            if not rows:
                raise _fail("connection_uuid", "is not an existing SIP trunk connection")
            number = json.loads(rows[0][1])["phone_number"]
            others = self.db.execute(
                "select agent_uuid from trunk_assignments where phone_number = ? and "
                "agent_uuid != ?", (number, agent_uuid)).fetchall()
            if others and not force:
                raise ApiFailure(409, "phone_in_use",
                                 f"{number} is already used by agent {others[0][0]}",
                                 "Send force: true to share the number (inbound calls go to "
                                 "the agent assigned last)", field="connection_uuid")
            # One binding per agent: an old one is torn down.
            self.db.execute("insert or replace into trunk_assignments values (?, ?, ?, ?)",
                            (agent_uuid, data["connection_uuid"], number, _now()))
        return {"agent_uuid": agent_uuid, "connection_uuid": data["connection_uuid"],
                "phone_number": number}

    # -- Mihu external (BYO) trunks ----------------------------------------------------
    def _byo_rows(self, where: str = "", args: tuple = ()) -> list:
        return self.db.execute("select phone_number, channel, number_uuid, agent_uuid, body, "
                               f"created_at, updated_at from byo_trunks {where} "
                               "order by created_at, rowid", args).fetchall()

    def _bindings(self, number: str) -> dict:
        out = {}
        for row in self._byo_rows("where phone_number = ?", (number,)):
            out[row[1]] = {"bound": True, "agent_uuid": row[3],
                           "agent_name": f"Agent {row[3][:8]}"}
        return out

    def _snapshot(self, number: str) -> dict:
        """The per-channel answer of create, update and assign (mihu-api.md §3.1)."""
        bound = self._bindings(number)
        rows = self._byo_rows("where phone_number = ?", (number,))
        call = bound.get("call", {"bound": False, "agent_uuid": None, "agent_name": None})
        return {"phone_number_uuid": rows[0][2] if rows else None, "number": number,
                "is_external": True, "source": "external",
                "channels": {"call": {"capable": True, "enabled": "call" in bound, **call},
                             "whatsapp": bound.get("whatsapp", {
                                 "bound": False, "agent_uuid": None, "agent_name": None})}}

    @staticmethod
    def _sip(data: dict) -> None:
        sip = data.get("sip")
        if sip is None:
            return
        if not isinstance(sip, dict):
            raise _fail("sip", "must be an object")
        if data.get("channel") != "call":
            raise _fail("sip", "is only for the call channel")
        _known(sip, ("gateway", "port", "username", "password", "secondary_gateway"), "sip.")

        def fail(name: str, words: str) -> ApiFailure:
            return _fail(f"sip.{name}", words)

        for name in ("gateway", "username", "password", "secondary_gateway"):
            _string(sip, name, nullable=True, fail=fail)
        _host(sip, "gateway", fail)
        _host(sip, "secondary_gateway", fail)
        _port(sip, "port", "sip.port")

    def _byo_common(self, data: dict, allowed: tuple[str, ...]) -> None:
        _known(data, allowed)
        _string(data, "phone_number", required=True, max_len=32)
        if not _E164.fullmatch(data["phone_number"]):
            raise _fail("phone_number", "must be in E.164 format, e.g. +12345678901")
        _enum(data, "channel", ("call", "whatsapp"), required=True)
        _string(data, "name")
        _enum(data, "direction", ("inbound", "outbound", "both"))
        if "additional_settings" in data and not isinstance(data["additional_settings"], dict):
            raise _fail("additional_settings", "must be an object")

    def _agent_busy(self, agent: str, channel: str, number: str) -> None:
        other = self.db.execute("select phone_number from byo_trunks where agent_uuid = ? and "
                                "channel = ? and phone_number != ?",
                                (agent, channel, number)).fetchone()
        if other:
            raise ApiFailure(409, "AGENT_CHANNEL_IN_USE",
                             f"The agent already serves {other[0]} on the {channel} channel",
                             field="agent_uuid")

    def create_byo(self, body: object) -> dict:
        data = _object(body)
        self._byo_common(data, ("phone_number", "agent_uuid", "channel", "name", "direction",
                                "sip", "additional_settings"))
        _uuid(data, "agent_uuid")
        self._sip(data)
        number, channel = data["phone_number"], data["channel"]
        stored = {"name": data.get("name") or f"{channel}_trunk_{number.lstrip('+')}",
                  "direction": data.get("direction", "both"), "sip": data.get("sip") or {},
                  "additional_settings": data.get("additional_settings") or {}}
        with self.sb.lock:
            if self._byo_rows("where phone_number = ? and channel = ?", (number, channel)):
                raise ApiFailure(409, "TRUNK_EXISTS",
                                 f"{number} is already bound on the {channel} channel",
                                 field="phone_number")
            self._agent_busy(data["agent_uuid"], channel, number)
            rows = self._byo_rows("where phone_number = ?", (number,))
            number_uuid, now = rows[0][2] if rows else str(uuidlib.uuid4()), _now()
            self.db.execute("insert into byo_trunks values (?, ?, ?, ?, ?, ?, ?)",
                            (number, channel, number_uuid, data["agent_uuid"],
                             json.dumps(stored), now, now))
            return self._snapshot(number)

    def _locate(self, data: dict) -> tuple:
        rows = self._byo_rows("where phone_number = ? and channel = ?",
                              (data["phone_number"], data["channel"]))
        if not rows:
            raise ApiFailure(404, "NOT_FOUND", "External trunk not found")
        return rows[0]

    def update_byo(self, body: object) -> dict:
        data = _object(body)
        self._byo_common(data, ("phone_number", "channel", "name", "direction", "sip",
                                "additional_settings"))
        self._sip(data)
        with self.sb.lock:
            row = self._locate(data)
            stored = json.loads(row[4])
            for name in ("name", "direction"):
                if data.get(name):
                    stored[name] = data[name]
            for name, value in (data.get("sip") or {}).items():  # partial; "" clears
                if value == "":
                    stored["sip"].pop(name, None)
                else:
                    stored["sip"][name] = value
            if "additional_settings" in data:
                stored["additional_settings"] = data["additional_settings"]
            self.db.execute("update byo_trunks set body = ?, updated_at = ? where "
                            "phone_number = ? and channel = ?",
                            (json.dumps(stored), _now(), row[0], row[1]))
            return self._snapshot(row[0])

    def assign_byo(self, body: object) -> dict:
        data = _object(body)
        self._byo_common(data, ("phone_number", "channel", "agent_uuid"))
        _uuid(data, "agent_uuid")
        with self.sb.lock:
            row = self._locate(data)
            self._agent_busy(data["agent_uuid"], row[1], row[0])
            self.db.execute("update byo_trunks set agent_uuid = ?, updated_at = ? where "
                            "phone_number = ? and channel = ?",
                            (data["agent_uuid"], _now(), row[0], row[1]))
            return self._snapshot(row[0])

    def delete_byo(self, q: dict[str, list[str]]) -> None:
        number, channel = query_one(q, "phone_number"), query_one(q, "channel")
        if not number:
            raise _fail("phone_number", "field is required")
        if channel not in ("call", "whatsapp"):
            raise _fail("channel", "must be one of call, whatsapp")
        number = number if number.startswith("+") else "+" + number.strip()  # + optional
        with self.sb.lock:
            if self.db.execute("delete from byo_trunks where phone_number = ? and channel = ?",
                               (number, channel)).rowcount == 0:
                raise ApiFailure(404, "NOT_FOUND", "External trunk not found")

    def list_byo(self, q: dict[str, list[str]]) -> dict:
        channel, agent = query_one(q, "channel"), query_one(q, "agent_uuid")
        digits = (query_one(q, "phone_number") or "").lstrip("+")  # a number substring
        numbers: dict[str, str] = {}
        for row in self._byo_rows():
            if (channel and row[1] != channel) or (agent and row[3] != agent) or \
                    digits not in row[0]:
                continue
            numbers.setdefault(row[0], row[2])
        items = [{"phone_number_uuid": uid, "number": number, "type": "local",
                  "is_external": True, "source": "external", "status": "active",
                  "bindings": self._bindings(number)} for number, uid in numbers.items()]
        return paginate(items, q, 50)

    # -- the /sip-trunks API of seed 003 ------------------------------------------------
    def _sip_trunk_view(self, row) -> dict:
        tid, name, body, created, updated = row
        body = json.loads(body)
        if self.shape == "docs":
            return {"id": tid, "name": name, "host": body["host"], "port": body["port"],
                    "username": body.get("username"), "created_at": created}
        address = body["host"] if body["port"] == 5060 else f"{body['host']}:{body['port']}"
        return {"id": tid, "org_id": "org_sandbox", "name": name,
                "provider": body.get("provider"), "address": address,
                "transport": body.get("transport", "udp"),
                "auth_username": body.get("username"), "is_active": True,
                "created_at": created, "updated_at": updated}

    def _wrap(self, view: dict) -> dict:
        return {"sip_trunk" if self.shape == "docs" else "trunk": view}

    def _sip_rows(self, where: str = "", args: tuple = ()) -> list:
        return self.db.execute("select id, name, body, created_at, updated_at from sip_trunks "
                               f"{where} order by created_at, rowid", args).fetchall()

    def sip_trunks(self) -> list[dict]:
        return [self._sip_trunk_view(r) for r in self._sip_rows()]

    def sip_trunk(self, trunk_id: str) -> dict:
        rows = self._sip_rows("where id = ?", (trunk_id,))
        if not rows:
            raise SovereignFailure(404, "NOT_FOUND", "SIP trunk not found")
        return self._sip_trunk_view(rows[0])

    def create_sip_trunk(self, body: object) -> dict:
        """The docs' request (name, host, port, username, password: seed 003) or the SDK's
        (name, provider, address, transport, auth_username, auth_password)."""
        data = _object(body, SovereignFailure)
        sdk = "address" in data
        fields = ("name", "provider", "address", "transport", "auth_username",
                  "auth_password") if sdk else ("name", "host", "port", "username", "password")
        _known(data, fields, fail=_sfail)
        required = ("name", "provider", "address") if sdk else ("name", "host", "username",
                                                              "password")
        for name in fields:
            if name != "port":
                _string(data, name, required=name in required, fail=_sfail)
        _host(data, "address" if sdk else "host", _sfail)
        _port(data, "port", "port", _sfail)
        _enum(data, "transport", ("udp", "tcp", "tls"), fail=_sfail)
        host, port = (data["address"], 5060) if sdk else (data["host"], data.get("port", 5060))
        if sdk:
            host, port = _split(host)
        stored = {"host": host, "port": port, "provider": data.get("provider"),
                  "transport": data.get("transport", "udp"),
                  "username": data.get("auth_username" if sdk else "username"),
                  "password": data.get("auth_password" if sdk else "password")}
        tid, now = str(uuidlib.uuid4()), _now()
        with self.sb.lock:
            self.db.execute("insert into sip_trunks values (?, ?, ?, ?, ?)",
                            (tid, data["name"], json.dumps(stored), now, now))
        return self._wrap(self.sip_trunk(tid))

    def delete_sip_trunk(self, trunk_id: str) -> None:
        with self.sb.lock:
            if self.db.execute("delete from sip_trunks where id = ?", (trunk_id,)).rowcount == 0:
                raise SovereignFailure(404, "NOT_FOUND", "SIP trunk not found")
