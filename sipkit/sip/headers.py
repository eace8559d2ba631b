"""An ordered, case-insensitive multi-dict of SIP headers (RFC 3261 §7.3)."""

from __future__ import annotations

import re
from collections.abc import Iterator

# RFC 3261 §7.3.3 and later RFCs: compact forms.
COMPACT = {
    "v": "Via", "f": "From", "t": "To", "i": "Call-ID", "m": "Contact", "l": "Content-Length",
    "c": "Content-Type", "k": "Supported", "s": "Subject", "e": "Content-Encoding",
    "o": "Event", "u": "Allow-Events", "r": "Refer-To", "b": "Referred-By", "x": "Session-Expires",
}
_CANON = {n.lower(): n for n in (
    "Via", "From", "To", "Call-ID", "CSeq", "Contact", "Content-Length", "Content-Type",
    "Max-Forwards", "Expires", "Min-Expires", "WWW-Authenticate", "Authorization",
    "Proxy-Authenticate", "Proxy-Authorization", "Route", "Record-Route", "User-Agent",
    "Server", "Allow", "Supported", "Require", "Date", "Retry-After", "Warning")}
_CANON["call-id"] = "Call-ID"
_CANON["cseq"] = "CSeq"
_CANON["www-authenticate"] = "WWW-Authenticate"

# Headers whose values may be comma-joined lists (RFC 3261 §7.3.1). Not the auth headers,
# nor Date: their values contain commas of their own.
MULTI = frozenset(h.lower() for h in (
    "Via", "Contact", "Route", "Record-Route", "Allow", "Supported", "Require",
    "Proxy-Require", "Unsupported", "Accept", "Accept-Encoding", "Accept-Language",
    "Allow-Events", "Content-Encoding", "In-Reply-To", "Warning", "Path", "Service-Route"))


_SEEN: dict[str, str] = {}

# The ASCII-digit rule for every number in a SIP message (RFC 3261 §25.1: DIGIT is %x30-39).
# Not str.isdigit() or \d: those accept "²", "⁶⁰" or "５" that int() then refuses (or reads).
_NUMBER = re.compile(r"[0-9]{1,10}")


def number(value: object, maximum: int = 2**32 - 1) -> int | None:
    """``value`` as a non-negative integer if it is 1-10 ASCII digits not above ``maximum``;
    None for anything else (absent, empty, signed, Unicode digits, too large)."""
    if not isinstance(value, str):
        return None
    value = value.strip(" \t")
    if _NUMBER.fullmatch(value) is None:
        return None
    n = int(value)
    return n if n <= maximum else None


def leading_number(value: str | None, maximum: int = 2**32 - 1) -> int | None:
    """The delta-seconds that opens a value with a comment or parameters after it
    (``Retry-After: 120 (busy);duration=60``, RFC 3261 §20.33)."""
    if value is None:
        return None
    return number(re.split(r"[ \t(;]", value.strip(" \t"), maxsplit=1)[0], maximum)


def canonical(name: str) -> str:
    """``v`` -> ``Via``, ``call-id`` -> ``Call-ID``; memoised: it runs for every header line."""
    hit = _SEEN.get(name)
    if hit is not None:
        return hit
    stripped = name.strip()
    low = stripped.lower()
    out = COMPACT.get(low) or _CANON.get(low) or "-".join(
        p[:1].upper() + p[1:] for p in stripped.split("-"))
    if len(_SEEN) < 4096:  # bounded: hostile peers may send endless new names
        _SEEN[name] = out
    return out


def split_list(value: str) -> list[str]:
    """Split on commas outside quotes and <...> (a display name or URI may hold commas)."""
    if "," not in value:
        return [value.strip()] if value.strip() else []
    if '"' not in value and "<" not in value:
        return [v.strip() for v in value.split(",") if v.strip()]
    out, cur, depth, quoted, esc = [], [], 0, False, False
    for ch in value:
        if esc:
            esc = False
        elif ch == "\\" and quoted:
            esc = True
        elif ch == '"':
            quoted = not quoted
        elif not quoted and ch == "<":
            depth += 1
        elif not quoted and ch == ">":
            depth = max(0, depth - 1)
        elif ch == "," and not quoted and depth == 0:
            out.append("".join(cur).strip())
            cur = []
            continue
        cur.append(ch)
    tail = "".join(cur).strip()
    if tail:
        out.append(tail)
    return [v for v in out if v]


class Headers:
    def __init__(self, items: list[tuple[str, str]] | None = None):
        self._items: list[tuple[str, str]] = []
        for name, value in items or ():
            self.add(name, value)

    def add(self, name: str, value: str) -> None:
        self._items.append((canonical(name), value.strip()))

    def set(self, name: str, value: str) -> None:
        self.remove(name)
        self.add(name, value)

    def remove(self, name: str) -> None:
        key = canonical(name).lower()
        self._items = [(n, v) for n, v in self._items if n.lower() != key]

    def get(self, name: str, default: str | None = None) -> str | None:
        key = canonical(name).lower()
        for n, v in self._items:
            if n.lower() == key:
                return v
        return default

    def get_int(self, name: str, maximum: int = 2**32 - 1) -> int | None:
        """The first ``name`` header as a number under the ASCII-digit rule (see ``number``);
        None when absent or not a plain number."""
        return number(self.get(name), maximum)

    def get_all(self, name: str) -> list[str]:
        key = canonical(name).lower()
        values = [v for n, v in self._items if n.lower() == key]
        if key in MULTI:
            return [part for v in values for part in split_list(v)]
        return values

    def items(self) -> list[tuple[str, str]]:
        return list(self._items)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Headers) and self._items == other._items

    def __repr__(self) -> str:
        return f"Headers({self._items!r})"
