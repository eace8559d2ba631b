"""What the outside checks (outside_reach, sip_alg, nat_binding) share: the reflector client
from the site's check section, or the reason there is none."""

from __future__ import annotations

from ..mihu.errors import ConfigError
from .base import CheckContext

NO_REFLECTOR = ("no reflector configured (check.reflector): this verdict would need a view "
                "from the internet")
NO_REFLECTOR_FIX = ("run `sipkit reflector serve` on a cloud machine (README 'The outside "
                    "view') and set check.reflector and its token")


def open_reflector(ctx: CheckContext):
    """(client, None) or (None, why): the client is an async context manager."""
    check = getattr(ctx.site, "check", None)
    url = getattr(check, "reflector", None)
    if not url:
        return None, NO_REFLECTOR
    from ..reflector.client import ReflectorClient, reflector_token

    try:
        token = reflector_token(check.reflector_token_file)
    except ConfigError as exc:
        return None, f"reflector token: {exc}"
    if not token:
        return None, ("no reflector token: set check.reflector_token_file, "
                      "SIPKIT_REFLECTOR_TOKEN_FILE or SIPKIT_REFLECTOR_TOKEN")
    ctx.redactor.add(token)
    return ReflectorClient(url, token, check.reflector_ca_file,
                           timeout=max(10.0, 3 * ctx.options.timeout)), None


def vantage(url: str | None) -> str:
    return f"seen from the reflector {url}" if url else "seen from the reflector"
