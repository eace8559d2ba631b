"""The RFC 3261 §17.1.2 non-INVITE client transaction, as a pure state machine.

    start(now) -> [Send]             Timer E (UDP only): retransmit at T1, 2T1, ... capped at T2
    receive(resp, now)               1xx: proceeding (retransmits continue, every T2);
                                     final: completed, Timer K = T4 (0 on reliable transports)
    timeout(now)                     due timers fire: Send again, or Timeout at Timer F = 64*T1

The caller owns the clock and the socket: it calls timeout() at next_deadline().
"""

from __future__ import annotations

from dataclasses import dataclass

from .message import Response


@dataclass(frozen=True)
class Send:
    data: bytes


@dataclass(frozen=True)
class Deliver:
    response: Response


@dataclass(frozen=True)
class Timeout:
    pass


@dataclass(frozen=True)
class Terminated:
    pass


Action = Send | Deliver | Timeout | Terminated


def next_interval(interval: float, *, proceeding: bool, t2: float) -> float:
    """RFC 3261 §17.1.2.2 Timer E, the one rule every sender here follows (this state machine
    for the asyncio transports, and the fleet's shared socket): the interval doubles up to
    T2 while Trying; once a provisional answer came (Proceeding) it is T2."""
    return t2 if proceeding else min(2 * interval, t2)


class NonInviteClientTransaction:
    def __init__(self, data: bytes, *, reliable: bool, t1: float = 0.5, t2: float = 4.0,
                 t4: float = 5.0, timer_f: float | None = None):
        """``data``: the request as sent. ``timer_f`` overrides F = 64*T1 (a caller's overall
        timeout); ``reliable``: TCP/TLS, where nothing is retransmitted and K is 0."""
        if t1 <= 0 or t2 < t1 or t4 < 0:
            raise ValueError("timers must satisfy 0 < T1 <= T2 and T4 >= 0")
        self.data, self.reliable = data, reliable
        self.t1, self.t2, self.t4 = t1, t2, t4
        self.timer_f = 64 * t1 if timer_f is None else timer_f
        self.state = "init"
        self._e: float | None = None  # next retransmit time
        self._interval = t1
        self._f: float | None = None  # transaction timeout
        self._k: float | None = None  # end of completed state

    def start(self, now: float) -> list[Action]:
        """Send the request: Trying; Timer F starts, and Timer E on unreliable transports."""
        if self.state != "init":
            return []
        self.state = "trying"
        self._f = now + self.timer_f
        if not self.reliable:
            self._e = now + self.t1
        return [Send(self.data)]

    def receive(self, resp: Response, now: float) -> list[Action]:
        """A response matched to this transaction (§17.1.3) arrived."""
        if self.state in ("trying", "proceeding"):
            if resp.status < 200:
                self.state = "proceeding"
                return [Deliver(resp)]
            self.state = "completed"
            self._e = self._f = None
            wait = 0.0 if self.reliable else self.t4
            self._k = now + wait
            out: list[Action] = [Deliver(resp)]
            if wait == 0:
                self.state = "terminated"
                self._k = None
                out.append(Terminated())
            return out
        return []  # retransmitted finals in completed are absorbed

    def next_deadline(self) -> float | None:
        """When ``timeout()`` must be called next; None once nothing is pending."""
        times = [t for t in (self._e, self._f, self._k) if t is not None]
        return min(times) if times else None

    def timeout(self, now: float) -> list[Action]:
        """Fire the timers that are due at ``now`` (calling early does nothing)."""
        out: list[Action] = []
        if self._f is not None and now >= self._f:
            self.state = "terminated"
            self._e = self._f = self._k = None
            return [Timeout(), Terminated()]
        if self._k is not None and now >= self._k:
            self.state = "terminated"
            self._k = None
            return [Terminated()]
        if self._e is not None and now >= self._e:
            self._interval = next_interval(self._interval, t2=self.t2,
                                           proceeding=self.state == "proceeding")
            self._e = now + self._interval
            out.append(Send(self.data))
        return out
