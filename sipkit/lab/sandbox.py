"""The Mihu API sandbox: a real HTTP server on loopback with SQLite state.

It follows the documented contract (bearer auth, error envelope, 401/404/409/422, pagination,
idempotent allocate, release refused while connectors exist, passwords stored but never
returned) and adds fault injection for tests over real HTTP:

    POST /__sandbox__/faults   {"method": "POST", "path_prefix": "/api/v1/...", "times": 1,
                                "status": 429, "retry_after": 1}        answer this instead
                               {"stall_seconds": 5, ...}                  sleep before answering
                               {"drop_after_commit": true, ...}           do the work, then close
                                                                          the connection unanswered
    DELETE /__sandbox__/faults                                            clear them
    GET /__sandbox__/allowed_ips   allowed_ip of every connector (the lab's connector server
                                   enforces it)

With ``--cloud-agent`` it also behaves like the cloud behind the API (sipkit.lab.agents): each
connector gets a real UA that registers to the PBX as its extension and answers its calls;
views gain the cloud's ``registration`` state; ``POST /api/v1/call`` places a call from the
agent through the connector (``place_call``).

Its validation is written independently of sipkit.settings, so client and server do not
agree merely by sharing code. The three SIP-trunk APIs live in ``sandbox_trunks.py`` (same
file, same faults; routed by ``Trunks.owns``).

    python -m sipkit.lab.sandbox --db api.db --listen 127.0.0.4:8080 --token FILE \
        --connector-server 127.0.0.2 --allowed-file connector/allowed_ips [--cloud-agent]
"""

from __future__ import annotations

import argparse
import datetime as dt
import ipaddress
import json
import re
import signal
import sqlite3
import threading
import time
import uuid as uuidlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

BASE = "/api/v1/pbx_extension_connectors"
SERVER = BASE + "/sip_connector_server"
CALLS = "/api/v1/call"  # INFERENCE beyond the quickstart's POST (sipkit/mihu/endpoints.py)
FIELDS = ("agent_uuid", "phone_number", "registrar_server", "username_extension", "pbx_password",
          "allowed_ip", "setup_mode", "connection_type", "port", "auth_username", "auth_password",
          "normalizer")
REQUIRED = ("agent_uuid", "phone_number", "registrar_server", "username_extension",
            "pbx_password", "allowed_ip")

SCHEMA = """
create table if not exists connectors (
  uuid text primary key, phone_number text not null, agent_uuid text not null,
  body text not null,               -- the create body, passwords included (never returned)
  status text not null default 'active', created_at text not null, updated_at text not null);
create table if not exists account (id integer primary key check (id = 1), server text);
insert or ignore into account (id, server) values (1, null);
"""


