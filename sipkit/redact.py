"""Keep secrets out of everything sipkit writes.

Two layers: evidence is redacted where it is recorded (digest ``response=``/``cnonce``, bearer
tokens, passwords in SIP bodies), and every renderer passes its final text through the
``Redactor`` that knows the literal secret values of this run, as a net under the first layer.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

MASK = "<redacted>"

# Authorization / Proxy-Authorization digest parameters that prove knowledge of the password.
_DIGEST_PARAMS = re.compile(r'(?i)\b(response|cnonce)\s*=\s*("[^"]*"|[^,\s]+)')
_BEARER = re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9._~+/=-]+")


def redact_text(text: str, secrets: Iterable[str] = ()) -> str:
    text = _DIGEST_PARAMS.sub(lambda m: f'{m.group(1)}="{MASK}"', text)
    text = _BEARER.sub(lambda m: f"{m.group(1)} {MASK}", text)
    values = sorted({s for s in secrets if s and len(s) >= 3}, key=len, reverse=True)
    if values:
        # Case-insensitive: a peer may echo a digest response in upper-case hex.
        text = re.sub("|".join(map(re.escape, values)), MASK, text, flags=re.I)
    return text


class Redactor:
    """Knows this run's secret values; applied to every rendered output."""

    def __init__(self, secrets: Iterable[str] = ()):
        self.secrets = {s for s in secrets if s}

    def add(self, secret: str | None) -> None:
        if secret:
            self.secrets.add(secret)

    def add_digest(self, header_value: str) -> None:
        """Remember the ``response`` and ``cnonce`` of an Authorization this run sends, so
        they are masked by value too: a registrar may reflect them bare (in a reason phrase,
        a Warning:, any header), where the ``response="…"`` pattern does not see them."""
        for m in _DIGEST_PARAMS.finditer(header_value):
            self.add(m.group(2).strip('"'))

    def __call__(self, text: str) -> str:
        return redact_text(text, self.secrets)

    def walk(self, value):
        """Redact every string inside a JSON-like structure (before it is serialized:
        redacting serialized JSON would have to understand its escaping)."""
        if isinstance(value, str):
            return self(value)
        if isinstance(value, dict):
            return {k: self.walk(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.walk(v) for v in value]
        return value
