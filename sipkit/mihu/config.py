"""Where the Mihu API is and the token: loaded once, no HTTP library imported."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from pydantic import SecretStr

from .errors import ConfigError


@dataclass(frozen=True)
class ApiSettings:
    """Where the Mihu API is and the token, loaded once with the other settings (flags, then
    env) and handed down: `check`'s connector_server: auto, --create and verify all read it.
    A token file that cannot be read is kept as an error for when the API is needed."""

    url: str | None = None
    token: SecretStr | None = None
    token_error: str | None = None

    @property
    def configured(self) -> bool:
        return bool(self.url)

    @classmethod
    def load(cls, api_url: str | None = None, token_file: str | Path | None = None
             ) -> ApiSettings:
        url = api_url or os.environ.get("SIPKIT_API_URL") or None
        try:
            token = load_token(token_file)
        except ConfigError as exc:
            return cls(url, None, str(exc).split(". Fix:")[0])
        return cls(url, SecretStr(token) if token else None)


def load_token(token_file: str | Path | None = None, *, file_env: str | None =
               "SIPKIT_API_TOKEN_FILE", value_env: str = "SIPKIT_API_TOKEN") -> str | None:
    """--token-file, then $file_env, then $value_env (SIPKIT_API_TOKEN_FILE, SIPKIT_API_TOKEN
    for the API; the reflector's token has its own pair). Never a flag value: flags show in
    process lists."""
    path = token_file or (os.environ.get(file_env) if file_env else None)
    if path:
        try:
            return Path(path).read_text().strip() or None
        except OSError as exc:
            raise ConfigError(f"cannot read the token file {path} ({exc.strerror})",
                              fix="give a readable file holding only the token") from None
    return os.environ.get(value_env) or None
