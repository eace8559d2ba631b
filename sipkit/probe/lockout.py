"""Lockout safety for probes that authenticate (register, call): at most one authenticated
attempt per target and interval, and an exponential backoff after answers that suggest a ban
is near (403, 429, 503, 401/407 again). Between attempts the last result is reported, marked
cached.

The state outlives the process: a small JSON file, rewritten atomically (temporary file,
fsync, rename) under an flock, so a crash loop (``kill -9``, restart, scrape) or two
exporters on one host still make one attempt per interval. The slot is written *before* the
attempt: a process killed in the middle of its REGISTER has still used it. Times in the
file are wall clock (monotonic clocks restart with the machine).
"""

from __future__ import annotations

import fcntl
import json
import os
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

from ..state import state_dir

BAN_SIGNS = {401, 403, 407, 429, 503}
MAX_BACKOFF = 3600.0
STATE_NAME = "probe-lockout.json"


def default_state_file() -> Path:
    return state_dir() / STATE_NAME


class Held(NamedTuple):
    """Why the caller must not try now: the last result, the seconds until the next attempt,
    and, while another caller's attempt is in flight here, the Event set when it ends."""

    last: dict
    wait: float
    in_flight: threading.Event | None


class LockoutStateError(OSError):
    """The state file cannot be read or written: no authenticated attempt is made."""


class Lockout:
    def __init__(self, path: Path | None) -> None:
        """``path`` None: memory only (tests of the rule itself)."""
        self.path = Path(path) if path else None
        self._busy: dict[str, threading.Event] = {}
        self._claimed: dict[str, float] = {}  # key -> its "next" before an unrecorded claim
        self._mem: dict[str, dict] = {}
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ the file
    @contextmanager
    def _state(self):
        """The state, locked against other processes; written back when changed."""
        if self.path is None:
            yield self._mem
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            lock = open(self.path.with_suffix(".lock"), "a")  # noqa: SIM115 - held below
        except OSError as exc:
            raise LockoutStateError(f"cannot use the lockout state {self.path}: "
                                    f"{exc.strerror}") from None
        with lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                state = json.loads(self.path.read_text())
                if not isinstance(state, dict):
                    state = {}
            except FileNotFoundError:
                state = {}
            except (OSError, ValueError):
                state = {}  # a torn or foreign file: start over (rename keeps ours whole)
            before = json.dumps(state, sort_keys=True)
            yield state
            if json.dumps(state, sort_keys=True) != before:
                self._write(state)

    def _write(self, state: dict) -> None:
        now = time.time()
        # entries whose interval and backoff are long over carry nothing
        state = {k: v for k, v in state.items() if v.get("next", 0) > now - MAX_BACKOFF}
        try:
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".lockout-")
            with os.fdopen(fd, "w") as f:
                json.dump(state, f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except OSError as exc:
            raise LockoutStateError(f"cannot write the lockout state {self.path}: "
                                    f"{exc.strerror}") from None

    # ------------------------------------------------------------------ the rule
    def claim(self, key: str, min_interval: float) -> Held | None:
        """None: the caller makes the one attempt, then calls ``record`` (if it reached the
        server) and always ``release``. Concurrent callers (parallel scrapes, two Prometheus
        replicas) get the in-flight Event instead: one attempt, one answer for all.
        Raises LockoutStateError when the slot cannot be recorded."""
        with self._lock:
            busy = self._busy.get(key)
            with self._state() as state:
                st = state.get(key) or {"failures": 0, "next": 0.0, "last": None}
                wait = st["next"] - time.time()
                if busy is not None:
                    return Held(dict(st["last"] or {}), max(0.0, wait), busy)
                if wait > 0:
                    last = st["last"] or {"reason": "an attempt was started before a restart"}
                    return Held(dict(last), wait, None)
                # the slot is ours: written before the attempt, so a crash still counts
                self._claimed[key] = st["next"]
                st["next"] = time.time() + min_interval
                state[key] = st
            self._busy[key] = threading.Event()
            return None

    def record(self, key: str, min_interval: float, success: bool, status: int | None,
               snapshot: dict) -> float:
        with self._lock, self._state() as state:
            self._claimed.pop(key, None)
            st = state.get(key) or {"failures": 0, "next": 0.0, "last": None}
            if success or status not in BAN_SIGNS:
                st["failures"] = 0
                delay = min_interval
            else:
                st["failures"] += 1
                delay = min(MAX_BACKOFF, max(min_interval, 60.0) * 2 ** (st["failures"] - 1))
            st["next"] = time.time() + delay
            st["last"] = snapshot
            state[key] = st
            return delay

    def release(self, key: str) -> None:
        """The attempt is over. Without a ``record`` it never reached the server (DNS
        failed...): the slot is given back."""
        with self._lock:
            busy = self._busy.pop(key, None)
            if key in self._claimed:
                previous = self._claimed.pop(key)
                try:
                    with self._state() as state:
                        if key in state:
                            state[key]["next"] = previous
                except LockoutStateError:
                    pass  # the slot stays used: the safe side
        if busy is not None:
            busy.set()

    def clear(self) -> None:
        with self._lock:
            self._mem.clear()
            if self.path is not None:
                self.path.unlink(missing_ok=True)


_BY_PATH: dict[str, Lockout] = {}


def lockout_for(path: Path | None) -> Lockout:
    """One Lockout per state file in a process (threads share its in-flight events)."""
    path = Path(path) if path else default_state_file()
    key = os.path.abspath(path)
    if key not in _BY_PATH:
        _BY_PATH[key] = Lockout(path)
    return _BY_PATH[key]
