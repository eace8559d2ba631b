"""Where to send SIP: what RFC 3263 resolution produces and every transport consumes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .addresses import hostport


@dataclass(frozen=True)
class Target:
    """One address to try, as RFC 3263 resolution produced it."""

    host: str  # the name the user gave (for SNI / hostname checks)
    ip: str
    port: int
    transport: str  # "udp" | "tcp" | "tls"

    @property
    def hostport(self) -> str:
        return hostport(self.ip, self.port)

    def as_dict(self) -> dict[str, Any]:
        return {"host": self.host, "ip": self.ip, "port": self.port, "transport": self.transport}
