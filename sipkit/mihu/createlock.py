"""One create at a time per API and key on this host.

The Mihu APIs have no idempotency key: two `sipkit trunk create` started together (a script's
`xargs -P`) would both find nothing and both create. ``client_lock`` is an exclusive flock on a
file in the state directory (``sipkit.state``), held by ``ensure_trunk`` and
``ensure_connector`` around find → (delete) → create: the second waits, then finds the first's
trunk ("exists"). The kernel drops a flock when its holder exits, however it exits, so a lock
is never stale. Across hosts nothing guards: the APIs offer nothing to build on.

Without a usable state directory nothing is created (exit 2), rather than proceeding with a
warning: the script running creates in parallel is the one that would get the duplicate, and
a line in its log would not undo it. ``SIPKIT_STATE_DIR`` names another directory.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

from ..state import state_dir
from .errors import CreateLockBusy, CreateLockUnusable

WAIT_TIMEOUTS = 4  # the holder's find, delete and create, each within one request timeout
POLL = 0.05  # flock has no timeout: try, sleep, try again until the deadline


def lock_path(base_url: str, resource: str) -> Path:
    """A hash of the API base and the resource key: the name carries no token, number or
    character a file system could refuse, and two APIs never share a lock."""
    url = urlsplit(base_url.strip().rstrip("/"))
    identity = f"{url.scheme.lower()}://{url.netloc.lower()}{url.path}\n{resource}"
    name = hashlib.sha256(identity.encode()).hexdigest()[:32]
    return state_dir() / "create-locks" / f"{name}.lock"


def client_lock(client, resource: str, what: str):
    """``create_lock`` for ``client``'s API, waiting up to WAIT_TIMEOUTS request timeouts."""
    return create_lock(client.base_url, resource, what, WAIT_TIMEOUTS * client.timeout)


@contextmanager
def create_lock(base_url: str, resource: str, what: str, wait: float) -> Iterator[None]:
    """Hold the lock of ``resource`` on ``base_url``; ``what`` names it in messages."""
    path = lock_path(base_url, resource)
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise _unusable(path, exc) from None
    with os.fdopen(fd, "r+") as f:
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise CreateLockBusy(_busy(f, what, wait, path)) from None
                time.sleep(POLL)
            except OSError as exc:  # a file system without locks (ENOLCK)
                raise _unusable(path, exc) from None
        try:  # who holds it, for a waiter's message: pid and time, never argv (--set password=)
            f.seek(0)
            f.truncate()
            json.dump({"pid": os.getpid(), "since": time.time()}, f)
            f.flush()
        except OSError:
            pass  # only the waiter's message loses its detail
        yield


def _unusable(path: Path, exc: OSError) -> CreateLockUnusable:
    return CreateLockUnusable(
        f"cannot use the state directory {path.parent.parent} for the create lock "
        f"({exc.strerror or exc}): sipkit does not create without it, since two creates at "
        "once could then make two. Fix: set SIPKIT_STATE_DIR to a writable directory on this "
        "host")


def _busy(f, what: str, wait: float, path: Path) -> str:
    try:
        f.seek(0)
        holder = json.loads(f.read() or "{}")
    except (OSError, ValueError):
        holder = {}
    if not isinstance(holder, dict):
        holder = {}
    pid, since = holder.get("pid"), holder.get("since")
    who = f"sipkit process {pid}" if isinstance(pid, int) else "another sipkit process"
    when = (f" since {time.strftime('%H:%M:%S', time.localtime(since))}"
            if isinstance(since, (int, float)) else "")
    return (f"{who} on this host has been creating {what}{when}; waited {wait:g} s for it "
            f"(lock {path}). Fix: let it finish, then re-run (it then says \"exists\"); a longer "
            "--timeout waits longer")
