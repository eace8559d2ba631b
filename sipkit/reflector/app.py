"""The reflector's HTTPS/JSON API (aiohttp).

    GET  /healthz                      no token: "ok"
    GET  /v1/whoami                    the caller's public address as the reflector sees it
    POST /v1/reach                     {host, port, transports, user?, domain?} -> DNS + probes
    POST /v1/mirror                    a mirror id and the SIP address to send to
    GET  /v1/mirror/{id}               the exact bytes that arrived
    POST /v1/binding                   a binding id and the UDP address to open a flow to
    POST /v1/binding/{id}/run          {idle_s: [...], budget_s} -> which idle times the NAT kept

Errors are ``{"error": {"code", "message"}}`` with 400/401/403/404/409/413/422/429.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ..net.addresses import canonical_ip, hostport, parse_ip
from ..settings import is_hostname
from . import outside
from .config import ReflectorConfig
from .policy import RateLimiter, target_allowed
from .requestlog import RequestLog
from .sipside import SipSide
from .tokens import TokenBook

BAD_TOKENS_PER_MINUTE = 10
MAX_ADDRESSES = 2  # a name with more addresses: the first two allowed ones are probed
_SECRETISH = ("pass", "secret", "token", "auth")


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ReachBody(_Body):
    host: str = Field(min_length=1, max_length=253)
    port: int = Field(ge=1, le=65535)
    transports: list[Literal["udp", "tcp", "tls"]] = Field(min_length=1, max_length=3)
    user: str | None = Field(default=None, max_length=64, pattern=r"^[A-Za-z0-9._+*#-]+$")
    domain: str | None = Field(default=None, max_length=253)

    @field_validator("host", "domain")
    @classmethod
    def _host(cls, v: str | None) -> str | None:
        if v is not None and not (is_hostname(v) or parse_ip(v)):
            raise ValueError("must be a host name or an IP address")
        return v


class BindingRun(_Body):
    idle_s: list[float] = Field(min_length=1, max_length=10)
    budget_s: float = Field(gt=0)

    @field_validator("idle_s")
    @classmethod
    def _idles(cls, v: list[float]) -> list[float]:
        if any(x <= 0 or x > 3600 for x in v) or v != sorted(v):
            raise ValueError("must be growing idle times, each 0 < s <= 3600")
        return v


def _error(status: int, code: str, message: str, **more: Any) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}, **more},
                             status=status)


def loggable(body: Any) -> Any:
    """A body as the log may hold it: values of secret-looking keys are never written."""
    if isinstance(body, dict):
        return {k: "<not logged>" if any(s in str(k).lower() for s in _SECRETISH)
                else loggable(v) for k, v in body.items()}
    if isinstance(body, list):
        return [loggable(v) for v in body]
    return body


class Reflector:
    def __init__(self, cfg: ReflectorConfig, tokens: TokenBook, log: RequestLog):
        self.cfg, self.tokens, self.log = cfg, tokens, log
        self.sip = SipSide(cfg.public_ip, cfg.sip_port, cfg.limits, log)
        self.per_token = RateLimiter(cfg.limits.per_token_per_minute)
        self.per_target = RateLimiter(cfg.limits.per_target_per_minute)
        self.bad_tokens = RateLimiter(BAD_TOKENS_PER_MINUTE)  # per source address

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware],
                              client_max_size=self.cfg.limits.max_body_bytes)
        app.add_routes([
            web.get("/healthz", self.healthz), web.get("/v1/whoami", self.whoami),
            web.post("/v1/reach", self.reach), web.post("/v1/mirror", self.mirror_open),
            web.get("/v1/mirror/{id}", self.mirror_get),
            web.post("/v1/binding", self.binding_open),
            web.get("/v1/binding/{id}", self.binding_get),
            web.post("/v1/binding/{id}/run", self.binding_run)])
        return app

    # -- auth, limits, log ------------------------------------------------------------
    @web.middleware
    async def _middleware(self, request: web.Request, handler) -> web.StreamResponse:
        t0 = time.monotonic()
        request["caller"] = canonical_ip(request.remote or "")
        request["entry"] = request["body"] = None
        try:
            resp = await self._guarded(request, handler)
        except web.HTTPException as exc:  # the router's 404/405, _session's 404
            resp = _error(exc.status, "not_found" if exc.status == 404 else "http", exc.reason)
        except Exception as exc:  # noqa: BLE001 - a reflector bug: answer, log, keep serving
            resp = _error(500, "internal", "the reflector failed; its operator has the log")
            request["error"] = f"{type(exc).__name__}: {exc}"
        entry = request["entry"]
        self.log.api(remote=request["caller"], method=request.method, path=request.path,
                     status=resp.status, token=entry.name if entry else None,
                     body=loggable(request["body"]), error=request.get("error"),
                     ms=round((time.monotonic() - t0) * 1000, 1))
        return resp

    async def _guarded(self, request: web.Request, handler) -> web.StreamResponse:
        if request.path != "/healthz":
            scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
            entry = self.tokens.find(presented.strip()) if scheme.lower() == "bearer" else None
            if entry is None:
                if not self.bad_tokens.allow(request["caller"]):  # guessing tokens: slow down
                    return _error(429, "rate_limited", "too many requests without a valid token")
                return _error(401, "unauthorized", "a valid bearer token is required "
                              "(Authorization: Bearer <token>)")
            if not self.per_token.allow(entry.name):
                resp = _error(429, "rate_limited", "too many requests for this token")
                resp.headers["Retry-After"] = str(self.per_token.retry_after(entry.name))
                return resp
            request["entry"] = entry
        if request.can_read_body:
            try:
                request["body"] = await request.json()
            except web.HTTPRequestEntityTooLarge:
                return _error(413, "too_large",
                              f"request body over {self.cfg.limits.max_body_bytes} bytes")
            except ValueError:
                return _error(400, "bad_json", "the body must be JSON")
        return await handler(request)

    def _parse(self, model, request: web.Request):
        try:
            return model.model_validate(request["body"] or {}), None
        except ValidationError as err:
            problems = []
            for e in err.errors():
                field = ".".join(str(x) for x in e["loc"]) or "(body)"
                if e["type"] == "extra_forbidden":
                    problems.append(f"{field}: not accepted (the reflector never takes "
                                    "credentials or unknown fields)")
                else:
                    problems.append(f"{field}: {e['msg'].removeprefix('Value error, ')}")
            return None, _error(422, "invalid", "; ".join(problems))

    # -- handlers ---------------------------------------------------------------------
    async def healthz(self, request: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    async def whoami(self, request: web.Request) -> web.Response:
        return web.json_response({"address": request["caller"], "token": request["entry"].name,
                                  "sip": self.sip.address,
                                  "max_binding_s": self.cfg.limits.max_binding_s})

    async def reach(self, request: web.Request) -> web.Response:
        body, bad = self._parse(ReachBody, request)
        if bad:
            return bad
        entry, caller = request["entry"], request["caller"]
        dns = await outside.resolve(body.host, body.port, self.cfg.nameserver, self.cfg.timeout)
        allowed = [a for a in dns["addresses"] if target_allowed(a, caller, entry)]
        out: dict[str, Any] = {"caller": caller, "dns": dns, "probed": [],
                               "not_probed": [a for a in dns["addresses"] if a not in allowed]}
        if not dns["addresses"]:
            return web.json_response(out)
        if not allowed:
            return _error(403, "target_not_allowed",
                          f"{body.host} is {', '.join(dns['addresses'])} from here, not your "
                          f"address {caller}: the reflector probes only the address you call "
                          "from (or those your token's entry lists)", dns=dns, caller=caller)
        for ip in allowed[:MAX_ADDRESSES]:
            if not self.per_target.allow(ip):
                resp = _error(429, "rate_limited", f"too many probes towards {ip}; wait",
                              dns=dns, caller=caller)
                resp.headers["Retry-After"] = str(self.per_target.retry_after(ip))
                return resp
        jobs = [outside.probe(ip, body.port, t, host=body.host, user=body.user,
                              domain=body.domain, timeout=self.cfg.timeout,
                              local_ip=self.cfg.public_ip)
                for ip in allowed[:MAX_ADDRESSES] for t in dict.fromkeys(body.transports)]
        out["probed"] = list(await asyncio.gather(*jobs))
        return web.json_response(out)

    def _opened(self, kind: str, request: web.Request) -> web.Response:
        sess = self.sip.open(kind, request["entry"], request["caller"])
        if sess is None:
            return _error(429, "too_many_sessions", "too many open sessions for this token")
        return web.json_response({"id": sess.id, "ruri_user": f"sipkit-{kind}-{sess.id}",
                                  "udp": self.sip.address, "tcp": self.sip.address,
                                  "expires_s": self.cfg.limits.session_s,
                                  "max_bytes": self.cfg.limits.max_mirror_bytes})

    async def mirror_open(self, request: web.Request) -> web.Response:
        return self._opened("mirror", request)

    def _session(self, kind: str, request: web.Request):
        """The caller's session named in the path; HTTPNotFound (as JSON) otherwise."""
        sess = self.sip.get(request.match_info["id"], kind, request["entry"])
        if sess is None:
            raise web.HTTPNotFound(reason=f"no such {kind} id for this token")
        return sess

    async def mirror_get(self, request: web.Request) -> web.Response:
        sess = self._session("mirror", request)
        return web.json_response({"id": sess.id, "messages": sess.messages})

    async def binding_open(self, request: web.Request) -> web.Response:
        return self._opened("bind", request)

    async def binding_get(self, request: web.Request) -> web.Response:
        sess = self._session("bind", request)
        return web.json_response({"id": sess.id, "flow": hostport(*sess.flow) if sess.flow
                                  else None, "running": sess.running})

    async def binding_run(self, request: web.Request) -> web.Response:
        sess = self._session("bind", request)
        body, bad = self._parse(BindingRun, request)
        if bad:
            return bad
        if sess.flow is None:
            return _error(409, "no_flow", "no UDP flow yet: send the OPTIONS naming "
                          f"sipkit-bind-{sess.id} to {self.sip.address} first")
        if sess.running:
            return _error(409, "running", "this binding test is already running")
        if not target_allowed(sess.flow[0], request["caller"], request["entry"]) \
                or not self.per_target.allow(sess.flow[0]):
            return _error(429, "rate_limited", f"too many probes towards {sess.flow[0]}")
        budget = min(body.budget_s, self.cfg.limits.max_binding_s)
        return web.json_response(await self.sip.run_binding(sess, body.idle_s, budget))
