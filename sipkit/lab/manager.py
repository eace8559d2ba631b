"""`sipkit lab`: a real SIP lab on loopback, as ordinary processes with PID files.

Addresses come from one /24 inside 127.0.0.0/8 (``prefix``), so several labs (a demo and a
test session) can run side by side:

    .1  PBX          Kamailio registrar: UDP/TCP 5060, TLS 5061 (good certificate)
    .2  connector    Kamailio "SIP connector server": UDP/TCP 5060, TLS 5061
    .3  echo UAS     SIPp answering INVITEs: UDP 5060; its SDP names the media echo on 6000
        media echo   RTP echoed on 6000, RTCP answered on 6001 (sipkit.lab.rtp_echo)
    .4  API sandbox  the Mihu API double over HTTP on 8080 (when sipkit.lab.sandbox is present);
                 with it, the cloud: one pjsua2 UA per connector, registering from .2 to the PBX
                 as the connector's extension (sipkit.lab.cloud_agent)
    .6  PBX TLS with a certificate for another name (hostname-mismatch tests)
    .7  PBX TLS with an expired certificate
    .250 carrier     Kamailio SIP trunk provider: digest on OPTIONS/INVITE (407), UDP/TCP 5060,
                     TLS 5061; UDP 5070 is its registering variant (REGISTER with 401)
    .251 carrier2    the same provider's secondary gateway (tests stop it: failover down)

``up`` is idempotent; ``down`` stops only the processes this lab started (by PID, checked
against the command line so a recycled PID is never killed).
"""

from __future__ import annotations

import datetime as dt
import functools
import importlib.util
import json
import os
import secrets
import shlex
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from ..errors import LabError, UsageError

DEFAULT_PREFIX = "127.0.0"
REALM = "pbx.sipkit.test"
PBX_NAME = "pbx.sipkit.test"
CONNECTOR_NAME = "connector.sipkit.test"
EXTENSIONS = ("100", "101", "102")
TEST_EXTENSION = "200"  # `sipkit verify` registers as this one: never a connector's
AGENT_UUID = "3c90c3cc-0d44-4b50-8888-8dd25736052a"
PHONE_NUMBER = "+902124439178"  # Istanbul: the lab rule is a Turkish mobile rule
CARRIER_NAME = "carrier.sipkit.test"
CARRIER_USER = "lab-trunk"
TRUNK_NUMBER = "+902124439179"

# binary -> Debian package that provides it
RTP_PORT = 6000  # the echo's media (RTCP on 6001), named in echo_uas.xml's SDP
PACKAGES = {"kamailio": "kamailio", "sipp": "sip-tester"}
TLS_MODULE = Path("/usr/lib/x86_64-linux-gnu/kamailio/modules/tls.so")


@functools.cache
def ipv6_loopback() -> bool:
    """Whether ::1 can be bound (containers often run with IPv6 disabled)."""
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