class ApiFailure(Exception):
    def __init__(self, status: int, code: str, message: str, details: str = "",
                 field: str | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.details, self.field = (
            status, code, message, details, field)

    def body(self) -> dict:
        err = {"code": self.code, "details": self.details}
        if self.field:
            err["field"] = self.field
        return {"success": False, "message": self.message, "error": err}


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def query_one(query: dict[str, list[str]], name: str, default: str | None = None
              ) -> str | None:
    return query.get(name, [default])[0]


def paginate(items: list, query: dict[str, list[str]], default_per_page: int = 15) -> dict:
    """One page of ``items`` as {items, pagination} (mihu-api.md §0.2 style B)."""
    try:
        page = int(query_one(query, "page", "1"))
        per_page = int(query_one(query, "per_page", str(default_per_page)))
    except ValueError:
        raise ApiFailure(422, "VALIDATION_ERROR", "page and per_page must be integers",
                         field="page") from None
    if page < 1 or not 1 <= per_page <= 100:
        raise ApiFailure(422, "VALIDATION_ERROR", "page >= 1 and per_page 1-100",
                         field="per_page")
    total = len(items)
    last = max(1, -(-total // per_page))
    start = (page - 1) * per_page
    chunk = items[start: start + per_page]
    return {"items": chunk,
            "pagination": {"current_page": page, "per_page": per_page, "total": total,
                           "last_page": last, "from": start + 1 if chunk else None,
                           "to": start + len(chunk) if chunk else None,
                           "has_more": page < last}}


class Raw:
    """A reply body sent as it is, for an API with its own envelope (the /sip-trunks one)."""

    def __init__(self, body: dict | None):
        self.body = body


def validate(body: object) -> dict:
    if not isinstance(body, dict):
        raise ApiFailure(400, "BAD_REQUEST", "The request body must be a JSON object")
    for name in REQUIRED:
        if body.get(name) in (None, ""):
            raise ApiFailure(422, "VALIDATION_ERROR", f"The {name} field is required.",
                             field=name)
    unknown = set(body) - set(FIELDS)
    if unknown:
        name = sorted(unknown)[0]
        raise ApiFailure(422, "VALIDATION_ERROR", f"Unknown field {name}.", field=name)
    checks = [
        ("agent_uuid", lambda v: re.fullmatch(r"[0-9a-f-]{36}", str(v)), "must be a valid UUID"),
        ("phone_number", lambda v: re.fullmatch(r"\+[1-9][0-9]{6,14}", str(v)),
         "must be in E.164 format"),
        ("allowed_ip", lambda v: _is_ip(str(v)), "must be a valid IP address"),
        ("setup_mode", lambda v: v in ("both", "inbound", "outbound"),
         "must be one of both, inbound, outbound"),
        ("connection_type", lambda v: v in ("udp", "tls"), "must be one of udp, tls"),
        ("port", lambda v: isinstance(v, int) and 0 < v < 65536, "must be an integer 1-65535"),
        ("normalizer", lambda v: isinstance(v, dict) and all(
            isinstance(x, (str, type(None))) for x in v.values()), "must be an object of strings"),
    ]
    for name, ok, words in checks:
        if name in body and body[name] is not None and not ok(body[name]):
            raise ApiFailure(422, "VALIDATION_ERROR", f"The {name} {words}.", field=name)
    out = dict(body)
    out.setdefault("setup_mode", "both")
    out.setdefault("connection_type", "udp")
    out.setdefault("port", 5060)
    return out


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
        return True
    except ValueError:
        return False


class Sandbox:
    def __init__(self, db: str | Path, tokens: set[str], connector_server: str,
                 allowed_file: str | Path | None = None, agents=None):
        self.db = sqlite3.connect(str(db), check_same_thread=False, isolation_level=None)
        self.db.executescript(SCHEMA)
        self.lock = threading.Lock()
        self.tokens = tokens
        self.connector_server = connector_server
        self.faults: list[dict] = []
        self.allowed_file = Path(allowed_file) if allowed_file else None
        self.agents = agents  # sipkit.lab.agents.CloudAgents, or None: no cloud behind
        self.push()
        from .sandbox_trunks import Trunks  # the trunk APIs, in a module of their own

        self.trunks = Trunks(self)
        if self.agents is not None:
            for row in self.rows():
                self.agents.start(row[0], json.loads(row[1]))

    def push(self) -> None:
        """What the cloud does on every change: push the connectors' allowed_ip values to the
        SIP connector server (here, a file its Kamailio reads; replaced atomically)."""
        if self.allowed_file is None:
            return
        ips = sorted({json.loads(r[1])["allowed_ip"] for r in self.rows()})
        tmp = self.allowed_file.with_suffix(".tmp")
        tmp.write_text("".join(f"{ip}\n" for ip in ips))
        tmp.replace(self.allowed_file)

    # -- resources ------------------------------------------------------------------------
    def view(self, row) -> dict:
        uuid, body, status, created, updated = row[0], json.loads(row[1]), row[2], row[3], row[4]
        separate = body.get("auth_username") is not None
        return {
            "pbx_extension_connector_uuid": uuid,
            "name": f"{body['phone_number']} → ext {body['username_extension']}",
            "status": status, "phone_number": body["phone_number"],
            "agent_uuid": body["agent_uuid"], "agent_name": f"Agent {body['agent_uuid'][:8]}",
            "sip_connector_server": self.server(),
            "connection_type": body["connection_type"], "setup_mode": body["setup_mode"],
            "pbx": {"registrar_server": body["registrar_server"], "port": body["port"],
                    "username_extension": body["username_extension"]},
            "inbound": {"allowed_ip": body["allowed_ip"]},
            "auth": {"has_separate_credentials": separate,
                     "username": body.get("auth_username")},
            "normalizer": body.get("normalizer"),
            "created_at": created, "updated_at": updated} | (
            {"registration": self.agents.view(uuid)} if self.agents is not None else {})

    def server(self) -> str | None:
        return self.db.execute("select server from account").fetchone()[0]

    def rows(self, where: str = "", args: tuple = ()) -> list:
        return self.db.execute("select uuid, body, status, created_at, updated_at from connectors "
                               f"{where} order by created_at, rowid", args).fetchall()

    def create(self, body: object) -> dict:
        data = validate(body)
        with self.lock:
            if self.server() is None:
                raise ApiFailure(409, "NO_SIP_CONNECTOR_SERVER",
                                 "No SIP connector server is allocated to your account",
                                 "Allocate one first: POST " + SERVER)
            if self.rows("where phone_number = ?", (data["phone_number"],)):
                raise ApiFailure(409, "PHONE_NUMBER_IN_USE",
                                 "This phone number already has a PBX extension connector",
                                 field="phone_number")
            uid, now = str(uuidlib.uuid4()), _now()
            self.db.execute("insert into connectors values (?, ?, ?, ?, 'active', ?, ?)",
                            (uid, data["phone_number"], data["agent_uuid"], json.dumps(data),
                             now, now))
            self.push()
        if self.agents is not None:
            self.agents.start(uid, data)
        return self.view(self.rows("where uuid = ?", (uid,))[0])

    def get(self, uid: str) -> dict:
        rows = self.rows("where uuid = ?", (uid,))
        if not rows:
            raise ApiFailure(404, "NOT_FOUND", "PBX extension connector not found")
        return self.view(rows[0])

    def delete(self, uid: str) -> None:
        with self.lock:
            if self.db.execute("delete from connectors where uuid = ?", (uid,)).rowcount == 0:
                raise ApiFailure(404, "NOT_FOUND", "PBX extension connector not found")
            self.push()
        if self.agents is not None:
            self.agents.stop(uid)  # the cloud un-registers from the PBX

    def list(self, query: dict[str, list[str]]) -> dict:
        clauses, args = [], []
        for name in ("agent_uuid", "phone_number", "status"):
            if query_one(query, name):
                clauses.append(f"{name} = ?")
                args.append(query_one(query, name))
        rows = self.rows(("where " + " and ".join(clauses)) if clauses else "", tuple(args))
        return paginate([self.view(r) for r in rows], query)

    def server_state(self) -> dict:
        server = self.server()
        return {"assigned": server is not None, "sip_connector_server": server}

    def allocate(self) -> dict:
        with self.lock:
            if self.server() is None:
                self.db.execute("update account set server = ?", (self.connector_server,))
        return self.server_state()

    def release(self) -> None:
        with self.lock:
            if self.server() is None:
                raise ApiFailure(404, "NO_SIP_CONNECTOR_SERVER",
                                 "No SIP connector server is allocated to your account")
            count = len(self.rows())
            if count:
                raise ApiFailure(409, "SERVER_IN_USE",
                                 f"{count} PBX extension connector(s) still use the server",
                                 "Delete them first")
            self.db.execute("update account set server = null")

    # -- calls (the agent calls out through its connector) --------------------------------
    def place_call(self, body: object) -> dict:
        """POST /api/v1/call {agentId, participant: {number}, pbx_extension_connector_uuid?}:
        the number goes through the connector's normalizer, then the cloud dials it through
        the PBX. 201 with the call; its outcome (the PBX's SIP answer) in GET .../{id}."""
        from ..normalize import normalize
        from ..settings import Normalizer

        if not isinstance(body, dict) or not isinstance(body.get("participant"), dict):
            raise ApiFailure(422, "VALIDATION_ERROR", "The participant field is required.",
                             field="participant")
        number = str(body["participant"].get("number") or "")
        if not re.fullmatch(r"\+?[0-9]{2,15}", number):
            raise ApiFailure(422, "VALIDATION_ERROR", "The participant.number must be digits.",
                             field="participant.number")
        seconds = body.get("max_duration_seconds") or 30
        if not isinstance(seconds, (int, float)) or isinstance(seconds, bool) or seconds <= 0:
            raise ApiFailure(422, "VALIDATION_ERROR", "The max_duration_seconds must be a "
                             "positive number.", field="max_duration_seconds")
        agent, uid = body.get("agentId"), body.get("pbx_extension_connector_uuid")
        rows = self.rows("where uuid = ?", (str(uid),)) if uid else self.rows(
            "where agent_uuid = ?", (str(agent),))
        rows = [r for r in rows if json.loads(r[1])["setup_mode"] != "inbound"]
        if not rows:
            raise ApiFailure(404, "NOT_FOUND", "No PBX extension connector places calls for "
                             "this agent")
        if self.agents is None:
            raise ApiFailure(503, "NO_CLOUD", "This sandbox runs without a cloud behind it")
        data = json.loads(rows[0][1])
        rule = data.get("normalizer")
        dialled = normalize(number, Normalizer(**rule)).result if rule else number
        call = self.agents.call(rows[0][0], dialled, min(float(seconds), 60.0))
        return call | {"agentId": data["agent_uuid"], "participant": {"number": number}}

    def get_call(self, cid: str) -> dict:
        call = self.agents.call_view(cid) if self.agents is not None else None
        if call is None:
            raise ApiFailure(404, "NOT_FOUND", "Call not found")
        return call

    def take_fault(self, method: str, path: str) -> dict | None:
        with self.lock:
            for fault in self.faults:
                if fault.get("method", method) == method and path.startswith(
                        fault.get("path_prefix", "")):
                    fault["times"] = fault.get("times", 1) - 1
                    if fault["times"] <= 0:
                        self.faults.remove(fault)
                    return fault
        return None


class Handler(BaseHTTPRequestHandler):
    sandbox: Sandbox
    server_version = "sipkit-sandbox"
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt: str, *args) -> None:  # quiet; never logs headers or bodies
        pass

    def _reply(self, status: int, body: dict | None, headers: dict | None = None) -> None:
        data = json.dumps(body).encode() if body is not None else b""
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, str(v))
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> object:
        raw = self._raw
        if not raw:
            return None
        try:
            return json.loads(raw)
        except ValueError:
            raise ApiFailure(400, "BAD_REQUEST", "Malformed JSON") from None

    def _auth(self) -> None:
        header = self.headers.get("Authorization")
        if not header:
            raise ApiFailure(401, "MISSING_AUTH_TOKEN", "Authentication required",
                             "Send Authorization: Bearer <token>")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or token.strip() not in self.sandbox.tokens:
            raise ApiFailure(401, "INVALID_AUTH_TOKEN", "Invalid authentication token",
                             "The token is unknown, revoked or expired")

    def _handle(self, method: str) -> None:
        # Read the body before anything can answer: on a kept-alive connection an unread body
        # would be taken for the next request line.
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = 0
        self._raw = self.rfile.read(length) if length > 0 else b""
        url = urlparse(self.path)
        path = url.path.rstrip("/")
        sb = self.sandbox
        try:
            self._auth()
            if path.startswith("/__sandbox__"):
                return self._control(method, path)
            fault = sb.take_fault(method, path)
            if fault and fault.get("stall_seconds"):
                time.sleep(float(fault["stall_seconds"]))
            if fault and fault.get("status"):
                extra = {"Retry-After": fault["retry_after"]} if "retry_after" in fault else {}
                return self._reply(fault["status"], ApiFailure(
                    fault["status"], fault.get("code", "INJECTED"), "Injected fault").body(), extra)
            status, data = self._route(method, path, url.query)
            if fault and fault.get("drop_after_commit"):
                self.close_connection = True
                self.connection.shutdown(2)
                return None
            if isinstance(data, Raw):
                return self._reply(status, data.body)
            body = {"success": True, "data": data} if data is not None else {
                "success": True, "message": "OK"}
            return self._reply(status, body)
        except ApiFailure as exc:
            return self._reply(exc.status, exc.body())

    def _route(self, method: str, path: str, query: str) -> tuple[int, dict | Raw | None]:
        sb = self.sandbox
        if sb.trunks.owns(path):
            return sb.trunks.route(method, path, query, self._body)
        if path == SERVER:
            if method == "GET":
                return 200, sb.server_state()
            if method == "POST":
                return 200, sb.allocate()
            if method == "DELETE":
                sb.release()
                return 200, None
        elif path == BASE:
            if method == "GET":
                return 200, sb.list(parse_qs(query))
            if method == "POST":
                return 201, sb.create(self._body())
        elif path == CALLS:
            if method == "POST":
                return 201, sb.place_call(self._body())
        elif path.startswith(CALLS + "/") and path.count("/") == 4:
            if method == "GET":
                return 200, sb.get_call(path.rsplit("/", 1)[1])
        elif path.startswith(BASE + "/") and path.count("/") == 4:
            uid = path.rsplit("/", 1)[1]
            if method == "GET":
                return 200, sb.get(uid)
            if method == "DELETE":
                sb.delete(uid)
                return 200, None
        else:
            raise ApiFailure(404, "NOT_FOUND", "Endpoint not found")
        raise ApiFailure(405, "METHOD_NOT_ALLOWED", f"{method} is not allowed here")

    def _control(self, method: str, path: str) -> None:
        sb = self.sandbox
        if path == "/__sandbox__/faults" and method == "POST":
            fault = self._body()
            if not isinstance(fault, dict):
                raise ApiFailure(400, "BAD_REQUEST", "a fault is a JSON object")
            with sb.lock:
                sb.faults.append(fault)
            return self._reply(200, {"success": True, "data": fault})
        if path == "/__sandbox__/faults" and method == "DELETE":
            with sb.lock:
                sb.faults.clear()
            return self._reply(200, {"success": True})
        if path == "/__sandbox__/allowed_ips" and method == "GET":
            ips = sorted({json.loads(r[1])["allowed_ip"] for r in sb.rows()})
            return self._reply(200, {"success": True, "data": ips})
        raise ApiFailure(404, "NOT_FOUND", "Endpoint not found")

    def __getattr__(self, name: str):
        # Every method (TRACE, QUERY, ...) gets the JSON envelope, not http.server's 501 page.
        if name.startswith("do_"):
            return lambda: self._handle(name[3:])
        raise AttributeError(name)


def make_server(db: str | Path, host: str, port: int, tokens: set[str],
                connector_server: str, allowed_file: str | Path | None = None,
                cloud_agent: bool = False) -> ThreadingHTTPServer:
    agents = None
    if cloud_agent:
        from .agents import CloudAgents

        agents = CloudAgents(connector_server)
    sandbox = Sandbox(db, tokens, connector_server, allowed_file, agents)
    handler = type("BoundHandler", (Handler,), {"sandbox": sandbox})
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    server.sandbox = sandbox  # type: ignore[attr-defined]
    return server


def main() -> None:
    ap = argparse.ArgumentParser(description="Mihu API sandbox")
    ap.add_argument("--db", required=True)
    ap.add_argument("--listen", required=True, metavar="IP:PORT")
    ap.add_argument("--token", required=True, help="file holding the accepted bearer token")
    ap.add_argument("--connector-server", required=True, help="address allocate hands out")
    ap.add_argument("--allowed-file", help="where to push the connectors' allowed_ip values")
    ap.add_argument("--cloud-agent", action="store_true",
                    help="run a registering, answering UA for each connector (the lab cloud)")
    args = ap.parse_args()
    host, port = args.listen.rsplit(":", 1)
    token = Path(args.token).read_text().strip()
    server = make_server(args.db, host, int(port), {token}, args.connector_server,
                         args.allowed_file, args.cloud_agent)
    print(f"sandbox ready on http://{host}:{server.server_address[1]}", flush=True)
    agents = server.sandbox.agents

    def bye(*_):  # SIGTERM (lab down): the agents un-register first
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, bye)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        if agents is not None:
            agents.stop_all()


if __name__ == "__main__":
    # Serve from the importable module, not this __main__ copy: sandbox_trunks imports Raw and
    # ApiFailure from sipkit.lab.sandbox, and isinstance/except must see the same classes.
    from sipkit.lab import sandbox as _module

    _module.main()
