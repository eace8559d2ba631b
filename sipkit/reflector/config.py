"""The reflector's settings file (``reflector.yaml``), validated like a site file."""

from __future__ import annotations

from pathlib import Path

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from ..errors import FieldProblem, SettingsError
from ..net.addresses import parse_ip, split_hostport
from ..sitefile import Limits as FileLimits
from ..sitefile import load_yaml, read_bounded


class Limits(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    per_token_per_minute: int = Field(default=60, ge=1, le=10000)  # API requests per token
    per_target_per_minute: int = Field(default=6, ge=1, le=1000)  # probes towards one address
    max_mirror_bytes: int = Field(default=8192, ge=512, le=65000)  # a bigger message is refused
    mirror_messages: int = Field(default=8, ge=1, le=64)  # per mirror session
    max_binding_s: float = Field(default=600, gt=0, le=3600)  # the longest binding test
    max_body_bytes: int = Field(default=16384, ge=1024, le=1 << 20)  # an API request body
    session_s: float = Field(default=120, gt=0, le=3600)  # how long a mirror/binding id lives


class ReflectorConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    listen: str = "0.0.0.0:8443"  # the HTTPS API
    tls_cert: Path  # PEM certificate (chain) of the API
    tls_key: Path
    public_ip: str  # the reflector's public address: its SIP sockets bind here
    sip_port: int = Field(default=5060, ge=1, le=65535)  # UDP and TCP, mirror and binding
    tokens: Path  # the token file (see tokens.py)
    request_log: Path | None = None  # JSON lines; None: standard error
    nameserver: str | None = None  # the reflector's own DNS; None: the system resolver
    timeout: float = Field(default=3.0, gt=0, le=30)  # one SIP exchange towards a target
    limits: Limits = Limits()

    @field_validator("public_ip", "listen")
    @classmethod
    def _address(cls, v: str, info: ValidationInfo) -> str:
        """public_ip: an address of this machine; listen: IP:PORT for the API."""
        host, port = (v, None) if info.field_name == "public_ip" else split_hostport(v, 0)
        if parse_ip(host.strip("[]")) is None or port == 0:
            raise ValueError("must be an IP address of this machine (its public one)"
                             if port is None else "must be IP:PORT, e.g. 0.0.0.0:8443")
        return v

    @property
    def listen_hostport(self) -> tuple[str, int]:
        host, port = split_hostport(self.listen, 0)
        return host.strip("[]"), port


_FIXES = {"tls_cert": "give the PEM certificate of the API (e.g. from Let's Encrypt)",
          "tls_key": "give the private key of tls_cert", "tokens": "give the token file's path",
          "public_ip": "give the reflector's public IP address"}


# bounded like a site file (sitefile): size, aliases, depth, a key given twice
FILE_LIMITS = FileLimits("reflector settings file", fix="write the values out: reflector.yaml "
                         "has a dozen fields, nested at most two levels (limits.*)")


def load_config(path: str | Path) -> ReflectorConfig:
    source = str(path)
    data = load_yaml(read_bounded(path, source, FILE_LIMITS), source, FILE_LIMITS) or {}
    if not isinstance(data, dict):
        raise SettingsError(source, [FieldProblem("(file)", "must be a mapping",
                                                  "see README 'The outside view'")])
    try:
        cfg = ReflectorConfig.model_validate(data)
    except ValidationError as err:
        problems = []
        for e in err.errors():
            field = ".".join(str(x) for x in e["loc"])
            msg = "is required and missing" if e["type"] == "missing" else \
                e["msg"].removeprefix("Value error, ")
            problems.append(FieldProblem(field, msg, _FIXES.get(
                field, "see README 'The outside view' for reflector.yaml")))
        raise SettingsError(source, problems) from None
    for field in ("tls_cert", "tls_key", "tokens"):
        if not getattr(cfg, field).is_file():
            raise SettingsError(source, [FieldProblem(field, f"{getattr(cfg, field)} is not a "
                                                      "readable file", _FIXES[field])])
    return cfg
