"""One exception tree for the API, mapped from the error envelope
``{success: false, message, error: {code, details, field}}``.

Exit codes (documented in the README): 1 the API refused (404, 409, settings differ),
2 fix your input or credentials (401, 403, 422, no URL/token), 4 the API is unreachable or
failing, retry later (429 after retries, 5xx, timeouts, DNS, TLS).
"""

from __future__ import annotations

from ..errors import SipkitError


class ApiError(SipkitError):
    exit_code = 4
    fix = "retry later; if it persists, contact Mihu support with the time of the error"

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None,
                 field: str | None = None, fix: str | None = None):
        self.status, self.code, self.field, self.message = status, code, field, message
        self.fix = fix or type(self).fix
        where = f"HTTP {status}" + (f" {code}" if code else "") if status else "API"
        super().__init__(f"{where}: {message}. Fix: {self.fix}")


class AuthError(ApiError):
    exit_code = 2
    fix = ("set SIPKIT_API_TOKEN (or --token-file) to a valid token from the Mihu dashboard: "
           "profile → Developer")


class ForbiddenError(ApiError):
    exit_code = 2
    fix = "use a token of a workspace user allowed to manage PBX connectors"


class NotFoundError(ApiError):
    exit_code = 1
    fix = "check the UUID with `sipkit connector list`"


class ConflictError(ApiError):
    exit_code = 1
    fix = "see the message: the account's current state forbids this"


class ValidationError(ApiError):
    exit_code = 2
    fix = "correct the field named in the message in the site file"


class RateLimitError(ApiError):
    exit_code = 4
    fix = "wait and retry; sipkit already waited as long as Retry-After asked"


class ServerError(ApiError):
    exit_code = 4


class TransportError(ApiError):
    exit_code = 4
    fix = "check SIPKIT_API_URL and this machine's network/proxy; then retry"


class ConnectorDiffers(ApiError):
    exit_code = 1
    fix = "re-run with --replace to delete it and create it with these settings"


class TrunkDiffers(ConnectorDiffers):
    fix = "re-run with --replace to make the trunk match this file"


class CreateLockBusy(SipkitError):
    """Another sipkit on this host held the create lock for this key longer than the wait."""

    exit_code = 4


class CreateLockUnusable(SipkitError):
    """The state directory cannot hold the create lock: nothing is created without it."""

    exit_code = 2


class ConfigError(ApiError):
    exit_code = 2
    fix = "set SIPKIT_API_URL (e.g. https://demo.mihu.ai) and SIPKIT_API_TOKEN or --token-file"


BY_STATUS = {401: AuthError, 403: ForbiddenError, 404: NotFoundError, 409: ConflictError,
             422: ValidationError, 400: ValidationError, 429: RateLimitError}
