"""Bearer tokens of the reflector: a YAML list, one entry per customer or team::

    - name: mihu-support          # what the request log shows (never the token)
      sha256: 5e88489...          # sha256 of the token (or `token:` in clear, for a lab)
      allow: [198.51.100.0/24]    # extra targets beyond the caller's own public address

`sipkit reflector token NAME` prints a new token and the entry to paste.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

from ..errors import FieldProblem, SettingsError
from ..sitefile import Limits, StringLoader, load_yaml, read_bounded

# bounded like a site file (sitefile); a team's entry is ~150 bytes, aliases may share lists
LIMITS = Limits("token file", option="tokens", max_bytes=1024 * 1024, nodes_per_byte=4,
                fix="write the entries out: one '- name: ... sha256: ...' per token")


_HEX64 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class TokenEntry:
    name: str
    digest: str  # sha256 hex of the token
    allow: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()

    def may_probe(self, ip: str) -> bool:
        addr = ipaddress.ip_address(ip)
        return any(addr in net for net in self.allow)


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return "rfl_" + secrets.token_urlsafe(24)


class TokenBook:
    def __init__(self, entries: list[TokenEntry]):
        self.entries = entries

    def find(self, presented: str | None) -> TokenEntry | None:
        """The entry for a presented token; compared in constant time, every entry tried."""
        if not presented:
            return None
        want = digest(presented)
        found = None
        for entry in self.entries:
            if hmac.compare_digest(entry.digest, want):
                found = entry
        return found

    @classmethod
    def load(cls, path: Path) -> TokenBook:
        source = str(path)
        # YAML's own errors name only a line and column, never the text (a token may be there).
        # Every scalar a string: YAML 1.1 would read an all-digit digest or token as a number
        # (0123... as octal), and str() of that number is another value.
        raw = load_yaml(read_bounded(path, source, LIMITS), source, LIMITS,
                        loader=StringLoader) or []
        if not isinstance(raw, list):
            raise SettingsError(source, [FieldProblem("(file)", "must be a list of entries",
                                                      "write - name: ... sha256: ...")])
        entries = []
        for i, item in enumerate(raw):
            where = f"[{i}]"
            if not isinstance(item, dict) or not item.get("name"):
                raise SettingsError(source, [FieldProblem(where, "needs a name",
                                                          "write - name: team-a")])
            if item.get("sha256"):
                dig = str(item["sha256"]).strip().lower()
                if not _HEX64.fullmatch(dig):  # a typo would never match, silently
                    raise SettingsError(source, [FieldProblem(
                        f"{where}.sha256", "is not a sha256 digest (64 hex digits)",
                        "paste the entry `sipkit reflector token NAME` printed, or write "
                        "token: in clear")])
            elif item.get("token"):
                dig = digest(str(item["token"]))
            else:
                raise SettingsError(source, [FieldProblem(
                    f"{where}.sha256", "is required (or token:)",
                    "run `sipkit reflector token NAME` and paste its entry")])
            nets = []
            allow = item.get("allow") or []
            for value in [allow] if isinstance(allow, str) else allow:  # one, or a list
                try:
                    nets.append(ipaddress.ip_network(str(value), strict=False))
                except ValueError:
                    raise SettingsError(source, [FieldProblem(
                        f"{where}.allow", f"{value!r} is not an address or network",
                        "write e.g. 198.51.100.7 or 198.51.100.0/24")]) from None
            entries.append(TokenEntry(str(item["name"]), dig, tuple(nets)))
        return cls(entries)