def default_dir() -> Path:
    env = os.environ.get("SIPKIT_LAB_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "sipkit" / "lab"


@dataclass
class Component:
    name: str
    pid: int
    argv: list[str]
    log: str
    endpoint: str

    def alive(self) -> bool:
        try:
            cmdline = Path(f"/proc/{self.pid}/cmdline").read_bytes()
            stat = "" if cmdline else Path(f"/proc/{self.pid}/stat").read_text(errors="replace")
        except OSError:
            return False
        return is_ours(self.pid, cmdline, stat, self.argv, os.getpid())


def is_ours(pid: int, cmdline: bytes, stat: str, argv: list[str], parent: int) -> bool:
    """Whether the process ``pid`` (its /proc cmdline and stat) is the one started with
    ``argv``, or is starting as it: a PID recycled by another program is never ours.

    The same program and config path (argv[0] and argv[-1]) in its command line: ours. An
    empty command line is a zombie, a kernel thread, or a process inside execve(2) between
    taking its new memory and writing its arguments there; Popen returns in that window (the
    exec closes its CLOEXEC error pipe first). So it counts as ours starting only when it is
    live (state not Z or X), our child (``parent``) and its own session's leader
    (start_new_session), as what we just spawned is."""
    if cmdline:
        args = cmdline.split(b"\0")
        return args[0].decode(errors="replace") == argv[0] and os.fsencode(argv[-1]) in args
    fields = stat.rpartition(")")[2].split()  # after "pid (comm)": comm may hold ") "
    if len(fields) < 4 or not (fields[1].isdigit() and fields[3].isdigit()):
        return False
    state, ppid, session = fields[0], int(fields[1]), int(fields[3])
    return state not in ("Z", "X", "x") and ppid == parent and session == pid


@dataclass
class Lab:
    directory: Path = field(default_factory=default_dir)
    prefix: str = DEFAULT_PREFIX

    # -- addresses --------------------------------------------------------------------
    def ip(self, host: int) -> str:
        return f"{self.prefix}.{host}"

    @property
    def pbx_ip(self) -> str:
        return self.ip(1)

    @property
    def connector_ip(self) -> str:
        return self.ip(2)

    @property
    def echo_ip(self) -> str:
        return self.ip(3)

    @property
    def api_ip(self) -> str:
        return self.ip(4)

    @property
    def tls_mismatch_ip(self) -> str:
        return self.ip(6)

    @property
    def tls_expired_ip(self) -> str:
        return self.ip(7)

    @property
    def carrier_ip(self) -> str:
        return self.ip(250)

    @property
    def carrier2_ip(self) -> str:
        return self.ip(251)

    @property
    def pbx_port6(self) -> int:
        """The PBX's UDP/TCP port on [::1]: derived from the prefix, so labs do not collide."""
        b, c = (int(x) for x in self.prefix.split(".")[1:3])
        return 20000 + (b * 256 + c) % 20000

    @property
    def api_url(self) -> str:
        return f"http://{self.api_ip}:8080"

    @property
    def state_file(self) -> Path:
        return self.directory / "lab.json"

    @property
    def prefix_file(self) -> Path:
        """Which prefix the folder's state belongs to; kept after `down` (see claim_prefix)."""
        return self.directory / "prefix"

    @property
    def site_file(self) -> Path:
        return self.directory / "site.yaml"

    @property
    def tls_site_file(self) -> Path:
        return self.directory / "site-tls.yaml"

    @property
    def ipv6_site_file(self) -> Path:
        return self.directory / "site-ipv6.yaml"

    @property
    def trunk_file(self) -> Path:
        return self.directory / "trunk.yaml"

    @property
    def ca_file(self) -> Path:
        return self.directory / "certs" / "ca.crt"

    @property
    def token_file(self) -> Path:
        return self.directory / "api-token"

    @property
    def source_rules(self) -> Path:
        """"IP refuse|drop" lines: the PBX's answer to REGISTERs from IP (pbx.cfg)."""
        return self.directory / "pbx" / "source_rules"

    @property
    def reroute_file(self) -> Path:
        """Extensions whose INVITEs the PBX sends to the echo UAS instead (pbx.cfg)."""
        return self.directory / "pbx" / "reroute"

    @property
    def env_file(self) -> Path:
        return self.directory / "lab.env"

    # -- state ------------------------------------------------------------------------
    def components(self) -> list[Component]:
        try:
            raw = json.loads(self.state_file.read_text())
        except (OSError, ValueError):
            return []
        return [Component(**c) for c in raw.get("components", [])]

    def _save(self, comps: list[Component]) -> None:
        data = {"prefix": self.prefix, "components": [c.__dict__ for c in comps]}
        self.state_file.write_text(json.dumps(data, indent=2))

    def passwords(self) -> dict[str, str]:
        path = self.directory / "secrets.json"
        pw = json.loads(path.read_text()) if path.exists() else {}
        missing = [e for e in (*EXTENSIONS, TEST_EXTENSION) if e not in pw]
        if not missing:
            return pw
        pw |= {ext: f"lab-{ext}-{secrets.token_hex(6)}" for ext in missing}
        path.write_text(json.dumps(pw))
        path.chmod(0o600)
        return pw

    def carrier_password(self) -> str:
        path = self.directory / "carrier-secret"
        if not path.exists():
            path.write_text(f"trunk-{secrets.token_hex(8)}")
            path.chmod(0o600)
        return path.read_text().strip()

    def token(self) -> str:
        if not self.token_file.exists():
            self.token_file.write_text("lab_" + secrets.token_urlsafe(24))
            self.token_file.chmod(0o600)
        return self.token_file.read_text().strip()

    # -- lifecycle --------------------------------------------------------------------
    def up(self, timeout: float = 15.0) -> dict:
        """Start what is not running, wait until every peer answers; return a summary."""
        t0 = time.monotonic()
        missing_bin = [f"{b} (apt-get install {pkg})" for b, pkg in PACKAGES.items()
                       if shutil.which(b) is None]
        if not TLS_MODULE.exists() and shutil.which("kamailio"):
            missing_bin.append("kamailio TLS module (apt-get install kamailio-tls-modules)")
        if missing_bin:
            raise LabError("the lab needs: " + ", ".join(missing_bin))
        self.directory.mkdir(parents=True, exist_ok=True)
        self.directory.chmod(0o700)
        comps = self.components()
        self._claim_prefix(comps)
        running = {c.name: c for c in comps if c.alive()}
        already = sorted(running)
        self._prepare_files()
        started: list[Component] = []
        try:
            for name, starter in (("pbx", self._start_pbx), ("connector", self._start_connector),
                                  ("echo", self._start_echo), ("rtp", self._start_rtp),
                                  ("api", self._start_api), ("carrier", self._start_carrier),
                                  ("carrier2", self._start_carrier2)):
                if name in running:
                    continue
                comp = starter()
                if comp is not None:
                    running[name] = comp
                    started.append(comp)
            self._save(list(running.values()))
            self._wait_ready(running, timeout)
        except LabError:
            self._save(list(running.values()))
            raise
        self._write_site_files()
        return {"directory": str(self.directory), "started": [c.name for c in started],
                "already_running": already, "seconds": round(time.monotonic() - t0, 2),
                "components": {c.name: c.endpoint for c in running.values()},
                "site_file": str(self.site_file), "tls_site_file": str(self.tls_site_file),
                "ipv6_site_file": str(self.ipv6_site_file) if self.ipv6_site_file.exists()
                else None, "trunk_file": str(self.trunk_file),
                "env_file": str(self.env_file)}

    def down(self, timeout: float = 6.0) -> dict:
        comps = self.components()
        stopped, killed = [], []
        for comp in reversed(comps):
            if not comp.alive():
                continue
            _signal_group(comp.pid, signal.SIGTERM)
            stopped.append(comp.name)
        deadline = time.monotonic() + timeout
        for comp in comps:
            while comp.alive() and time.monotonic() < deadline:
                _reap(comp.pid)
                time.sleep(0.05)
            if comp.alive():
                _signal_group(comp.pid, signal.SIGKILL)
                killed.append(comp.name)
            _reap(comp.pid)
        if self.state_file.exists():
            self.state_file.unlink()
        return {"stopped": stopped, "killed": killed}

    def _claim_prefix(self, comps: list[Component]) -> None:
        """The folder's state names addresses of one prefix (the API database its connector
        server, the allowed-IP list, the certificates): never start another prefix on it."""
        before = recorded_prefix(self.directory)
        if before not in (None, self.prefix):
            if any(c.alive() for c in comps):  # the user's choice to fix: a usage error
                raise UsageError(
                    f"the lab in {self.directory} is running on {before}.x, not {self.prefix}.x: "
                    f"stop it first (sipkit lab down --dir {self.directory}), or give this "
                    "prefix its own folder with --dir")
            # Stopped: forget the state that names the old addresses (the certificates are
            # remade by their own stamp); the passwords and the token stay.
            for stale in ("api.db", "api.db-wal", "api.db-shm", "connector/allowed_ips",
                          "site.yaml", "site-tls.yaml", "site-ipv6.yaml", "trunk.yaml",
                          "lab.env"):
                (self.directory / stale).unlink(missing_ok=True)
        self.prefix_file.write_text(self.prefix + "\n")

    def env(self) -> dict[str, str]:
        """lab.env as a dict (it is written for `source`: `export NAME=value` lines)."""
        out = {}
        for line in self.env_file.read_text().splitlines():
            words = shlex.split(line, comments=True)
            if words and words[0] == "export":
                words = words[1:]
            for word in words:
                name, _, value = word.partition("=")
                out[name] = value
        return out

    def stop(self, name: str, timeout: float = 6.0) -> bool:
        """Stop one component (tests: a gateway goes down); ``up`` starts it again."""
        comps = self.components()
        comp = next((c for c in comps if c.name == name and c.alive()), None)
        if comp is None:
            return False
        _signal_group(comp.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while comp.alive() and time.monotonic() < deadline:
            _reap(comp.pid)
            time.sleep(0.05)
        if comp.alive():
            _signal_group(comp.pid, signal.SIGKILL)
        _reap(comp.pid)
        self._save([c for c in comps if c is not comp])
        return True

    def status(self) -> list[dict]:
        out = []
        for comp in self.components():
            alive = comp.alive()
            out.append({"name": comp.name, "pid": comp.pid, "alive": alive,
                        "endpoint": comp.endpoint,
                        "answering": alive and self._answers(comp.name, 0.5)})
        return out

    # -- files ------------------------------------------------------------------------
    def _prepare_files(self) -> None:
        d = self.directory
        for sub in ("pbx/db", "pbx/run", "connector/run", "carrier/run", "carrier2/run", "certs",
                    "echo"):
            (d / sub).mkdir(parents=True, exist_ok=True)
        self._make_certs()
        files = resources.files("sipkit.lab") / "files"
        for name, dest in (("pbx.cfg", d / "pbx/kamailio.cfg"),
                           ("connector.cfg", d / "connector/kamailio.cfg"),
                           ("carrier.cfg", d / "carrier/kamailio.cfg"),
                           ("carrier.cfg", d / "carrier2/kamailio.cfg"),
                           ("echo_uas.xml", d / "echo/echo_uas.xml")):
            dest.write_text((files / name).read_text())
        (d / "pbx/db/version").write_text(
            "id(int,auto) table_name(string) table_version(int) \n0:subscriber:7\n0:location:9\n")
        # db_text: ha1 columns must be declared nullable or the table fails to load (lab.md).
        rows = "".join(f"{i}:{ext}:{REALM}:{pw}::\n"
                       for i, (ext, pw) in enumerate(self.passwords().items(), 1))
        sub = d / "pbx/db/subscriber"
        sub.write_text("id(int,auto) username(string) domain(string) password(string) "
                       "ha1(string,null) ha1b(string,null) \n" + rows)
        sub.chmod(0o600)
        for rules in (self.source_rules, self.reroute_file):
            if not rules.exists():
                rules.write_text("")
        certs = d / "certs"
        (d / "pbx/tls.cfg").write_text(
            _tls_section(f"{self.pbx_ip}:5061", certs / "pbx")
            + _tls_section(f"{self.tls_mismatch_ip}:5061", certs / "mismatch")
            + _tls_section(f"{self.tls_expired_ip}:5061", certs / "expired")
            + _tls_section("default", certs / "pbx") + _TLS_CLIENT)
        (d / "connector/tls.cfg").write_text(
            _tls_section("default", certs / "connector") + _TLS_CLIENT)
        for name in ("carrier", "carrier2"):
            (d / name / "tls.cfg").write_text(
                _tls_section("default", certs / "carrier") + _TLS_CLIENT)

    def _make_certs(self) -> None:
        from .certs import make_ca, make_server_cert

        certs = self.directory / "certs"
        stamp = certs / f"made-v2-for-{self.prefix}"  # v2: the carrier's certificate
        if stamp.exists():
            return
        ca_crt, ca_key = make_ca(certs)
        make_server_cert(certs, "pbx", ca_crt, ca_key, [PBX_NAME, "localhost"], [self.pbx_ip])
        make_server_cert(certs, "connector", ca_crt, ca_key, [CONNECTOR_NAME],
                         [self.connector_ip])
        make_server_cert(certs, "carrier", ca_crt, ca_key, [CARRIER_NAME],
                         [self.carrier_ip, self.carrier2_ip])
        # Served on .6 but names neither .6 nor anything that resolves to it.
        make_server_cert(certs, "mismatch", ca_crt, ca_key, ["other.sipkit.test"], [])
        past = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=30)
        make_server_cert(certs, "expired", ca_crt, ca_key, [PBX_NAME], [self.tls_expired_ip],
                         not_before=past - dt.timedelta(days=365), not_after=past)
        stamp.touch()

    def _write_site_files(self) -> None:
        pw = self.passwords()
        common = (f"agent_uuid: {AGENT_UUID}\n"
                  f'phone_number: "{PHONE_NUMBER}"\n'
                  f"registrar_server: {self.pbx_ip}\n"
                  'username_extension: "100"\n'
                  f'pbx_password: "{pw["100"]}"\n'
                  f"allowed_ip: {self.pbx_ip}\n"
                  "setup_mode: both\n")
        check = ("check:\n"
                 "  connector_server: auto\n"
                 '  outbound_test_number: "5321234567"\n'
                 "  call_seconds: 3\n"
                 "  allow_private_registrar: true   # the lab lives on loopback\n"
                 f"  source_ip: {self.pbx_ip}   # sipkit runs on the PBX host\n"
                 f"  ca_file: {self.ca_file}\n"
                 f'  test_extension: {{username: "{TEST_EXTENSION}", '
                 f'password: "{pw[TEST_EXTENSION]}"}}   # for sipkit verify\n')
        norm = 'normalizer: {default_prefix: "0", condition_length: "10", condition_prefix: "5"}\n'
        header = "# Written by `sipkit lab up`: the lab PBX as a customer site.\n"
        for path, transport, port in ((self.site_file, "udp", 5060),
                                      (self.tls_site_file, "tls", 5061)):
            path.write_text(header + common + f"connection_type: {transport}\nport: {port}\n"
                            + norm + check)
            path.chmod(0o600)
        if ipv6_loopback():
            v6 = (common.replace(f"registrar_server: {self.pbx_ip}", 'registrar_server: "::1"')
                  .replace(f"allowed_ip: {self.pbx_ip}", 'allowed_ip: "::1"'))
            self.ipv6_site_file.write_text(
                header + "# IPv6 signalling only: the connector server and the test calls are "
                "IPv4 here\n# (sipkit check --skip allowed_ip,call_inbound,call_outbound).\n"
                + v6 + f"connection_type: udp\nport: {self.pbx_port6}\n" + norm
                + check.replace(f"source_ip: {self.pbx_ip}", 'source_ip: "::1"'))
            self.ipv6_site_file.chmod(0o600)
        self.trunk_file.write_text(
            "# Written by `sipkit lab up`: the lab carrier as a SIP trunk (sipkit check, "
            "sipkit trunk).\n"
            "kind: sip_trunk\n"
            "api: mihu\n"
            "name: lab-carrier\n"
            f'phone_number: "{TRUNK_NUMBER}"\n'
            f"gateway: {self.carrier_ip}\n"
            f"secondary_gateway: {self.carrier2_ip}\n"
            "port: 5060\n"
            "transport: udp\n"
            f"username: {CARRIER_USER}\n"
            f'password: "{self.carrier_password()}"\n'
            f"agent_uuid: {AGENT_UUID}\n"
            "check:\n"
            "  allow_private_registrar: true   # the lab lives on loopback\n"
            f"  ca_file: {self.ca_file}\n")
        self.trunk_file.chmod(0o600)
        # `export`, so a plain `source lab.env` reaches the sipkit the shell starts next.
        q = shlex.quote
        self.env_file.write_text("# source this file: . lab.env\n"
                                 f"export SIPKIT_API_URL={q(self.api_url)}\n"
                                 f"export SIPKIT_API_TOKEN_FILE={q(str(self.token_file))}\n"
                                 f"export SIPKIT_LAB_DIR={q(str(self.directory))}\n")

    # -- processes --------------------------------------------------------------------
    def _spawn(self, name: str, argv: list[str], endpoint: str, cwd: Path | None = None) -> Component:
        log = self.directory / f"{name}.log"
        with open(log, "ab") as out:
            proc = subprocess.Popen(argv, stdout=out if name != "echo" else subprocess.DEVNULL,
                                    stderr=out, stdin=subprocess.DEVNULL, cwd=cwd,
                                    start_new_session=True)
        return Component(name=name, pid=proc.pid, argv=argv, log=str(log), endpoint=endpoint)

    def _kamailio(self, name: str, defines: dict[str, str]) -> Component:
        d = self.directory / name
        argv = [shutil.which("kamailio") or "kamailio", "-DD", "-E", "-m", "64", "-M", "8",
                "-P", str(d / "run/kamailio.pid"), "-Y", str(d / "run")]
        for key, value in defines.items():
            argv += ["-A", f"{key}={value}" if value.isdigit() else f'{key}="{value}"']
        argv += ["-f", str(d / "kamailio.cfg")]
        return self._spawn(name, argv, "", cwd=d)

    def _start_pbx(self) -> Component:
        d = self.directory / "pbx"
        defines = {
            "PBX_IP": self.pbx_ip, "TLS_MISMATCH_IP": self.tls_mismatch_ip,
            "TLS_EXPIRED_IP": self.tls_expired_ip, "DBURL": f"text://{d / 'db'}",
            "TLSCFG": str(d / "tls.cfg"), "ECHO_URI": f"sip:{self.echo_ip}:5060",
            "REALM": REALM, "SOURCE_RULES": str(self.source_rules),
            "REROUTE_FILE": str(self.reroute_file)}
        endpoint = f"udp/tcp {self.pbx_ip}:5060, tls {self.pbx_ip}:5061"
        if ipv6_loopback():
            defines |= {"PBX_IP6": "[::1]", "PBX_PORT6": str(self.pbx_port6)}
            endpoint += f", udp/tcp [::1]:{self.pbx_port6}"
        comp = self._kamailio("pbx", defines)
        comp.endpoint = endpoint
        return comp

    def _start_connector(self) -> Component:
        d = self.directory / "connector"
        allowed = d / "allowed_ips"
        if not allowed.exists():
            allowed.write_text("")
        comp = self._kamailio("connector", {
            "CONNECTOR_IP": self.connector_ip, "TLSCFG": str(d / "tls.cfg"),
            "ECHO_URI": f"sip:{self.echo_ip}:5060", "ALLOWED_FILE": str(allowed)})
        comp.endpoint = f"udp/tcp {self.connector_ip}:5060, tls {self.connector_ip}:5061"
        return comp

    def _carrier(self, name: str, ip: str, label: str) -> Component:
        d = self.directory / name
        comp = self._kamailio(name, {
            "CARRIER_IP": ip, "CARRIER_REALM": CARRIER_NAME, "CARRIER_USER": CARRIER_USER,
            "CARRIER_PW": self.carrier_password(), "ECHO_URI": f"sip:{self.echo_ip}:5060",
            "TLSCFG": str(d / "tls.cfg"), "CARRIER_SERVER": f"Server: {label} (kamailio)",
            "CARRIER_UA": f"User-Agent: {label} (kamailio)"})
        comp.endpoint = f"udp/tcp {ip}:5060, tls {ip}:5061, registering udp {ip}:5070"
        return comp

    def _start_carrier(self) -> Component:
        return self._carrier("carrier", self.carrier_ip, "sipkit-lab-carrier")

    def _start_carrier2(self) -> Component:
        return self._carrier("carrier2", self.carrier2_ip, "sipkit-lab-carrier-2")

    def _start_echo(self) -> Component:
        d = self.directory / "echo"
        ip = self.echo_ip
        # SIPp's own media port stays unused: its SDP names the rtp component on 6000
        argv = [shutil.which("sipp") or "sipp", "-i", ip, "-p", "5060", "-mi", ip, "-mp", "7000",
                "-aa", "-ci", ip, "-cp", "8888", "-nostdin", "-trace_err",
                "-sf", str(d / "echo_uas.xml")]
        return self._spawn("echo", argv, f"udp {ip}:5060", cwd=d)

    def _start_rtp(self) -> Component:
        # the address last: alive() matches argv[-1], which must name this lab
        argv = [sys.executable, "-m", "sipkit.lab.rtp_echo", "--port", str(RTP_PORT), "--ip",
                self.echo_ip]
        return self._spawn("rtp", argv, f"RTP echo {self.echo_ip}:{RTP_PORT}, RTCP "
                           f"{RTP_PORT + 1}")

    def _start_api(self) -> Component | None:
        if importlib.util.find_spec("sipkit.lab.sandbox") is None:
            return None
        self.token()
        db = self.directory / "api.db"
        argv = [sys.executable, "-m", "sipkit.lab.sandbox", "--listen", f"{self.api_ip}:8080",
                "--token", str(self.token_file), "--connector-server", self.connector_ip,
                "--allowed-file", str(self.directory / "connector" / "allowed_ips"),
                "--cloud-agent", "--db", str(db)]
        return self._spawn("api", argv, self.api_url)

    # -- readiness ----------------------------------------------------------------------
    def _answers(self, name: str, timeout: float) -> bool:
        if name == "pbx":
            return (sip_ping(self.pbx_ip, 5060, timeout) and tls_ready(self.pbx_ip, 5061, timeout)
                    and (not ipv6_loopback() or sip_ping("::1", self.pbx_port6, timeout)))
        if name == "connector":
            return sip_ping(self.connector_ip, 5060, timeout)
        if name == "echo":
            return sip_ping(self.echo_ip, 5060, timeout)
        if name == "rtp":
            return rtp_echoes(self.echo_ip, RTP_PORT, timeout)
        if name == "api":
            return http_ready(self.api_ip, 8080, timeout)
        if name in ("carrier", "carrier2"):
            ip = self.carrier_ip if name == "carrier" else self.carrier2_ip
            return sip_ping(ip, 5070, timeout) and tls_ready(ip, 5061, timeout)
        return False

    def _wait_ready(self, comps: dict[str, Component], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        for name, comp in comps.items():
            while not self._answers(name, 0.2):
                if not comp.alive():
                    raise LabError(f"lab {name} exited at start; last log lines:\n"
                                   + _tail(comp.log))
                if time.monotonic() > deadline:
                    raise LabError(f"lab {name} did not answer within {timeout:.0f} s; "
                                   f"last log lines:\n" + _tail(comp.log))
                time.sleep(0.05)


_TLS_CLIENT = "[client:default]\nmethod = TLSv1.2+\nverify_certificate = no\n"


def _tls_section(where: str, stem: Path) -> str:
    head = "[server:default]" if where == "default" else f"[server:{where}]"
    return (f"{head}\nmethod = TLSv1.2+\nverify_certificate = no\nrequire_certificate = no\n"
            f"private_key = {stem}.key\ncertificate = {stem}.crt\n\n")


def recorded_prefix(directory: Path) -> str | None:
    """The prefix a lab folder was last started with: its prefix file, else (older folders)
    the running state or the certificates' stamp; None for a fresh folder."""
    try:
        return (directory / "prefix").read_text().strip() or None
    except OSError:
        pass
    try:
        return json.loads((directory / "lab.json").read_text())["prefix"]
    except (OSError, ValueError, KeyError):
        pass
    stamps = sorted((directory / "certs").glob("made-for-*"), key=lambda p: p.stat().st_mtime)
    return stamps[-1].name.removeprefix("made-for-") if stamps else None


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        try:
            os.kill(pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def _tail(path: str, lines: int = 15) -> str:
    try:
        return "\n".join(Path(path).read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def sip_ping(ip: str, port: int, timeout: float) -> bool:
    """One OPTIONS over UDP (blocking, for lab readiness); True on any final response."""
    from ..net.addresses import hostport, uri_host
    from ..sip.builder import build_request, new_call_id
    from ..sip.errors import SipParseError
    from ..sip.message import Response, parse

    with socket.socket(socket.AF_INET6 if ":" in ip else socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        try:
            s.connect((ip, port))
            lip, lport = s.getsockname()[:2]
            uri = f"sip:{hostport(ip, port)}"
            req = build_request("OPTIONS", uri, from_uri=f"sip:lab@{uri_host(lip)}",
                                to_uri=uri, call_id=new_call_id(lip), cseq=1,
                                via_host=lip, via_port=lport, transport="UDP")
            s.send(req.to_bytes())
            msg = parse(s.recv(65535))
        except (OSError, SipParseError):
            return False
    return isinstance(msg, Response) and msg.status >= 200


def wait_sip(ip: str, port: int, seconds: float, alive=lambda: True) -> bool:
    """Poll with OPTIONS until a final response, ``seconds`` pass or ``alive()`` is False.
    The pause matters: before the peer binds, a refusal (ICMP) comes back at once."""
    deadline = time.monotonic() + seconds
    while alive() and time.monotonic() < deadline:
        if sip_ping(ip, port, 0.2):
            return True
        time.sleep(0.05)
    return False


def rtp_echoes(ip: str, port: int, timeout: float) -> bool:
    probe = bytes([0x80, 0]) + os.urandom(10)  # an RTP header, PT 0
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        try:
            s.connect((ip, port))
            s.send(probe)
            return s.recv(64) == probe
        except OSError:
            return False


def tls_ready(ip: str, port: int, timeout: float) -> bool:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    try:
        with socket.create_connection((ip, port), timeout=timeout) as raw, ctx.wrap_socket(raw):
            return True
    except OSError:
        return False


def http_ready(ip: str, port: int, timeout: float) -> bool:
    try:
        with socket.create_connection((ip, port), timeout=timeout):
            return True
    except OSError:
        return False
