"""Lockout safety for register probes: at most one authenticated attempt per target and
interval, and an exponential backoff after answers that suggest a ban is near
(403, 429, 503, 401/407 again). Between attempts the last result is reported, marked cached."""

from __future__ import annotations

import threading
import time

BAN_SIGNS = {401, 403, 407, 429, 503}
MAX_BACKOFF = 3600.0


class Lockout:
    def __init__(self) -> None:
        self._state: dict[str, dict] = {}
        self._lock = threading.Lock()

    def gate(self, key: str, min_interval: float) -> tuple[dict, float] | None:
        """(last result, seconds to wait) while the target must not be tried; else None."""
        with self._lock:
            st = self._state.get(key)
            if st is None:
                return None
            wait = st["next"] - time.monotonic()
            return (dict(st["last"]), wait) if wait > 0 else None

    def record(self, key: str, min_interval: float, success: bool, status: int | None,
               snapshot: dict) -> float:
        with self._lock:
            st = self._state.setdefault(key, {"failures": 0})
            if success or status not in BAN_SIGNS:
                st["failures"] = 0
                delay = min_interval
            else:
                st["failures"] += 1
                delay = min(MAX_BACKOFF, max(min_interval, 60.0) * 2 ** (st["failures"] - 1))
            st["next"] = time.monotonic() + delay
            st["last"] = snapshot
            return delay

    def clear(self) -> None:
        with self._lock:
            self._state.clear()


LOCKOUT = Lockout()
