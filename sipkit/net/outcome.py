"""sipkit's outcome vocabulary: every network failure mapped once, as httpx maps transport errors.

Sockets, TLS and DNS raise many kinds of exception; checks, probes and ``analyze`` speak of a
few outcomes. ``of_exception`` and ``of_exchange`` are the only places that translate.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from enum import Enum


class Outcome(str, Enum):
    ANSWERED = "answered"  # a final SIP response
    REFUSED = "refused"  # ICMP port unreachable (UDP) or TCP RST: nothing listens (REJECT)
    NO_ANSWER = "no_answer"  # silence: packets dropped on the way (DROP) or the host is down
    GARBAGE = "garbage"  # bytes came back, but not SIP
    PROVISIONAL_ONLY = "provisional_only"  # 1xx, then nothing final
    CONNECT_TIMEOUT = "tcp_timeout"  # TCP SYN unanswered
    TLS_FAILURE = "tls_handshake_failed"  # the handshake failed; the reason says why
    NETWORK_ERROR = "network_error"  # this machine cannot send (no route, bad source address)
    DNS_FAILURE = "dns_failure"  # the name gave no address


@dataclass(frozen=True)
class Failure:
    outcome: Outcome
    detail: str = ""  # the TLS verify message, the OS error text: never a secret

    def __str__(self) -> str:
        return f"{self.outcome.value}: {self.detail}" if self.detail else self.outcome.value


def tls_reason(exc: ssl.SSLError) -> str:
    """The one line a person needs: the verify message when there is one."""
    return (getattr(exc, "verify_message", None) or getattr(exc, "reason", None)
            or str(exc) or type(exc).__name__)


def of_exception(exc: BaseException, *, connecting: bool = False) -> Failure:
    """Map what the network raised. ``connecting``: a timeout means the SYN went unanswered."""
    if isinstance(exc, ssl.SSLError):  # before OSError: SSLError is one
        return Failure(Outcome.TLS_FAILURE, tls_reason(exc))
    if isinstance(exc, ConnectionRefusedError):
        return Failure(Outcome.REFUSED)
    if isinstance(exc, TimeoutError):
        return Failure(Outcome.CONNECT_TIMEOUT if connecting else Outcome.NO_ANSWER)
    if isinstance(exc, OSError):
        return Failure(Outcome.NETWORK_ERROR, exc.strerror or str(exc) or type(exc).__name__)
    raise exc  # not a network error: a bug, let the caller's boundary see it


def of_exchange(ex) -> Outcome:
    """The outcome of one client transaction (``net.transport.Exchange`` or the fleet's)."""
    if getattr(ex, "refused", False):
        return Outcome.REFUSED
    if ex.final is not None:
        return Outcome.ANSWERED
    if ex.provisionals:
        return Outcome.PROVISIONAL_ONLY
    if ex.garbage:
        return Outcome.GARBAGE
    return Outcome.NO_ANSWER
