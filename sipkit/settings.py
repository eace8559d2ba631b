"""The site file: the Mihu create-connector body plus a sipkit-only ``check:`` section.

One file feeds ``sipkit check`` and ``sipkit connector create``; the field names are the API's
(shared/seeds/000_*: required fields, enums and defaults are authoritative). Passwords are
``SecretStr`` from the moment they are read, and no error message ever contains them.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from .endpoint import SipEndpoint
from .errors import FieldProblem, SettingsError
from .net.addresses import parse_ip, split_hostport
from .sitefile import check_bounds, read_site_document

SECRET_FIELDS = frozenset({"pbx_password", "auth_password", "password"})

_E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_DIGITS = re.compile(r"^[0-9]+$")


def is_hostname(value: str) -> bool:
    """RFC 1123 host name (labels of letters, digits, hyphens), at most 253 characters."""
    name = value[:-1] if value.endswith(".") else value
    return 0 < len(name) <= 253 and all(_LABEL.match(label) for label in name.split("."))


def _comma_list(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


class _Model(BaseModel):
    # JSON site files may carry numbers where the API wants strings (an extension 100);
    # YAML is loaded with every scalar a string (sitefile.StringLoader) for the same reason.
    model_config = ConfigDict(extra="forbid", coerce_numbers_to_str=True, frozen=True)


class Normalizer(_Model):
    """The connector's number rule: three strings, as the API has them.

    sipkit's reading (README, "Number normalization"): the rule applies when every condition
    that is set holds; then default_prefix is put in front.
    """

    default_prefix: str | None = None
    condition_length: str | None = None
    condition_prefix: str | None = None

    @field_validator("default_prefix")
    @classmethod
    def _prefix(cls, v: str | None) -> str | None:
        if v is not None and v != "" and not re.match(r"^\+?[0-9]+$", v):
            raise ValueError("must be digits, optionally starting with +")
        return v

    @field_validator("condition_length")
    @classmethod
    def _length(cls, v: str | None) -> str | None:
        if v:
            parts = _comma_list(v)
            if not parts or not all(_DIGITS.match(p) and 0 < int(p) <= 20 for p in parts):
                raise ValueError("must be a digit count from 1 to 20, or a comma list of them")
        return v

    @field_validator("condition_prefix")
    @classmethod
    def _cond_prefix(cls, v: str | None) -> str | None:
        if v:
            parts = _comma_list(v)
            if not parts or not all(re.match(r"^\+?[0-9]+$", p) for p in parts):
                raise ValueError("must be leading digits, or a comma list of them")
        return v


class TestExtension(_Model):
    """A second extension on the same PBX that ``sipkit verify`` registers as, to call the
    connector through the PBX and to be called by the agent. Never the connector's own."""

    username: str
    password: SecretStr
    number: str | None = None  # what the agent dials to reach it (default: username)

    @property
    def dial(self) -> str:
        return self.number or self.username


class NatBinding(_Model):
    """The opt-in NAT binding test (check nat_binding): idle times to try, and its budget."""

    idle_s: list[float] = [15, 30, 60, 120, 240]
    budget_s: float = Field(default=300, gt=0, le=3600)
    keepalive_s: float = Field(default=30, gt=0)  # the connector's keep-alive interval

    @field_validator("idle_s")
    @classmethod
    def _growing(cls, v: list[float]) -> list[float]:
        if not v or len(v) > 10 or any(x <= 0 for x in v) or v != sorted(v):
            raise ValueError("must be 1 to 10 growing idle times in seconds, e.g. [15, 30, 60]")
        return v


