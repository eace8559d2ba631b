"""The agent side of the reflector API (httpx): what outside_reach, sip_alg and nat_binding call.

The token comes from check.reflector_token_file, SIPKIT_REFLECTOR_TOKEN_FILE or
SIPKIT_REFLECTOR_TOKEN (never a flag: flags show in process lists). Nothing sent carries a
password: the bodies are built here from the endpoint's host, port and user only.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any, Self

import httpx

from ..mihu.config import load_token


class ReflectorError(Exception):
    def __init__(self, status: int | None, code: str, message: str, body: dict | None = None):
        super().__init__(message)
        self.status, self.code, self.body = status, code, body or {}


def reflector_token(token_file: Path | None) -> str | None:
    return load_token(token_file, file_env="SIPKIT_REFLECTOR_TOKEN_FILE",
                      value_env="SIPKIT_REFLECTOR_TOKEN")


class ReflectorClient:
    def __init__(self, url: str, token: str, ca_file: Path | None = None,
                 timeout: float = 10.0):
        verify: ssl.SSLContext | bool = True
        if ca_file is not None:
            verify = ssl.create_default_context(cafile=str(ca_file))
        self._http = httpx.AsyncClient(base_url=url.rstrip("/"), verify=verify,
                                       timeout=timeout,
                                       headers={"Authorization": f"Bearer {token}"})

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _call(self, method: str, path: str, json: Any = None,
                    timeout: float | None = None) -> dict:
        try:
            resp = await self._http.request(method, path, json=json,
                                            **({"timeout": timeout} if timeout else {}))
        except httpx.HTTPError as exc:
            raise ReflectorError(None, "unreachable", f"cannot reach the reflector: "
                                 f"{type(exc).__name__}: {exc}") from None
        try:
            data = resp.json()
        except ValueError:
            data = {}
        if resp.status_code >= 400:
            err = data.get("error") or {}
            raise ReflectorError(resp.status_code, err.get("code", "http"),
                                 err.get("message", f"HTTP {resp.status_code}"), data)
        return data

    async def whoami(self) -> dict:
        return await self._call("GET", "/v1/whoami")

    async def reach(self, host: str, port: int, transports: list[str], user: str | None,
                    domain: str | None) -> dict:
        body = {"host": host, "port": port, "transports": transports, "user": user,
                "domain": domain}
        return await self._call("POST", "/v1/reach", body, timeout=60)

    async def mirror_open(self) -> dict:
        return await self._call("POST", "/v1/mirror")

    async def mirror_get(self, sid: str) -> dict:
        return await self._call("GET", f"/v1/mirror/{sid}")

    async def binding_open(self) -> dict:
        return await self._call("POST", "/v1/binding")

    async def binding_run(self, sid: str, idle_s: list[float], budget_s: float) -> dict:
        return await self._call("POST", f"/v1/binding/{sid}/run",
                                {"idle_s": idle_s, "budget_s": budget_s}, timeout=budget_s + 30)
