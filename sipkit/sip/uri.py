"""SIP URIs (RFC 3261 §19.1) and name-addr values of From/To/Contact (§20.10)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .errors import SipParseError
from .headers import number

# host = hostname / IPv4address / "[" IPv6address "]" (§25.1); "_" is tolerated because real
# PBXs put it in hostnames.
_HOSTPORT = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+)(?::([0-9]{1,5}))?$")

_BAD_CHAR = re.compile(r'[\s<>"]')
_USERINFO_PASSWORD = re.compile(r"^([A-Za-z]+:[^:@]*):[^@]*@")


def _shown(text: str) -> str:
    """``text`` for an error message: at most 60 characters, a URI password masked."""
    return repr(_USERINFO_PASSWORD.sub(r"\1:***@", text)[:60])


def _params(text: str, sep: str = ";") -> dict[str, str | None]:
    """``;a=1;b`` -> {"a": "1", "b": None}; names are case-insensitive (§19.1.4)."""
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
    """``sip:user:password@host:port;params?headers``; also ``sips:`` and, loosely, ``tel:``
    (number in ``host``). Build with keywords: ``SipUri("sip", host="pbx.example.com")``."""

    scheme: str = "sip"
    user: str | None = None
    password: str | None = None
    host: str = ""
    port: int | None = None
    params: dict[str, str | None] = field(default_factory=dict)
    headers: dict[str, str | None] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str) -> SipUri:
        text = text.strip()
        scheme, colon, rest = text.partition(":")
        scheme = scheme.lower()
        if not colon or scheme not in ("sip", "sips", "tel"):
            raise SipParseError(f"not a SIP URI: {_shown(text)}")
        if _BAD_CHAR.search(text):  # §25.1: a URI holds no whitespace, quotes or brackets <>
            raise SipParseError(f"whitespace or <\"> inside a SIP URI: {_shown(text)}")
        rest, _, hdrs = rest.partition("?")
        if scheme == "tel":
            number, _, params = rest.partition(";")
            if not number.strip():
                raise SipParseError(f"empty tel URI: {_shown(text)}")
            return cls(scheme, host=number.strip(), params=_params(params))
        user = password = None
        if "@" in rest:
            # The user part may hold ";" (user=phone numbers) but never a raw "@".
            userinfo, _, rest = rest.rpartition("@")
            user, _, pw = userinfo.partition(":")
            password = pw or None
            if not user:
                raise SipParseError(f"empty user in SIP URI: {_shown(text)}")
        hostport, _, params = rest.partition(";")
        m = _HOSTPORT.match(hostport.strip())
        if not m:
            raise SipParseError(f"bad host in SIP URI: {_shown(text)}")
        port = int(m.group(2)) if m.group(2) else None
        if port is not None and not 0 < port < 65536:
            raise SipParseError(f"bad port in SIP URI: {_shown(text)}")
        host = m.group(1)
        return cls(scheme, user, password, host[1:-1] if host.startswith("[") else host,
                   port, _params(params), _params(hdrs, "&"))

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
    """A From/To/Contact value: optional display name, the URI, and the header parameters."""

    uri: SipUri
    display: str | None = None
    params: dict[str, str | None] = field(default_factory=dict)

    @property
    def tag(self) -> str | None:
        return self.params.get("tag")

    @property
    def expires(self) -> int | None:
        """A Contact's ``expires`` parameter (§10.2.1.1), None if absent or not a number."""
        return number(self.params.get("expires"))

    def __str__(self) -> str:
        disp = ""
        if self.display:
            disp = '"' + self.display.replace("\\", "\\\\").replace('"', '\\"') + '" '
        return f"{disp}<{self.uri}>{_fmt_params(self.params)}"


def _quoted(value: str) -> tuple[str, str]:
    """Split a leading quoted-string (§25.1) off ``value``: (unescaped text, rest)."""
    out, i = [], 1
    while i < len(value):
        ch = value[i]
        if ch == "\\" and i + 1 < len(value):
            out.append(value[i + 1])
            i += 2
            continue
        if ch == '"':
            return "".join(out), value[i + 1:]
        out.append(ch)
        i += 1
    raise SipParseError(f"unclosed quote in {value[:60]!r}")


def parse_name_addr(value: str) -> NameAddr:
    """``"Name" <sip:u@h>;tag=x``, ``Name <sip:u@h>`` or the bare ``sip:u@h;tag=x`` form
    (§20.10: without <>, the parameters belong to the header, not the URI)."""
    value = value.strip()
    display: str | None = None
    rest = value
    if value.startswith('"'):
        display, rest = _quoted(value)
        rest = rest.lstrip()
        if not rest.startswith("<"):
            raise SipParseError(f"display name without <uri> in {value[:60]!r}")
    if "<" in rest:
        head, _, tail = rest.partition("<")
        uri_text, close, params = tail.partition(">")
        if not close:
            raise SipParseError(f"unclosed < in {value[:60]!r}")
        if display is None:
            display = head.strip() or None
        params = params.strip()
        if params and not params.startswith(";"):
            raise SipParseError(f"junk after <uri> in {value[:60]!r}")
        return NameAddr(SipUri.parse(uri_text), display or None, _params(params))
    uri_text, _, params = rest.partition(";")
    return NameAddr(SipUri.parse(uri_text), None, _params(params))