class _CommonCheck(_Model):
    """The ``check:`` options every target kind has; sipkit-only, never sent to an API."""

    # The outside view (README "The outside view"): a sipkit reflector on the internet.
    reflector: str | None = None  # its API, e.g. https://reflector.example.net:8443
    reflector_token_file: Path | None = None  # else SIPKIT_REFLECTOR_TOKEN_FILE / _TOKEN
    reflector_ca_file: Path | None = None  # the CA of its HTTPS certificate, if private
    nat_binding: NatBinding | None = None  # opt-in (`nat_binding: {}` for the defaults)

    outbound_test_number: str | None = None
    call_seconds: float = Field(default=4.0, gt=0, le=60)
    # The cloud cannot reach a PBX on private space, so dns FAILs on it; set this when the
    # cloud reaches the PBX over a private link (VPN), and in the local lab.
    allow_private_registrar: bool = False
    # Media thresholds (defaults: Microsoft Teams' network targets, anchors.md §4b)
    max_loss_pct: float = Field(default=1.0, ge=0, le=100)
    max_jitter_ms: float = Field(default=30.0, ge=0)
    min_mos: float = Field(default=3.6, ge=1, le=4.5)
    ca_file: Path | None = None
    nameserver: str | None = None
    source_ip: str | None = None
    # The test calls (sipkit.checks.calls): DTMF not negotiated is a FAIL or a WARN ("auto":
    # FAIL on the inbound call, whose caller's key presses the agent must hear; WARN on the
    # outbound one); "off" sends no digits. Hold/resume re-INVITEs in the call; opt-in: a
    # single-codec call per codec, a long call (e.g. 40 s: the 32 s ACK timeout), N
    # simultaneous calls.
    dtmf: Literal["auto", "required", "optional", "off"] = "auto"
    hold_resume: bool = True
    codec_audit: bool = False
    long_call_seconds: float | None = Field(default=None, ge=5, le=600)
    concurrent_calls: int | None = Field(default=None, ge=2, le=20)

    @field_validator("reflector")
    @classmethod
    def _reflector(cls, v: str | None) -> str | None:
        if v is not None and not re.match(r"^https://[^\s/]+(/\S*)?$", v):
            raise ValueError("must be the reflector's https:// URL")
        return v

    @field_validator("source_ip")
    @classmethod
    def _source(cls, v: str | None) -> str | None:
        if v is not None and parse_ip(v) is None:
            raise ValueError("must be an IP address of this machine")
        return v


class CheckSettings(_CommonCheck):
    """The ``check:`` section of a PBX extension's site file."""

    connector_server: str = "auto"
    test_extension: TestExtension | None = None  # for `sipkit verify` (after creation)

    @field_validator("connector_server")
    @classmethod
    def _server(cls, v: str) -> str:
        if v == "auto":
            return v
        host, _ = split_hostport(v, 5060)  # ValueError names the bad port
        if not (is_hostname(host) or parse_ip(host)):
            raise ValueError("must be 'auto', a host name or an IP address, optionally with :port")
        return v


