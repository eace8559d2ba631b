"""The Via header (RFC 3261 §20.42) with the RFC 3581 rport/received parameters."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .errors import SipParseError
from .uri import _fmt_params, _params

# SIP / 2.0 / transport  sent-by-host [: port]  *(; params)  -- LWS allowed around / and :
_VIA = re.compile(r"^SIP\s*/\s*2\.0\s*/\s*([A-Za-z]+)\s+(\[[^\]]+\]|[^;:\s]+)"
                  r"(?:\s*:\s*([0-9]{1,5}))?\s*(.*)$", re.I)


_PORT = re.compile(r"^[0-9]{1,5}$")


@dataclass
class Via:
    transport: str
    host: str
    port: int | None = None
    params: dict[str, str | None] = field(default_factory=dict)

    @classmethod
    def parse(cls, value: str) -> Via:
        m = _VIA.match(value.strip())
        if not m:
            raise SipParseError(f"bad Via: {value[:80]!r}")
        port = int(m.group(3)) if m.group(3) else None
        if port is not None and not 0 < port < 65536:
            raise SipParseError(f"bad Via port: {value[:80]!r}")
        rest = m.group(4).strip()
        if rest and not rest.startswith(";"):
            raise SipParseError(f"bad Via parameters: {value[:80]!r}")
        return cls(m.group(1).upper(), m.group(2).strip("[]"), port, _params(rest))

    @property
    def branch(self) -> str | None:
        return self.params.get("branch")

    @property
    def received(self) -> str | None:
        return self.params.get("received")

    @property
    def rport(self) -> int | bool | None:
        """The port the server saw (int), True if only the flag is there, None if absent."""
        if "rport" not in self.params:
            return None
        value = self.params["rport"]
        if value is None or value == "":
            return True
        # [0-9] only: str.isdigit() accepts Unicode digits that int() refuses.
        return int(value) if _PORT.match(value) else None

    @property
    def rport_port(self) -> int | None:
        """The port the server saw, only when it filled rport in (RFC 3581 §4); None when
        absent or a bare ``;rport`` flag. (``rport`` is True for the flag, and ``True`` is an
        int to isinstance: callers wanting a port read this one.)"""
        value = self.rport
        return value if type(value) is int and 0 < value < 65536 else None

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        port = f":{self.port}" if self.port else ""
        return f"SIP/2.0/{self.transport} {host}{port}{_fmt_params(self.params)}"
