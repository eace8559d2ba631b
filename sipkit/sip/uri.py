"""SIP URIs (RFC 3261 §19.1) and name-addr values of From/To/Contact (§20.10)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .errors import SipParseError

_HOSTPORT = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[^:;?\[\]]+)(?::([0-9]{1,5}))?$")


def _params(text: str, sep: str = ";") -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for part in text.split(sep):
        part = part.strip()
        if not part:
            continue
        key, eq, value = part.partition("=")
        out[key.strip().lower()] = value.strip() if eq else None
    return out


def _fmt_params(params: dict[str, str | None], sep: str = ";") -> str:
    return "".join(f"{sep}{k}" if v is None else f"{sep}{k}={v}" for k, v in params.items())


@dataclass
class SipUri:
    scheme: str
    user: str | None
    host: str
    port: int | None = None
    password: str | None = None
    params: dict[str, str | None] = field(default_factory=dict)
    headers: dict[str, str | None] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str) -> SipUri:
        text = text.strip()
        scheme, colon, rest = text.partition(":")
        scheme = scheme.lower()
        if not colon or scheme not in ("sip", "sips", "tel"):
            raise SipParseError(f"not a SIP URI: {text[:60]!r}")
        rest, _, hdrs = rest.partition("?")
        user = password = None
        if "@" in rest:
            userinfo, _, rest = rest.rpartition("@")
            user, _, pw = userinfo.partition(":")
            password = pw or None
        hostport, _, params = rest.partition(";")
        if scheme == "tel":
            return cls(scheme, None, hostport, None, None, _params(params))
        m = _HOSTPORT.match(hostport)
        if not m:
            raise SipParseError(f"bad host in SIP URI: {text[:60]!r}")
        port = int(m.group(2)) if m.group(2) else None
        if port is not None and not 0 < port < 65536:
            raise SipParseError(f"bad port in SIP URI: {text[:60]!r}")
        host = m.group(1)
        return cls(scheme, user or None, host.strip("[]") if host.startswith("[") else host,
                   port, password, _params(params), _params(hdrs, "&"))

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        userinfo = ""
        if self.user is not None:
            userinfo = self.user + (f":{self.password}" if self.password else "") + "@"
        port = f":{self.port}" if self.port else ""
        hdrs = "&".join(k if v is None else f"{k}={v}" for k, v in self.headers.items())
        return (f"{self.scheme}:{userinfo}{host}{port}{_fmt_params(self.params)}"
                + (f"?{hdrs}" if hdrs else ""))


@dataclass
class NameAddr:
    uri: SipUri
    display: str | None = None
    params: dict[str, str | None] = field(default_factory=dict)

    @property
    def tag(self) -> str | None:
        return self.params.get("tag")

    def __str__(self) -> str:
        disp = f'"{self.display}" ' if self.display else ""
        return f"{disp}<{self.uri}>{_fmt_params(self.params)}"


def parse_name_addr(value: str) -> NameAddr:
    """``"Name" <sip:u@h>;tag=x`` or the bare ``sip:u@h;tag=x`` form (§20.10: without <>,
    the parameters belong to the header, not the URI)."""
    value = value.strip()
    if "<" in value:
        head, _, rest = value.partition("<")
        uri_text, close, params = rest.partition(">")
        if not close:
            raise SipParseError(f"unclosed < in {value[:60]!r}")
        display = head.strip().strip('"') or None
        return NameAddr(SipUri.parse(uri_text), display, _params(params))
    uri_text, _, params = value.partition(";")
    return NameAddr(SipUri.parse(uri_text), None, _params(params))
