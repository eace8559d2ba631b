"""PBX brand variants for tests: one Kamailio presenting each brand's visible behaviour.

Each variant is a brand's banner, Allow/Supported lists and digest challenge style (from the
captures cited in sipkit/pbx/fingerprint.py), on two addresses of the session's lab prefix:

    forbid  answers OPTIONS 200, challenges REGISTER, answers any authenticated REGISTER 403
    ban     the same, but drops everything from a source after BAN_AFTER requests (htable)
and, for some variants (EXTRA_MODES), one more address each:

    refuse     answers 403 to everything after REFUSE_AFTER requests
    regsilent  answers OPTIONS, never REGISTER (a REGISTER-only policy, not a ban)
    reauth     answers an authenticated REGISTER with a fresh 401 (chan_pjsip's wrong password)
    notfound   answers REGISTER 404 (CUCM: no device for this digest user)

plus an unknown product (generic wording) and a plain silent address (drops everything from
the first packet: not a ban). Nothing here authenticates: the variants exist to make every
knowledge-base path run, not to register anything.

Addresses: lab.ip(FIRST_HOST ..) in the test session's /24 (tests/conftest.py), away from the
hosts other tests use.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from ..errors import LabError
from .manager import Component, _signal_group, _tail, wait_sip

FIRST_HOST = 100
BAN_AFTER = 6  # transport's 5 OPTIONS and the first REGISTER pass; the authenticated one drops
REFUSE_AFTER = 3  # the "refuse" address: 3 OPTIONS answered 200, then 403 to everything
BAN_WINDOW = 120

ALLOW_PJSIP = ("OPTIONS, REGISTER, SUBSCRIBE, NOTIFY, PUBLISH, INVITE, ACK, BYE, CANCEL, UPDATE, "
               "PRACK, MESSAGE, REFER")
ALLOW_CHAN_SIP = "INVITE, ACK, CANCEL, OPTIONS, BYE, REFER, SUBSCRIBE, NOTIFY, INFO, PUBLISH, MESSAGE"
ALLOW_SOFIA = ("INVITE, ACK, BYE, CANCEL, OPTIONS, MESSAGE, INFO, UPDATE, REGISTER, REFER, "
               "NOTIFY, PUBLISH, SUBSCRIBE")
ALLOW_CUCM = "INVITE, OPTIONS, INFO, BYE, CANCEL, ACK, PRACK, UPDATE, REFER, SUBSCRIBE, NOTIFY"

# Kamailio pseudo-variable expressions for nonces in each stack's style.
_MD5 = "$(ci{s.md5})"
NONCE_PJSIP = "$TS/" + _MD5
NONCE_CHAN_SIP = "$(ci{s.md5}{s.substr,0,8})"
NONCE_3CX = "414d535c$(ci{s.md5}{s.substr,0,10}):" + _MD5
NONCE_UUID = ("$(ci{s.md5}{s.substr,0,8})-$(ci{s.md5}{s.substr,8,4})-$(ci{s.md5}{s.substr,12,4})"
              "-$(ci{s.md5}{s.substr,16,4})-$(ci{s.md5}{s.substr,20,12})")
NONCE_OPAQUE = "$(ci{s.md5}{s.substr,0,16})"


@dataclass(frozen=True)
class Variant:
    key: str  # the brand the fingerprint must find (None: unknown)
    headers: tuple[str, ...]  # banner, Allow, Supported, vendor headers (as on the wire)
    challenge: str  # the whole WWW-/Proxy-Authenticate header line
    challenge_status: int = 401
    forbidden_reason: str = "Forbidden"
    product: str | None = None  # the product line the fingerprint must find
    expect: str | None = ""  # expected brand ("" = key; None = unknown)
    front_end: str | None = None  # the proxy the fingerprint must find in front

    @property
    def expected_brand(self) -> str | None:
        return self.key if self.expect == "" else self.expect


def _www(params: str) -> str:
    return f"WWW-Authenticate: Digest {params}"


VARIANTS: tuple[Variant, ...] = (
    Variant("freepbx", ("Server: FPBX-16.0.33(18.13.0)", f"Allow: {ALLOW_PJSIP}",
                        "Supported: 100rel, timer, replaces, norefersub"),
            _www(f'realm="asterisk",nonce="{NONCE_PJSIP}",opaque="{NONCE_OPAQUE}",'
                 'algorithm=md5,qop="auth"'), product="chan_pjsip"),
    Variant("asterisk", ("Server: Asterisk PBX 16.30.0", f"Allow: {ALLOW_CHAN_SIP}",
                         "Supported: replaces, timer"),
            _www(f'algorithm=MD5, realm="asterisk", nonce="{NONCE_CHAN_SIP}"'),
            product="chan_sip"),
    Variant("issabel", ("User-Agent: Issabel PBX 4.0", f"Allow: {ALLOW_CHAN_SIP}",
                        "Supported: replaces, timer"),
            _www(f'algorithm=MD5, realm="asterisk", nonce="{NONCE_CHAN_SIP}"')),
    Variant("3cx", ("User-Agent: 3CXPhoneSystem 18.0.9.20 (20)",),
            f'Proxy-Authenticate: Digest nonce="{NONCE_3CX}",algorithm=MD5,realm="3CXPhoneSystem"',
            challenge_status=407),
    Variant("yeastar", ("User-Agent: Yeastar P560-37.12.0.48", f"Allow: {ALLOW_PJSIP}",
                        "Supported: 100rel, timer, replaces, norefersub"),
            _www(f'realm="asterisk",nonce="{NONCE_PJSIP}",opaque="{NONCE_OPAQUE}",'
                 'algorithm=md5,qop="auth"'), product="P-Series"),
    Variant("grandstream", ("Server: Grandstream UCM6302V1.3A 1.0.11.10",
                            f"Allow: {ALLOW_CHAN_SIP}", "Supported: replaces, timer",
                            "X-Grandstream-PBX: true"),
            _www(f'algorithm=MD5, realm="grandstream", nonce="{NONCE_CHAN_SIP}"'),
            product="UCM6302"),
    Variant("cucm", ("Server: Cisco-CUCM12.5", f"Allow: {ALLOW_CUCM}",
                     "Supported: replaces", "Supported: X-cisco-srtp-fallback"),
            _www(f'realm="ccmsipline", nonce="{NONCE_UUID}", algorithm=MD5')),
    Variant("avaya", ("Server: IP Office 11.1.3.0.0 build 10",),
            _www(f'realm="ipoffice.example", nonce="{NONCE_CHAN_SIP}", algorithm=MD5')),
    Variant("mitel", ("Server: Mitel-3300-ICP 14.0.3.22",),
            _www(f'realm="mitel.example", nonce="{NONCE_CHAN_SIP}", algorithm=MD5')),
    Variant("freeswitch", ("User-Agent: FreeSWITCH-mod_sofia/1.10.12-release~64bit",
                           f"Allow: {ALLOW_SOFIA}", "Supported: timer, path, replaces"),
            _www(f'realm="pbx.example", nonce="{NONCE_UUID}", algorithm=MD5, qop="auth"')),
    Variant("kamailio", ("Server: kamailio (5.6.3 (x86_64/linux))",),
            _www(f'realm="sip.example", nonce="{_MD5}"')),
    Variant("opensips", ("Server: OpenSIPS (3.4.2 (x86_64/linux))",),
            _www(f'realm="sip.example", nonce="{_MD5}"')),
    Variant("yeastar-s", ("User-Agent: Yeastar S50-30.21.0.16",),
            _www(f'algorithm=MD5, realm="asterisk", nonce="{NONCE_CHAN_SIP}"'),
            product="S-Series", expect="yeastar"),
    # a Kamailio front end relaying a 3CX's challenge: 3CX, behind Kamailio
    Variant("3cx-behind-kamailio", ("Server: kamailio (5.6.3 (x86_64/linux))",),
            f'Proxy-Authenticate: Digest nonce="{NONCE_3CX}",algorithm=MD5,realm="3CXPhoneSystem"',
            challenge_status=407, expect="3cx", front_end="kamailio"),
    # no banner, chan_pjsip's challenge and lists: recognised by style alone
    Variant("asterisk-nobanner", (f"Allow: {ALLOW_PJSIP}",
                                  "Supported: 100rel, timer, replaces, norefersub"),
            _www(f'realm="asterisk",nonce="{NONCE_PJSIP}",opaque="{NONCE_OPAQUE}",'
                 'algorithm=md5,qop="auth"'), product="chan_pjsip", expect="asterisk"),
    # a product sipkit does not know: the checks keep their generic wording
    Variant("unknown", ("Server: AcmeSwitch 2.0",),
            _www(f'realm="acme", nonce="{_MD5}", algorithm=MD5'), expect=None),
)


MODES = ("forbid", "ban")
EXTRA_MODES = (("unknown", "refuse"), ("freepbx", "regsilent"), ("asterisk-nobanner", "reauth"),
               ("cucm", "notfound"))


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except (ProcessLookupError, PermissionError):
        return False


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def _route(v: Variant, ip: str, mode: str) -> str:
    lines = [f'\tif ($Ri == "{ip}") {{  # {v.key} ({mode})']
    if mode == "ban":
        lines.append("\t\troute(BAN);")
    elif mode == "refuse":
        lines += ["\t\troute(COUNT);", f"\t\tif ($var(n) > {REFUSE_AFTER}) {{",
                  '\t\t\tsl_send_reply("403", "Forbidden");', "\t\t\texit;", "\t\t}"]
    for h in v.headers:
        lines.append(f'\t\tappend_to_reply("{_escape(h)}\\r\\n");')
    challenge_reason = ("Unauthorized" if v.challenge_status == 401 else
                        "Proxy Authentication Required")
    challenge = [f'\t\t\t\tappend_to_reply("{_escape(v.challenge)}\\r\\n");',
                 f'\t\t\t\tsl_send_reply("{v.challenge_status}", "{challenge_reason}");',
                 "\t\t\t\texit;"]
    if mode == "reauth":  # a wrong password, chan_pjsip style: a fresh challenge
        authenticated = [line[1:] for line in challenge]
    else:
        authenticated = [f'\t\t\tsl_send_reply("403", "{_escape(v.forbidden_reason)}");',
                         "\t\t\texit;"]
    lines += ['\t\tif (is_method("OPTIONS")) {', '\t\t\tsl_send_reply("200", "OK");',
              "\t\t\texit;", "\t\t}"]
    if mode == "regsilent":
        lines += ['\t\tif (is_method("REGISTER")) {', "\t\t\texit;", "\t\t}"]
    elif mode == "notfound":
        lines += ['\t\tif (is_method("REGISTER")) {', '\t\t\tsl_send_reply("404", "Not Found");',
                  "\t\t\texit;", "\t\t}"]
    lines += ['\t\tif (is_method("REGISTER")) {',
              '\t\t\tif (!is_present_hf("Authorization") && !is_present_hf("Proxy-Authorization")) {',
              *challenge, "\t\t\t}", *authenticated, "\t\t}",
              '\t\tsl_send_reply("405", "Method Not Allowed");', "\t\texit;", "\t}"]
    return "\n".join(lines)


@dataclass
class BrandLab:
    """The variants on ``prefix`` hosts FIRST_HOST..; ``start()`` / ``stop()`` by PID."""

    directory: Path
    prefix: str
    comp: Component | None = None
    proc: subprocess.Popen | None = None
    addresses: dict[tuple[str, str], str] = field(default_factory=dict)

    def ip(self, host: int) -> str:
        return f"{self.prefix}.{host}"

    def address(self, key: str, mode: str = "forbid") -> str:
        """The address of a variant (mode forbid / ban), or of "silent"."""
        return self.addresses[(key, mode)]

    def plan(self) -> dict[tuple[str, str], str]:
        host = FIRST_HOST
        plan: dict[tuple[str, str], str] = {("silent", "silent"): self.ip(host)}
        for key, mode in [(v.key, m) for v in VARIANTS for m in MODES] + list(EXTRA_MODES):
            host += 1
            plan[(key, mode)] = self.ip(host)
        return plan

    def config(self) -> str:
        self.addresses = self.plan()
        listen = "\n".join(f"listen=udp:{ip}:5060" for ip in self.addresses.values())
        routes = [f'\tif ($Ri == "{self.address("silent", "silent")}") {{  # plain silent port',
                  "\t\texit;", "\t}"]
        by_key = {v.key: v for v in VARIANTS}
        for (key, mode), ip in self.addresses.items():
            if key != "silent":
                routes.append(_route(by_key[key], ip, mode))
        text = (resources.files("sipkit.lab") / "files" / "brands.cfg").read_text()
        return (text.replace("##LISTEN##", listen).replace("##ROUTES##", "\n".join(routes))
                .replace("BAN_AFTER", str(BAN_AFTER)).replace("BAN_WINDOW", str(BAN_WINDOW)))

    def start(self, timeout: float = 20.0) -> BrandLab:
        kamailio = shutil.which("kamailio")
        if kamailio is None:
            raise LabError("the brand lab needs kamailio (apt-get install kamailio)")
        run = self.directory / "run"
        run.mkdir(parents=True, exist_ok=True)
        cfg = self.directory / "brands.cfg"
        cfg.write_text(self.config())
        log = self.directory / "brands.log"
        argv = [kamailio, "-DD", "-E", "-m", "32", "-M", "4", "-P", str(run / "kamailio.pid"),
                "-Y", str(run), "-f", str(cfg)]
        with open(log, "ab") as out:
            proc = subprocess.Popen(argv, stdout=out, stderr=out, stdin=subprocess.DEVNULL,
                                    cwd=self.directory, start_new_session=True)
        self.proc = proc
        self.comp = Component(name="brands", pid=proc.pid, argv=argv, log=str(log), endpoint="")
        # readiness on an address that never bans (a forbid one): the ban counters stay clean
        probe = self.address("unknown", "forbid")
        # our own child: poll() is exact (/proc/PID/cmdline reads empty right after exec)
        if not wait_sip(probe, 5060, timeout, alive=lambda: proc.poll() is None):
            died = proc.poll() is not None
            self.stop()
            raise LabError(f"the brand lab {'exited at start' if died else 'did not answer'}; "
                           "last log lines:\n" + _tail(str(log), 25))
        return self

    def stop(self, timeout: float = 6.0) -> None:
        """TERM the process group we started, KILL it after ``timeout``; our own child, so
        poll() is exact (no /proc guessing)."""
        proc = self.proc
        if proc is None:
            return
        if proc.poll() is None:
            _signal_group(proc.pid, 15)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                _signal_group(proc.pid, 9)
                proc.wait(5)
        # children of the group may outlive the main process by a moment
        if _group_alive(proc.pid):
            _signal_group(proc.pid, 9)
        self.proc = self.comp = None

    def log_text(self) -> str:
        return (self.directory / "brands.log").read_text(errors="replace")
