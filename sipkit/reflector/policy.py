"""Who may ask the reflector what: it must never become a scanner or an amplifier.

* A target is the caller's own public source address (what the API connection came from),
  or a name that resolves to it, unless the token's entry lists other addresses.
* Rate limits per token and per target (sliding one-minute windows).
* Every request sends a bounded number of packets (see outside.MAX_SENDS).
"""

from __future__ import annotations

import time
from collections import defaultdict, deque

from ..net.addresses import canonical_ip
from .tokens import TokenEntry


class RateLimiter:
    """At most ``limit`` events per ``window`` seconds for each key."""

    def __init__(self, limit: int, window: float = 60.0):
        self.limit, self.window = limit, window
        self.events: dict[str, deque[float]] = defaultdict(deque)

    def allow(self, key: str, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        q = self.events[key]
        while q and q[0] <= now - self.window:
            q.popleft()
        if len(q) >= self.limit:
            return False
        q.append(now)
        return True

    def retry_after(self, key: str, now: float | None = None) -> int:
        now = time.monotonic() if now is None else now
        q = self.events.get(key)
        return max(1, int(q[0] + self.window - now) + 1) if q else 1


def target_allowed(ip: str, caller_ip: str, entry: TokenEntry) -> bool:
    """May ``entry``, calling from ``caller_ip``, have packets sent to ``ip``?"""
    ip = canonical_ip(ip)
    return ip == canonical_ip(caller_ip) or entry.may_probe(ip)
