"""The SIP endpoint: what the signalling checks and every prober read.

A target kind (a PBX extension for a connector, a SIP trunk) becomes one or more endpoints; the
checks ``dns``, ``transport``, ``tls`` and ``register`` read only an endpoint, so a prober builds
one from a target line and never fakes a site. Secrets stay ``SecretStr``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import SecretStr

from .net.addresses import uri_host

Transport = Literal["udp", "tcp", "tls"]
Role = Literal["registrar", "gateway", "secondary_gateway"]


@dataclass(frozen=True)
class SipEndpoint:
    host: str  # a host name or an IP literal (no brackets)
    port: int | None  # None: RFC 3263 chooses (NAPTR → SRV → A/AAAA)
    transport: Transport = "udp"
    username: str | None = None  # the user part of the AOR (the extension)
    password: SecretStr | None = None
    auth_username: str | None = None  # digest user, when it is not the AOR user
    domain: str | None = None  # SIP domain / realm hint for the AOR; default: host
    source_ip: str | None = None  # bind local sockets to this address
    role: Role = "registrar"
    # True: REGISTER is the way to prove the credentials (a PBX extension). None: try it and
    # accept "registration not offered" (a trunk). False: never send REGISTER.
    registers: bool | None = True

    @property
    def digest_username(self) -> str:
        return self.auth_username or self.username or ""

    @property
    def sip_domain(self) -> str:
        return self.domain or self.host

    @property
    def default_port(self) -> int:
        return 5061 if self.transport == "tls" else 5060

    @property
    def effective_port(self) -> int:
        return self.port or self.default_port

    @property
    def explicit_port(self) -> bool:
        return self.port is not None

    @property
    def display(self) -> str:
        """host:port as a person reads it (the port only when given)."""
        return f"{uri_host(self.host)}:{self.port}" if self.port else uri_host(self.host)

    def secrets(self) -> list[str]:
        return [self.password.get_secret_value()] if self.password is not None else []
