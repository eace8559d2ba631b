"""Lockout safety for register probes: at most one authenticated attempt per target and
interval, and an exponential backoff after answers that suggest a ban is near
(403, 429, 503, 401/407 again). Between attempts the last result is reported, marked cached."""

from __future__ import annotations

import threading
import time
from typing import NamedTuple

BAN_SIGNS = {401, 403, 407, 429, 503}
MAX_BACKOFF = 3600.0


class Held(NamedTuple):
    """Why the caller must not try now: the last result, the seconds until the next attempt,
    and, while another caller's attempt is in flight, the Event set when it ends."""

    last: dict
    wait: float
    in_flight: threading.Event | None


class Lockout:
    def __init__(self) -> None:
        self._state: dict[str, dict] = {}
        self._lock = threading.Lock()

    def claim(self, key: str) -> Held | None:
        """None: the caller makes the one attempt, then calls ``record`` (if it reached the
        server) and always ``release``. Concurrent callers (parallel scrapes, two Prometheus
        replicas) get the in-flight Event instead: one attempt, one answer for all."""
        with self._lock:
            st = self._state.setdefault(key, {"failures": 0, "next": 0.0, "last": None,
                                              "busy": None})
            wait = st["next"] - time.monotonic()
            if st["busy"] is not None:
                return Held(dict(st["last"] or {}), max(0.0, wait), st["busy"])
            if st["last"] is not None and wait > 0:
                return Held(dict(st["last"]), wait, None)
            st["busy"] = threading.Event()
            return None

    def record(self, key: str, min_interval: float, success: bool, status: int | None,
               snapshot: dict) -> float:
        with self._lock:
            st = self._state[key]
            if success or status not in BAN_SIGNS:
                st["failures"] = 0
                delay = min_interval
            else:
                st["failures"] += 1
                delay = min(MAX_BACKOFF, max(min_interval, 60.0) * 2 ** (st["failures"] - 1))
            st["next"] = time.monotonic() + delay
            st["last"] = snapshot
            return delay

    def release(self, key: str) -> None:
        with self._lock:
            st = self._state.get(key)
            busy, st["busy"] = (st["busy"], None) if st else (None, None)
        if busy is not None:
            busy.set()

    def clear(self) -> None:
        with self._lock:
            self._state.clear()


LOCKOUT = Lockout()
