"""probes.yaml: named modules, each a prober kind and its own typed section, like
blackbox_exporter's (``tcp:``, ``http:`` ...):

    modules:
      sip_udp:  {prober: options, timeout: 3s, options: {transport: udp}}
      reg_100:  {prober: register, timeout: 5s,
                 register: {username: "100", password_env: PBX_100_PASSWORD, min_interval: 5m}}
      cert:     {prober: tls, tls: {warn_days: 14}}
      dns:      {prober: dns}
      echo:     {prober: call, timeout: 30s, call: {uri: "sip:echo@{target}", min_interval: 5m}}

Durations are written the Prometheus way (``500ms``, ``5s``, ``1m30s``, ``2h``) or as plain
seconds. Files of the first format (every field flat on the module) still load: their fields
move into the prober's section; a field that belongs to another prober is named in the error.

probes.yaml is read whole, bounded (``LIMITS``: size, aliases, depth, keys given twice);
targets.yaml is read as a stream (see ``targets``).
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    model_validator,
)

from ..errors import FieldProblem, SettingsError
from ..net.addresses import split_hostport
from ..sitefile import Limits, load_yaml, read_bounded

_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
_RANK = ["y", "w", "d", "h", "m", "s", "ms"]
_DURATION = re.compile(r"(?:(\d+)(ms|[ywdhms]))", re.ASCII)


def parse_duration(value) -> float:
    """Seconds from ``5s``, ``1m30s``, ``500ms``, ``2h``, ``0`` or a plain number (seconds).
    Prometheus' own grammar (integers with units, largest unit first), ASCII digits only."""
    if isinstance(value, bool):
        raise ValueError("a duration is a number of seconds or 5s, 1m30s, 500ms")  # noqa: TRY004
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip()
        seconds = float(text) if re.fullmatch(r"\d+(\.\d+)?", text, re.ASCII) else None
        if seconds is None:
            parts = _DURATION.findall(text)
            if not parts or "".join(n + u for n, u in parts) != text:
                raise ValueError(f"{value!r} is not a duration (write 500ms, 5s, 1m30s, 2h or "
                                 "plain seconds)")
            ranks = [_RANK.index(u) for _, u in parts]
            if ranks != sorted(set(ranks)):
                raise ValueError(f"{value!r}: units go largest first, each once (1h30m)")
            seconds = float(sum(int(n) * _UNITS[u] for n, u in parts))
    else:
        raise ValueError("a duration is a number of seconds or 5s, 1m30s, 500ms")  # noqa: TRY004
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError("a duration must be a finite number of seconds, 0 or more")
    return seconds