class Site(_Model):
    """A PBX extension for a Mihu connector (``kind: pbx_extension``, the default)."""

    kind: Literal["pbx_extension"] = "pbx_extension"
    agent_uuid: str
    phone_number: str
    registrar_server: str
    username_extension: str
    pbx_password: SecretStr
    allowed_ip: str
    setup_mode: Literal["both", "inbound", "outbound"] = "both"
    connection_type: Literal["udp", "tls"] = "udp"
    port: int = Field(default=5060, ge=1, le=65535)
    auth_username: str | None = None
    auth_password: SecretStr | None = None
    normalizer: Normalizer | None = None
    check: CheckSettings = CheckSettings()

    @field_validator("agent_uuid")
    @classmethod
    def _uuid(cls, v: str) -> str:
        if not re.match(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$", v):
            raise ValueError("must be a UUID like 3c90c3cc-0d44-4b50-8888-8dd25736052a")
        return v.lower()

    @field_validator("phone_number")
    @classmethod
    def _e164(cls, v: str) -> str:
        compact = re.sub(r"[\s().-]", "", v)
        if not _E164.match(compact):
            raise ValueError("must be E.164: '+', country code and number, 8 to 15 digits")
        return compact

    @field_validator("registrar_server")
    @classmethod
    def _registrar(cls, v: str) -> str:
        v = v.strip()
        if "://" in v or v.startswith("sip:") or v.startswith("sips:"):
            raise ValueError("must be a bare host name or IP address, without a scheme")
        if parse_ip(v):
            return v.strip("[]")
        if ":" in v:
            raise ValueError("must not contain a port (use the port field)")
        if not is_hostname(v):
            raise ValueError("must be a host name (letters, digits, dots, hyphens) or an IP")
        return v.rstrip(".").lower()

    @field_validator("username_extension", "auth_username")
    @classmethod
    def _user(cls, v: str | None) -> str | None:
        if v is not None and (not v or re.search(r"[\s@:;<>\"]", v)):
            raise ValueError("must be a non-empty SIP user part (no spaces, @, :, ;, <, >)")
        return v

    @field_validator("pbx_password")
    @classmethod
    def _password(cls, v: SecretStr) -> SecretStr:
        if not v.get_secret_value():
            raise ValueError("must not be empty")
        return v

    @field_validator("allowed_ip")
    @classmethod
    def _allowed_ip(cls, v: str) -> str:
        ip = parse_ip(v)
        if ip is None or "/" in v:
            raise ValueError("must be one IP address (no range, no host name)")
        return str(ip)

    @model_validator(mode="after")
    def _pairs(self) -> Site:
        if (self.auth_username is None) != (self.auth_password is None):
            missing = "auth_password" if self.auth_password is None else "auth_username"
            raise ValueError(f"{missing} is required when the other auth_ field is set")
        return self

    # -- derived views -------------------------------------------------------------------
    @property
    def digest_username(self) -> str:
        return self.auth_username or self.username_extension

    @property
    def digest_password(self) -> SecretStr:
        return self.auth_password or self.pbx_password

    @property
    def transport(self) -> str:
        return self.connection_type

    def endpoints(self) -> list[SipEndpoint]:
        """The registrar the connector registers to, as the signalling checks read it."""
        return [SipEndpoint(
            host=self.registrar_server, port=self.port, transport=self.connection_type,
            username=self.username_extension, password=self.digest_password,
            auth_username=self.auth_username, domain=self.registrar_server,
            source_ip=self.check.source_ip, role="registrar", registers=True)]

    def secrets(self) -> list[str]:
        values = [self.pbx_password.get_secret_value()]
        if self.auth_password is not None:
            values.append(self.auth_password.get_secret_value())
        if self.check.test_extension is not None:
            values.append(self.check.test_extension.password.get_secret_value())
        return values

    def api_body(self) -> dict[str, Any]:
        """The create-connector request body, secrets revealed: for the API client only."""
        body = self.model_dump(exclude={"check", "kind"}, exclude_none=True)
        body["pbx_password"] = self.pbx_password.get_secret_value()
        if self.auth_password is not None:
            body["auth_password"] = self.auth_password.get_secret_value()
        return body

    def public_view(self) -> dict[str, Any]:
        """What may be printed: every field but the passwords."""
        view = self.model_dump(exclude=set(SECRET_FIELDS) | {"check"}, mode="json")
        view["has_separate_credentials"] = self.auth_username is not None
        return view


def _gateway(v: str | None) -> str | None:
    """``host`` or ``host:port`` (IPv6 in brackets), no scheme: what providers publish."""
    if v is None:
        return v
    v = v.strip()
    if "://" in v or v.startswith(("sip:", "sips:")):
        raise ValueError("must be a bare host name or IP address (optionally :port), "
                         "without a scheme")
    host, _ = split_hostport(v, 5060)
    if not (is_hostname(host) or parse_ip(host)):
        raise ValueError("must be a host name (letters, digits, dots, hyphens) or an IP, "
                         "optionally with :port")
    return v.rstrip(".").lower() if parse_ip(host) is None else v


class TrunkCheckSettings(_CommonCheck):
    """The ``check:`` section of a trunk's site file (a test call only with
    outbound_test_number: a call through a trunk can be billed)."""

    # auto: prove the credentials by a challenged OPTIONS, else a REGISTER if the provider
    # offers registration; required: the provider expects REGISTER; never: do not send one.
    registration: Literal["auto", "required", "never"] = "auto"
    realm: str | None = None  # the SIP domain of the account, when it is not the gateway


class TrunkSite(_Model):
    """A SIP trunk (``kind: sip_trunk``), for one of the three trunk APIs.

    ``api`` picks the body: ``mihu`` (SIP-trunk connections), ``mihu_byo`` (external BYO
    trunks under phone numbers) or ``sip_trunks`` (the ``/sip-trunks`` API of seed 003).
    """

    kind: Literal["sip_trunk"]
    api: Literal["mihu", "mihu_byo", "sip_trunks"] = "mihu"
    name: str = Field(min_length=1, max_length=255)
    phone_number: str | None = None  # E.164; required by the Mihu APIs
    gateway: str
    port: int | None = Field(default=None, ge=1, le=65535)  # None: RFC 3263 decides
    transport: Literal["udp", "tcp", "tls"] = "udp"
    username: str | None = None
    password: SecretStr | None = None
    secondary_gateway: str | None = None
    agent_uuid: str | None = None  # mihu: `trunk assign`; mihu_byo: required
    channel: Literal["call"] = "call"
    direction: Literal["inbound", "outbound", "both"] = "both"
    check: TrunkCheckSettings = TrunkCheckSettings()

    _gw = field_validator("gateway", "secondary_gateway")(classmethod(
        lambda cls, v: _gateway(v)))
    _uuid = field_validator("agent_uuid")(classmethod(
        lambda cls, v: v if v is None else Site._uuid.__func__(cls, v)))
    _user = field_validator("username")(Site._user.__func__)

    @field_validator("phone_number")
    @classmethod
    def _e164(cls, v: str | None) -> str | None:
        return v if v is None else Site._e164.__func__(cls, v)

    @model_validator(mode="after")
    def _rules(self) -> TrunkSite:
        if self.api in ("mihu", "mihu_byo") and not self.phone_number:
            raise ValueError(f"phone_number is required for api {self.api}")
        if self.api == "mihu" and (not self.username or self.password is None):
            raise ValueError("username and password are required for api mihu")
        if self.api == "mihu_byo" and not self.agent_uuid:
            raise ValueError("agent_uuid is required for api mihu_byo")
        if (self.username is None) != (self.password is None):
            raise ValueError("username and password: set both, or neither")
        host, port = split_hostport(self.gateway, 0)
        if port and self.port and port != self.port:
            raise ValueError(f"gateway says port {port} but port is {self.port}")
        return self

    def _endpoint(self, value: str, role: str) -> SipEndpoint:
        host, port = split_hostport(value, 0)
        return SipEndpoint(
            host=host.strip("[]"), port=port or self.port, transport=self.transport,
            username=self.username, password=self.password, domain=self.check.realm,
            source_ip=self.check.source_ip, role=role,  # type: ignore[arg-type]
            registers={"auto": None, "required": True, "never": False}[self.check.registration])

    def endpoints(self) -> list[SipEndpoint]:
        """The gateway, then the secondary gateway when there is one."""
        out = [self._endpoint(self.gateway, "gateway")]
        if self.secondary_gateway:
            out.append(self._endpoint(self.secondary_gateway, "secondary_gateway"))
        return out

    def secrets(self) -> list[str]:
        return [self.password.get_secret_value()] if self.password is not None else []

    def public_view(self) -> dict[str, Any]:
        return self.model_dump(exclude={"password", "check"}, mode="json")


AnySite = Site | TrunkSite


# -- loading --------------------------------------------------------------------------------

_FIXES = {
    "agent_uuid": "copy the agent's UUID from the Mihu dashboard or GET /api/v1/agents",
    "phone_number": 'write it in E.164 and in quotes, e.g. phone_number: "+12084439178"',
    "registrar_server": "give the PBX's public host name or IP, e.g. pbx.example.com",
    "username_extension": "give the PBX extension the connector registers as, e.g. \"100\"",
    "pbx_password": "set the extension's SIP password, e.g. pbx_password: ${PBX_PASSWORD}",
    "allowed_ip": "give the PBX's public source IP, e.g. 203.0.113.10",
    "setup_mode": "use one of: both, inbound, outbound",
    "connection_type": "use one of: udp, tls",
    "port": "use the PBX's SIP port, 1-65535 (5060 for UDP, 5061 usually for TLS)",
    "auth_username": "set both auth_username and auth_password, or neither",
    "auth_password": "set both auth_username and auth_password, or neither",
    "normalizer": "see README 'Number normalization' for the three fields",
    "check": "see README 'Site file' for the check: section",
    "kind": "use pbx_extension (the default) or sip_trunk",
    "api": "use one of: mihu, mihu_byo, sip_trunks (see README 'SIP trunks')",
    "name": "give the trunk a label, e.g. name: telnyx-main",
    "gateway": "give the provider's SIP host, e.g. sip.telnyx.com (or host:port)",
    "secondary_gateway": "give the fallback SIP host, e.g. sip2.example.com, or remove it",
    "username": "set the trunk's SIP username (and password)",
    "password": "set the trunk's SIP password, e.g. password: ${TRUNK_PASSWORD}",
    "transport": "use one of: udp, tcp, tls",
    "channel": "use call",
    "direction": "use one of: inbound, outbound, both",
}


def _expand(value: Any, path: str, problems: list[FieldProblem], env: dict[str, str]) -> Any:
    if isinstance(value, dict):
        return {k: _expand(v, f"{path}.{k}" if path else str(k), problems, env)
                for k, v in value.items()}
    if isinstance(value, list):
        return [_expand(v, f"{path}[{i}]", problems, env) for i, v in enumerate(value)]
    if isinstance(value, str):
        def sub(m: re.Match[str]) -> str:
            name = m.group(1)
            if name not in env:
                problems.append(FieldProblem(
                    path, f"${{{name}}} is not set in the environment",
                    f"export {name}=... before running sipkit, or write the value in the file"))
                return ""
            return env[name]
        return _VAR.sub(sub, value)
    return value


def _set_dotted(data: dict[str, Any], key: str, value: Any) -> None:
    parts = key.split(".")
    node = data
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
    node[parts[-1]] = value


def _problems_from(err: ValidationError) -> list[FieldProblem]:
    problems = []
    for e in err.errors():
        loc = [str(x) for x in e["loc"]]
        field = ".".join(loc)
        top = loc[0] if loc else "auth_username"
        kind, msg = e["type"], e["msg"].removeprefix("Value error, ")
        fix = _FIXES.get(top, "see README 'Site file'")
        if not loc:  # a model-level rule: its message names the field first
            first = (msg.split() or [""])[0]
            field = first if first in _FIXES else "auth_username/auth_password"
            fix = _FIXES.get(first, fix)
        elif kind == "missing":
            msg = "is required and missing"
        elif kind == "extra_forbidden":
            msg = "is not a field sipkit or the Mihu API knows"
            fix = "remove it, or check its spelling against README 'Site file'"
        elif kind == "literal_error":
            msg = f"must be {e['ctx']['expected']}"
        secret = any(part in SECRET_FIELDS for part in loc)
        if loc and not secret and kind not in ("missing", "extra_forbidden") \
                and not isinstance(e.get("input"), (dict, type(None))):
            msg += f" (got {e['input']!r})"
        problems.append(FieldProblem(field, msg, fix))
    return problems


def syntax_problem(exc: yaml.YAMLError | json.JSONDecodeError) -> FieldProblem:
    """Where and what, as an editor shows it: "line 3, column 1: found a tab ..."."""
    if isinstance(exc, json.JSONDecodeError):
        return FieldProblem("(file)", f"is not valid JSON: line {exc.lineno}, column "
                            f"{exc.colno}: {exc.msg}", "fix the syntax")
    mark = getattr(exc, "problem_mark", None)
    what = getattr(exc, "problem", None) or "syntax error"
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
    hint = " (YAML indents with spaces, never tabs)" if "tab" in what or "\\t" in what else ""
    return FieldProblem("(file)", f"is not valid YAML: {where}{what}{hint}", "fix the syntax")


def load_site(
    path: str | Path | None,
    overrides: dict[str, Any] | None = None,
    env: dict[str, str] | None = None,
) -> AnySite:
    """Read a YAML or JSON site file, expand ${VAR}, apply dotted overrides, validate.

    ``kind: sip_trunk`` makes it a TrunkSite; otherwise it is a PBX extension (Site)."""
    env = dict(os.environ) if env is None else env
    source = str(path) if path else "command-line flags"
    data: dict[str, Any] = {}
    if path:
        data = read_site_document(path, source)
    problems: list[FieldProblem] = []
    data = _expand(data, "", problems, env)
    for key, value in (overrides or {}).items():
        _set_dotted(data, key, value)
    check_bounds(data, source)  # ${VAR} values and --set ones have field limits too
    # An override replaces a field whose ${VAR} was unset; the others are reported together
    # with every validation problem, so one unset variable does not hide the rest.
    problems = [p for p in problems if p.field not in (overrides or {})]
    try:
        site: AnySite = (TrunkSite if data.get("kind") == "sip_trunk" else Site) \
            .model_validate(data)
    except ValidationError as err:
        unset = {p.field for p in problems}
        problems += [p for p in _problems_from(err) if p.field not in unset]
    if problems:
        raise SettingsError(source, problems)
    return site


def parse_overrides(pairs: list[str]) -> dict[str, Any]:
    """`KEY=VALUE` strings from --set; `null` means None. Values stay strings."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise SettingsError("--set", [FieldProblem(
                "--set", f"{pair.split('=')[0]!r} is not KEY=VALUE", "write e.g. --set port=5061")])
        out[key.strip()] = None if value == "null" else value
    return out
