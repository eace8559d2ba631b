"""httpx client for the PBX-extension-connector endpoints.

Retries: GET and DELETE (idempotent) on 429/502/503/504 and transport errors, with exponential
backoff or the server's Retry-After, bounded in count and total time. POST create is never
retried blindly (a lost response would make a duplicate): see ``create_connector``.
The token lives only in the Authorization header; it is in no message, log or repr.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx

from .. import __version__
from . import endpoints
from .config import ApiSettings, load_token  # noqa: F401  (re-exported)
from .errors import (
    BY_STATUS,
    ApiError,
    ConfigError,
    RateLimitError,
    ServerError,
    TransportError,
)
from .models import Call, Connector, ConnectorPage, ServerAssignment
from .responses import M, page_data, pages
from .trunk_client import TrunkApi

RETRY_STATUS = {429, 502, 503, 504}


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    if value.strip().isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
        return max(0.0, when.timestamp() - time.time())
    except (TypeError, ValueError):
        return None


class MihuClient(TrunkApi):
    def __init__(self, base_url: str, token: str, *, timeout: float = 10.0, retries: int = 3,
                 retry_budget: float = 30.0, backoff: float = 0.5):
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.retries, self.retry_budget, self.backoff = retries, retry_budget, backoff
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout, headers={
            "Authorization": f"Bearer {token}", "Accept": "application/json",
            "User-Agent": f"sipkit/{__version__}"})

    @classmethod
    def from_env(cls, api_url: str | None = None, token_file: str | Path | None = None,
                 timeout: float = 10.0) -> MihuClient:
        return cls.from_settings(ApiSettings.load(api_url, token_file), timeout)

    @classmethod
    def from_settings(cls, api: ApiSettings | None, timeout: float = 10.0) -> MihuClient:
        """The client for settings loaded once (``ApiSettings.load``); ConfigError if they
        are incomplete, naming what to set."""
        api = api or ApiSettings()
        url = api.url
        if not url:
            raise ConfigError("no API URL", fix="set SIPKIT_API_URL or --api-url, e.g. "
                              "https://YOUR-WORKSPACE.mihu.ai")
        if not url.startswith(("http://", "https://")):
            raise ConfigError(f"the API URL {url!r} has no http(s):// scheme",
                              fix="write it like https://YOUR-WORKSPACE.mihu.ai")
        if api.token_error:
            raise ConfigError(api.token_error, fix="give a readable file holding only the token")
        token = api.token.get_secret_value() if api.token is not None else None
        if not token:
            raise ConfigError("no API token", fix="set SIPKIT_API_TOKEN or give --token-file "
                              "(create a token in the Mihu dashboard: profile → Developer)")
        return cls(url, token, timeout=timeout)

    def __repr__(self) -> str:
        return f"MihuClient({self.base_url!r})"

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> MihuClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- plumbing -----------------------------------------------------------------------
    @staticmethod
    def _error_for(resp: httpx.Response, fixes: dict[int, str] | None = None) -> ApiError:
        try:
            body = resp.json()
        except ValueError:
            body = {}
        body = body if isinstance(body, dict) else {}
        # Mihu: {message, error: {code, details, field}}; the /sip-trunks API (seed 003):
        # {error: {code, message, param, type}} or, in its SDK, {error: "Unauthorized", message}.
        err = body.get("error")
        err = err if isinstance(err, dict) else {"code": err} if isinstance(err, str) else {}
        if err.get("param") and not err.get("field"):
            err["field"] = err["param"]
        message = body.get("message") or err.get("message") or resp.reason_phrase
        if err.get("details"):
            details = err["details"]
            details = "; ".join(map(str, details)) if isinstance(details, list) else details
            message = f"{message} ({details})"
        cls = BY_STATUS.get(resp.status_code) or (ServerError if resp.status_code >= 500
                                                  else ApiError)
        fix = (fixes or {}).get(resp.status_code)
        if err.get("field") and not fix:
            fix = f"correct `{err['field']}` in the site file"
        return cls(message, status=resp.status_code, code=err.get("code"), field=err.get("field"),
                   fix=fix)

    def _send(self, method: str, path: str, *, retry: bool,
              fixes: dict[int, str] | None = None, **kw: Any) -> Any:
        """One API call: the body's ``data`` (or the body, for APIs without the envelope).
        ``fixes``: the fix to name per HTTP status, when the generic one would mislead."""
        start = time.monotonic()
        attempt = 0
        while True:
            attempt += 1
            try:
                resp = self._http.request(method, path, **kw)
            except httpx.TimeoutException:
                error: ApiError = TransportError(f"{method} {path} timed out")
                wait = None
            except httpx.TransportError as exc:
                error = TransportError(f"cannot reach {self.base_url} ({type(exc).__name__})")
                wait = None
            else:
                if resp.status_code < 400:
                    if not resp.content:
                        return None
                    try:
                        body = resp.json()
                    except ValueError:
                        raise ServerError(f"HTTP {resp.status_code} with a non-JSON body",
                                          status=resp.status_code) from None
                    return body.get("data", body) if isinstance(body, dict) else body
                error = self._error_for(resp, fixes)
                if not (retry and resp.status_code in RETRY_STATUS):
                    raise error
                wait = _retry_after(resp.headers.get("Retry-After"))
            left = self.retry_budget - (time.monotonic() - start)
            delay = wait if wait is not None else self.backoff * 2 ** (attempt - 1)
            if not retry or attempt > self.retries or delay > left:
                if isinstance(error, RateLimitError) and wait is not None and wait > left:
                    raise RateLimitError(f"rate limited; the API asks to wait {wait:.0f} s, "
                                         f"more than sipkit's budget of {self.retry_budget:.0f} s",
                                         status=429)
                raise error
            time.sleep(delay)

    # -- connectors -----------------------------------------------------------------------
    def list_connectors(self, *, agent_uuid: str | None = None, phone_number: str | None = None,
                        status: str | None = None, page: int = 1,
                        per_page: int = 15) -> ConnectorPage:
        params = {k: v for k, v in {"agent_uuid": agent_uuid, "phone_number": phone_number,
                                    "status": status, "page": page,
                                    "per_page": per_page}.items() if v is not None}
        data = self._send("GET", endpoints.CONNECTORS, retry=True, params=params)
        return ConnectorPage.model_validate(page_data(data))

    def iter_connectors(self, **filters: Any) -> Iterator[Connector]:
        return pages(lambda page: self.list_connectors(page=page, per_page=50, **filters))

    def get_connector(self, uuid: str) -> Connector:
        return Connector.model_validate(
            self._send("GET", endpoints.CONNECTOR.format(uuid=uuid), retry=True))

    def delete_connector(self, uuid: str) -> None:
        self._send("DELETE", endpoints.CONNECTOR.format(uuid=uuid), retry=True)

    def create_once(self, path: str, body: dict[str, Any], read: Callable[[Any], M],
                    lookup: Callable[[], M | None]) -> M:
        """POST once, never retried blindly (a lost answer would make a duplicate). If the
        answer is lost (timeout, 5xx, connection reset), ``lookup`` before saying anything:
        the resource may exist now."""
        try:
            return read(self._send("POST", path, retry=False, json=body))
        except (TransportError, ServerError) as exc:
            try:
                found = lookup()
            except ApiError:
                raise exc from None
            if found is not None:
                return found
            raise exc

    def create_connector(self, body: dict[str, Any]) -> Connector:
        return self.create_once(
            endpoints.CONNECTORS, body, Connector.model_validate,
            lambda: self.find_connector(body["phone_number"], body.get("agent_uuid")))

    def find_connector(self, phone_number: str, agent_uuid: str | None = None) -> Connector | None:
        for c in self.iter_connectors(phone_number=phone_number):
            if c.phone_number == phone_number and (agent_uuid is None or
                                                   c.agent_uuid == agent_uuid):
                return c
        return None

    # -- the account's SIP connector server -----------------------------------------------
    def get_server(self) -> ServerAssignment:
        return ServerAssignment.model_validate(self._send("GET", endpoints.SERVER, retry=True))

    def allocate_server(self) -> ServerAssignment:
        # Idempotent by contract ("if a server is already assigned the existing one is
        # returned"), so retrying is safe.
        return ServerAssignment.model_validate(self._send("POST", endpoints.SERVER, retry=True))

    def release_server(self) -> bool:
        """True if a server was released, False if none was allocated."""
        try:
            self._send("DELETE", endpoints.SERVER, retry=True)
        except ApiError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    # -- calls ----------------------------------------------------------------------------
    def place_call(self, agent_uuid: str, number: str, connector_uuid: str | None = None,
                   max_seconds: float | None = None) -> Call:
        """Ask the agent to call ``number``. Never retried: a lost answer must not ring the
        number twice. (A call to a PBX extension through the connector costs nothing.)"""
        body: dict[str, Any] = {"agentId": agent_uuid, "participant": {"number": number}}
        if connector_uuid:
            body["pbx_extension_connector_uuid"] = connector_uuid
        if max_seconds:
            body["max_duration_seconds"] = max_seconds
        return Call.model_validate(self._send("POST", endpoints.CALLS, retry=False, json=body))

    def get_call(self, call_id: str) -> Call:
        return Call.model_validate(
            self._send("GET", endpoints.CALL.format(id=call_id), retry=True))