Duration = Annotated[float, BeforeValidator(parse_duration)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SipSection(_Section):
    """What every SIP-speaking prober shares: how to reach the target."""

    transport: Literal["udp", "tcp", "tls"] = "udp"
    t1: Duration = Field(default=0.5, gt=0, le=4)  # RFC 3261 T1: first retransmit
    source_ip: str | None = None
    nameserver: str | None = None
    ca_file: Path | None = None
    insecure: bool = False  # TLS: do not verify the certificate


class Credentials(_Section):
    """A SIP account, its password from the environment or a file, never from this file;
    at most one authenticated attempt per target and ``min_interval``, kept across restarts."""

    username: str | None = None
    auth_username: str | None = None
    domain: str | None = None  # From/To domain; default the target host
    password_env: str | None = None
    password_file: Path | None = None
    min_interval: Duration = 60.0

    def password(self) -> SecretStr | None:
        if self.password_file:
            try:
                return SecretStr(self.password_file.read_text().strip())
            except OSError:
                return None
        if self.password_env:
            value = os.environ.get(self.password_env)
            return SecretStr(value) if value else None
        return None


class OptionsSection(SipSection):
    # which final codes count as up; empty = any final answer below 500
    valid_status_codes: list[int] = Field(default_factory=list)
    warn_rtt: Duration | None = None  # Nagios WARNING above this round trip
    # TCP/TLS: keep the connection to the target and send the next OPTIONS on it (RFC 5923's
    # connection reuse; what a UA does); off: a fresh connection per probe
    reuse_connection: bool = True


class RegisterSection(SipSection, Credentials):
    pass


class TlsSection(_Section):
    warn_days: int = 14
    ca_file: Path | None = None
    insecure: bool = False
    source_ip: str | None = None
    nameserver: str | None = None


class DnsSection(_Section):
    transport: Literal["udp", "tcp", "tls"] = "udp"
    nameserver: str | None = None


class CallSection(SipSection, Credentials):
    """A synthetic test call: ``uri`` is whom to call, ``{target}`` is the target line's
    host[:port]. With ``registrar`` (again ``{target}`` allowed) the call registers first."""

    uri: str = "sip:echo@{target}"
    registrar: str | None = None
    from_uri: str | None = None  # default sip:USERNAME@HOST with credentials
    proxy: str | None = None
    local_ip: str = "127.0.0.1"  # SIP and RTP bind here
    media: Duration = Field(default=3.0, gt=0, le=60)  # seconds of audio after the answer
    setup_timeout: Duration = Field(default=10.0, gt=0, le=120)
    min_interval: Duration = 300.0
    codecs: list[str] = Field(default_factory=list)
    min_mos: float = Field(default=3.6, ge=1, le=4.5)
    max_loss_pct: float = Field(default=1.0, ge=0, le=100)


SECTIONS: dict[str, type[_Section]] = {"options": OptionsSection, "register": RegisterSection,
                                       "tls": TlsSection, "dns": DnsSection,
                                       "call": CallSection}
# the first format's names that changed
_RENAMED = {"warn_rtt_ms": ("warn_rtt", lambda v: v / 1000 if isinstance(v, int | float) else v)}


def _attr(prober: str) -> str:
    return "register_" if prober == "register" else prober  # BaseModel has a .register


class Module(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    prober: Literal["options", "register", "tls", "dns", "call"]
    timeout: Duration = Field(default=3.0, gt=0, le=120)
    options: OptionsSection | None = None
    register_: RegisterSection | None = Field(default=None, alias="register")
    tls: TlsSection | None = None
    dns: DnsSection | None = None
    call: CallSection | None = None

    @model_validator(mode="before")
    @classmethod
    def _migrate(cls, data):
        """The first format put every field on the module: move them into the section."""
        if not isinstance(data, dict) or data.get("prober") not in SECTIONS:
            return data
        prober = data["prober"]
        section_cls = SECTIONS[prober]
        own = {"prober", "timeout", *SECTIONS}
        flat = {k: v for k, v in data.items() if k not in own}
        if not flat:
            return data
        if isinstance(data.get(prober), dict):
            return data  # a section is given: stray fields are reported as extra below
        moved = {}
        for key, value in flat.items():
            new, convert = _RENAMED.get(key, (key, None))
            if new not in section_cls.model_fields:
                homes = [p for p, c in SECTIONS.items() if new in c.model_fields]
                where = f"it belongs to prober {' / '.join(homes)}" if homes else "unknown field"
                raise ValueError(f"field {key!r} has no meaning for prober {prober!r} ({where}); "
                                 f"remove it, or put the {prober} fields under '{prober}:'")
            moved[new] = convert(value) if convert else value
        return {k: v for k, v in data.items() if k in own} | {prober: moved}

    @model_validator(mode="after")
    def _section(self):
        for name in SECTIONS:
            if name != self.prober and getattr(self, _attr(name)) is not None:
                raise ValueError(f"section {name!r} given to a {self.prober!r} module; "
                                 f"a module has the section of its own prober only")
        if getattr(self, _attr(self.prober)) is None:
            setattr(self, _attr(self.prober), SECTIONS[self.prober]())
        return self

    @property
    def section(self):
        """This module's own typed section (``options``, ``register``, ...)."""
        return getattr(self, _attr(self.prober))

    @property
    def transport(self) -> str:
        return getattr(self.section, "transport", "tls" if self.prober == "tls" else "udp")

    @property
    def fast_udp(self) -> bool:
        """Runs on the fleet's shared UDP socket."""
        return self.prober == "options" and self.section.transport == "udp"


class ProbeConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    modules: dict[str, Module]
    # test calls running at once in one exporter or run, all call modules together
    max_parallel_calls: int = Field(default=2, ge=1, le=50)
    # where register and call probes keep their lockout state across restarts;
    # default: $SIPKIT_STATE_DIR or ~/.local/state/sipkit, file probe-lockout.json
    state_file: Path | None = None


class Target(BaseModel):
    model_config = ConfigDict(extra="forbid")
    target: str  # host, host:port, [v6]:port
    module: str
    labels: dict[str, str] = Field(default_factory=dict)


# a fleet's modules, a few hundred bytes each; aliases may share sections, never multiply them
LIMITS = Limits("probes file", max_bytes=4 * 1024 * 1024, max_line=None, nodes_per_byte=4,
                fix="write the modules out (YAML anchors may share a section, not nest "
                "references to references); modules nest a few levels (modules.NAME.SECTION)")


def _read(path: Path):
    """The YAML document, typed (ints, bools, durations as written), bounded by LIMITS."""
    return load_yaml(read_bounded(path, str(path), LIMITS), str(path), LIMITS)


def validation_problems(err: ValidationError, prefix: str = "") -> list[FieldProblem]:
    return [FieldProblem(prefix + (".".join(str(x) for x in e["loc"]) or "(file)"),
                         e["msg"].removeprefix("Value error, "),
                         "see probes/probes.yaml for an example")
            for e in err.errors()]


def load_config(path: Path) -> ProbeConfig:
    data = _read(path)
    try:
        return ProbeConfig.model_validate(data)
    except ValidationError as err:
        raise SettingsError(str(path), validation_problems(err)) from None


def split_target(value: str, transport: str) -> tuple[str, int]:
    """host[:port] of a target line (a ``sip:user@host:port`` URI gives its host:port)."""
    if value.startswith(("sip:", "sips:")):
        value = value.split(":", 1)[1].rpartition("@")[2].split(";", 1)[0]
    if not value.isascii():
        # a fullwidth "５０６０" passes str.isdigit(); names are punycode (IDNA) on the wire
        raise ValueError(f"non-ASCII characters in {value!r} (write digits 0-9, IDNA names)")
    return split_hostport(value, 5061 if transport == "tls" else 5060)
