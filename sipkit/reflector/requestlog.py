"""The reflector's request log: one JSON line per API request and per SIP arrival.

It records what reached the reflector (API bodies, SIP bytes of known sessions) so an operator
and the tests can see that no password ever did. It never holds a token: only the entry's name.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path
from typing import Any, TextIO

MAX_LOGGED_BYTES = 2048  # of a SIP message: enough to show its headers


class RequestLog:
    def __init__(self, path: Path | None):
        self._lock = threading.Lock()
        self._out: TextIO = sys.stderr
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._out = open(path, "a", encoding="utf-8", buffering=1)  # noqa: SIM115
            path.chmod(0o600)

    def write(self, **row: Any) -> None:
        row = {"ts": round(time.time(), 3), **row}
        line = json.dumps(row, default=str, ensure_ascii=False)
        with self._lock:
            self._out.write(line + "\n")
            self._out.flush()

    def api(self, *, remote: str, method: str, path: str, status: int, token: str | None,
            body: Any = None, error: str | None = None, ms: float | None = None) -> None:
        self.write(kind="api", remote=remote, method=method, path=path, status=status,
                   token=token, body=body, error=error, ms=ms)

    def sip(self, transport: str, source: str, size: int, session: str | None, data: bytes,
            too_large: bool = False, suppressed: int | None = None) -> None:
        """One SIP arrival; its text only for a live session (what the agent sent)."""
        text = data[:MAX_LOGGED_BYTES].decode("utf-8", errors="replace") if session else None
        self.write(kind="sip", transport=transport, source=source, size=size, session=session,
                   too_large=too_large or None, data=text, suppressed=suppressed or None)

    def close(self) -> None:
        if self._out is not sys.stderr:
            self._out.close()
