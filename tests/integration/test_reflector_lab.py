"""The outside view in namespaces: a site (the lab PBX + sipkit) behind a NAT router, and a
cloud where `sipkit reflector serve` runs. Each router/PBX variant gives its own verdict.

    site ns   10.213.1.2  PBX (the lab's Kamailio) and sipkit; DNS 10.213.1.53 (LAN view)
    router ns 10.213.1.1 | 10.213.2.1  nft masquerade; variants: forward, firewall, ALG, timeout
    cloud ns  10.213.2.3  the reflector (API 8443, SIP 5060); DNS 10.213.2.53 (public view)

pbx.rfl.test is 10.213.1.2 on the LAN and 10.213.2.1 from the cloud (a split horizon).
"""

from __future__ import annotations

import json
import sys

import pytest
import yaml

from tests.conftest import ROOT, report_of
from tests.netns import SKIP_REASON, NetLab, kamailio, tag, wait_sip_in, wait_until

pytestmark = [pytest.mark.lab, pytest.mark.root]

if SKIP_REASON:
    pytest.skip(SKIP_REASON, allow_module_level=True)

PBX, ROUTER_LAN, ROUTER_WAN, REFLECTOR = "10.213.1.2", "10.213.1.1", "10.213.2.1", "10.213.2.3"
LAN_DNS, CLOUD_DNS = "10.213.1.53", "10.213.2.53"
NAME = "pbx.rfl.test"
LAN_ONLY = "^10[.]213[.]1[.]"  # the PBX's LAN, as a Kamailio regex without backslashes
OUTSIDE = ("outside_reach", "sip_alg", "nat_binding")

ALG_CFG = """#!KAMAILIO
# A SIP ALG, as consumer routers have one: intercepts the site's SIP towards the internet and
# rewrites the LAN address in Via, Contact and the SDP to the router's public one.
debug=1
log_stderror=yes
children=1
tcp_children=1
auto_aliases=no
dns=no
rev_dns=no
listen=udp:{lan}:5060
listen=tcp:{lan}:5060
listen=udp:{wan}:5060
listen=tcp:{wan}:5060
loadmodule "sl.so"
loadmodule "textops.so"
loadmodule "maxfwd.so"
loadmodule "pv.so"
request_route {{
    mf_process_maxfwd_header("10");
    # Via: this proxy's own Via on top and received= below; rewriting the sent-by as well
    # would overlap those insertions (and garble the message, as some ALGs do).
    subst('/^(Contact: <sip:[^@]*@){pbx_re}:[0-9]+/\\1{wan}:5060/');
    subst_body('/{pbx_re}/{wan}/g');
    $du = "sip:{reflector}:5060;transport=" + $pr;
    if ($pr == "tcp") {{ force_send_socket(tcp:{wan}:5060); }}
    else {{ force_send_socket(udp:{wan}:5060); }}
    forward();
}}
"""


class Outside:
    """The three namespaces and what runs in them; variants switch the router and the PBX."""

    def __init__(self, net: NetLab, lab, tmp):
        self.net, self.lab, self.tmp = net, lab, tmp
        t = tag()
        self.site, self.router, self.cloud = (net.ns(f"site{t}"), net.ns(f"rtr{t}"),
                                              net.ns(f"cld{t}"))
        self.wan_dev = f"rflw{t}"
        net.link(self.site, f"rfls{t}", PBX, self.router, f"rfll{t}", ROUTER_LAN)
        net.link(self.router, self.wan_dev, ROUTER_WAN, self.cloud, f"rflc{t}", REFLECTOR)
        for ip in (lab.tls_mismatch_ip, lab.tls_expired_ip):  # the lab PBX listens there too
            net.addr(self.site, "lo", ip, 32)
        net.addr(self.site, f"rfls{t}", LAN_DNS)
        net.addr(self.cloud, f"rflc{t}", CLOUD_DNS)
        net.route(self.site, ROUTER_LAN)
        net.route(self.cloud, ROUTER_WAN)  # only for replies towards the (public) router
        net.router(self.router)
        self.pbx = None
        self.alg = None
        self._dns(self.site, LAN_DNS, PBX)
        self._dns(self.cloud, CLOUD_DNS, ROUTER_WAN)
        self._reflector()

    # -- parts --------------------------------------------------------------------------
    def _dns(self, ns: str, ip: str, answer: str) -> None:
        zone = self.tmp / f"zone-{ip}.json"
        zone.write_text(json.dumps({NAME + ".": {"A": [answer], "TTL": 60}}))
        log = self.tmp / f"dns-{ip}.log"
        proc = self.net.popen(ns, [sys.executable, "-m", "sipkit.lab.dns", "--listen",
                                   f"{ip}:53", "--zone", str(zone)], log=log, cwd=ROOT)
        wait_until(lambda: "dns ready" in log.read_text(), 15, f"DNS on {ip}", proc, log)

    def _reflector(self) -> None:
        from sipkit.lab.certs import make_ca, make_server_cert
        from sipkit.reflector.tokens import digest, new_token

        d = self.tmp / "reflector"
        d.mkdir()
        self.ca, ca_key = make_ca(d, "rfl test CA")
        crt, key = make_server_cert(d, "api", self.ca, ca_key, ["reflector.rfl.test"],
                                    [REFLECTOR])
        self.token = new_token()
        (d / "tokens.yaml").write_text(yaml.safe_dump([{"name": "site-a",
                                                        "sha256": digest(self.token)}]))
        self.token_file = d / "agent-token"
        self.token_file.write_text(self.token)
        self.token_file.chmod(0o600)
        self.request_log = d / "requests.jsonl"
        cfg = {"listen": f"{REFLECTOR}:8443", "tls_cert": str(crt), "tls_key": str(key),
               "public_ip": REFLECTOR, "tokens": str(d / "tokens.yaml"),
               "request_log": str(self.request_log), "nameserver": f"{CLOUD_DNS}:53",
               "timeout": 2, "limits": {"per_target_per_minute": 60, "per_token_per_minute": 600}}
        (d / "reflector.yaml").write_text(yaml.safe_dump(cfg))
        log = d / "stderr.log"
        proc = self.net.popen(self.cloud, [sys.executable, "-m", "sipkit", "reflector", "serve",
                                           "--config", str(d / "reflector.yaml")],
                              log=log, cwd=ROOT)
        wait_until(lambda: "sipkit reflector: API" in log.read_text(), 20, "the reflector",
                   proc, log)

    def start_pbx(self, lan_only: bool = False) -> None:
        if self.pbx is not None:
            self.net.stop(self.pbx)
        d = self.lab.directory / "pbx"
        defines = {"PBX_IP": PBX, "TLS_MISMATCH_IP": self.lab.tls_mismatch_ip,
                   "TLS_EXPIRED_IP": self.lab.tls_expired_ip, "DBURL": f"text://{d / 'db'}",
                   "TLSCFG": str(d / "tls.cfg"), "ECHO_URI": "sip:10.213.1.99:5060",
                   "REALM": "pbx.sipkit.test"}
        if lan_only:
            defines["LAN_ONLY"] = LAN_ONLY
        certs = self.lab.directory / "certs"
        tls = self.tmp / "pbx-tls.cfg"  # one default server: the lab's lists the lab's IPs
        tls.write_text("[server:default]\nmethod = TLSv1.2+\nverify_certificate = no\n"
                       f"require_certificate = no\nprivate_key = {certs / 'pbx.key'}\n"
                       f"certificate = {certs / 'pbx.crt'}\n\n[client:default]\n"
                       "method = TLSv1.2+\nverify_certificate = no\n")
        defines["TLSCFG"] = str(tls)
        log = self.tmp / "pbx.log"
        self.pbx = kamailio(self.net, self.site, d / "kamailio.cfg",
                            self.tmp / "pbx-run", defines, log=log)
        assert wait_sip_in(self.net, self.site, PBX, 5060), log.read_text()[-2000:]

    def router_rules(self, forward: bool, firewall: bool = False, alg: bool = False) -> None:
        wan, lan_dev = self.wan_dev, self.wan_dev.replace("rflw", "rfll")
        pre = ""
        if forward:
            pre += (f"iifname {wan} udp dport 5060 dnat to {PBX}:5060\n"
                    f"iifname {wan} tcp dport 5060 dnat to {PBX}:5060\n"
                    f"iifname {wan} tcp dport 5061 dnat to {PBX}:5061\n")
        if alg:
            pre += (f"iifname {lan_dev} ip daddr {REFLECTOR} udp dport 5060 dnat to "
                    f"{ROUTER_LAN}:5060\niifname {lan_dev} ip daddr {REFLECTOR} tcp dport 5060 "
                    f"dnat to {ROUTER_LAN}:5060\n")
        fwd = (f"iifname {wan} udp dport 5060 drop\niifname {wan} tcp dport 5060 drop\n"
               if firewall else "")
        self.net.nft(self.router, "table ip rfl {}\ndelete table ip rfl\n"
                     "table ip rfl {\n"
                     f"chain pre {{ type nat hook prerouting priority -100;\n{pre}}}\n"
                     f"chain post {{ type nat hook postrouting priority 100;\n"
                     f"oifname {wan} masquerade\n}}\n"
                     f"chain filter_fwd {{ type filter hook forward priority 0;\n{fwd}}}\n}}\n")
        if alg and self.alg is None:
            cfg = self.tmp / "alg.cfg"
            cfg.write_text(ALG_CFG.format(lan=ROUTER_LAN, wan=ROUTER_WAN, reflector=REFLECTOR,
                                          pbx_re=PBX.replace(".", "\\.")))
            log = self.tmp / "alg.log"
            self.alg = kamailio(self.net, self.router, cfg, self.tmp / "alg-run", {}, log=log)
            wait_until(lambda: f"{ROUTER_LAN}:5060" in self.net.run(
                self.router, ["ss", "-lnu"]).stdout, 10, "the ALG", self.alg, log)
        if not alg and self.alg is not None:
            self.net.stop(self.alg)
            self.alg = None

    def udp_timeout(self, seconds: int) -> None:
        for key in ("net.netfilter.nf_conntrack_udp_timeout",
                    "net.netfilter.nf_conntrack_udp_timeout_stream"):
            self.net.sysctl(self.router, key, str(seconds))

    # -- sipkit -------------------------------------------------------------------------
    def check(self, only: tuple[str, ...], reflector: bool = True,
              nat_binding: dict | None = None, tls: bool = False) -> dict[str, dict]:
        pw = self.lab.passwords()["100"]
        check = {"connector_server": REFLECTOR, "allow_private_registrar": True,
                 "nameserver": f"{LAN_DNS}:53"}
        if reflector:
            check |= {"reflector": f"https://{REFLECTOR}:8443",
                      "reflector_token_file": str(self.token_file),
                      "reflector_ca_file": str(self.ca)}
        if nat_binding is not None:
            check["nat_binding"] = nat_binding
        site = {"agent_uuid": "3c90c3cc-0d44-4b50-8888-8dd25736052a",
                "phone_number": "+902124439178", "registrar_server": NAME,
                "username_extension": "100", "pbx_password": pw, "allowed_ip": ROUTER_WAN,
                "check": check}
        if tls:
            site |= {"connection_type": "tls", "port": "5061"}
        path = self.tmp / "site.yaml"
        path.write_text(yaml.safe_dump(site))
        proc = self.net.run(self.site, [sys.executable, "-m", "sipkit", "check", "-c",
                                        str(path), "--only", ",".join(only), "--json"],
                            cwd=ROOT, timeout=180)
        assert pw not in proc.stdout + proc.stderr and self.token not in proc.stdout
        return {c["id"]: c for c in report_of(proc)["checks"]}

    def log_rows(self) -> list[dict]:
        return [json.loads(line) for line in self.request_log.read_text().splitlines()]


@pytest.fixture(scope="module")
def outside(lab, tmp_path_factory):
    with NetLab("rfl") as net:
        world = Outside(net, lab, tmp_path_factory.mktemp("outside"))
        world.start_pbx()
        yield world
        # The whole module's traffic: no password and no token ever reached the reflector.
        text = world.request_log.read_text()
        assert lab.passwords()["100"] not in text
        assert world.token not in text


LAN = ("transport", "register")


def _lan_passes(checks: dict) -> None:
    for cid in LAN:
        assert checks[cid]["status"] == "pass", checks[cid]


def test_without_a_reflector_the_lan_passes_and_outside_checks_skip(outside):
    outside.start_pbx()
    outside.router_rules(forward=False)
    checks = outside.check(LAN + OUTSIDE, reflector=False)
    _lan_passes(checks)
    for cid in OUTSIDE:
        assert checks[cid]["status"] == "skip"
        assert "no reflector configured (check.reflector)" in checks[cid]["summary"]


def test_port_not_forwarded(outside):
    outside.start_pbx()
    outside.router_rules(forward=False)
    checks = outside.check(LAN + ("outside_reach",))
    _lan_passes(checks)  # the same site passes from the LAN...
    o = checks["outside_reach"]  # ...and the reflector says why the cloud cannot reach it
    assert o["status"] == "fail", o
    assert "answers on the LAN but not from the internet" in o["summary"]
    assert "refuses SIP from outside" in o["summary"]
    assert f"forward UDP 5060 on the router ({ROUTER_WAN})" in o["hint"]
    assert o["details"]["split_horizon"] is True
    assert o["details"]["outside_dns"]["addresses"] == [ROUTER_WAN]
    assert o["details"]["lan_dns"] == [PBX]


def test_firewall_drops_sip_from_outside(outside):
    outside.start_pbx()
    outside.router_rules(forward=True, firewall=True)
    checks = outside.check(LAN + ("outside_reach",))
    _lan_passes(checks)
    o = checks["outside_reach"]
    assert o["status"] == "fail", o
    assert "silent from outside: a firewall drops SIP" in o["summary"]
    assert "allow UDP 5060 from the connector server's address" in o["hint"]


def test_extension_restricted_to_the_lan(outside):
    outside.start_pbx(lan_only=True)
    outside.router_rules(forward=True)
    try:
        checks = outside.check(LAN + ("outside_reach",))
    finally:
        outside.start_pbx()
    _lan_passes(checks)
    o = checks["outside_reach"]
    assert o["status"] == "fail", o
    assert "registrations from outside get 403" in o["summary"]
    assert "on the LAN 401" in o["summary"]
    assert "restricted to the LAN" in o["summary"]
    assert "allow extension 100 to register from the connector server" in o["hint"]


def test_open_site_passes_from_outside_and_no_alg(outside):
    outside.start_pbx()
    outside.router_rules(forward=True)
    checks = outside.check(LAN + ("outside_reach", "sip_alg"))
    _lan_passes(checks)
    o, a = checks["outside_reach"], checks["sip_alg"]
    assert o["status"] == "pass", o
    assert "REGISTER is challenged (401, realm pbx.sipkit.test)" in o["summary"]
    assert "split horizon" in o["summary"]
    assert a["status"] == "pass", a
    assert f"this site is {ROUTER_WAN} outside" in a["summary"]
    # The reflector's log shows what reached it: the unauthenticated REGISTER and the
    # mirrored messages, and the agent's requests, by token name only.
    rows = outside.log_rows()
    assert any(r["kind"] == "sip" and r["session"] and "REGISTER" in (r["data"] or "")
               for r in rows)
    assert {r["token"] for r in rows if r["kind"] == "api"} == {"site-a"}
    assert all("Authorization: Digest" not in (r.get("data") or "") for r in rows)


def test_tls_certificate_as_the_internet_sees_it(outside):
    outside.start_pbx()
    outside.router_rules(forward=True)
    checks = outside.check(("transport", "outside_reach"), tls=True)
    assert checks["transport"]["status"] == "pass", checks["transport"]
    o = checks["outside_reach"]
    # The lab CA is not in the reflector's trust store, and the certificate does not name
    # pbx.rfl.test: the connector would refuse it too.
    assert o["status"] == "warn", o
    assert "the certificate served to the internet does not verify" in o["summary"]
    row = o["details"]["probes"][0]
    assert row["transport"] == "tls" and row["options"]["status"] in (200, 403)
    assert row["tls"]["cert"]["issuer"].endswith("sipkit lab CA")
    assert row["tls"]["verified"] is False


def test_sip_alg_in_the_router_is_named(outside):
    outside.start_pbx()
    outside.router_rules(forward=True, alg=True)
    try:
        checks = outside.check(("sip_alg",))
    finally:
        outside.router_rules(forward=True)
    a = checks["sip_alg"]
    assert a["status"] == "fail", a
    assert "a SIP ALG rewrites SIP on the way out" in a["summary"]
    fields = {c["field"] for m in a["details"]["messages"] for c in m.get("changes", [])}
    assert {"Via", "Contact", "SDP c=", "SDP o=", "Max-Forwards"} <= fields, fields
    assert "turn off the SIP ALG" in a["hint"]
    invite = next(m for m in a["details"]["messages"]
                  if m["method"] == "INVITE" and m["transport"] == "udp")
    c_line = next(c for c in invite["changes"] if c["field"] == "SDP c=")
    assert PBX in c_line["sent"] and ROUTER_WAN in c_line["arrived"]


def test_nat_binding_short_udp_timeout(outside):
    outside.start_pbx()
    outside.router_rules(forward=True)
    outside.udp_timeout(4)  # idle 1 and 2 s survive it, 6 s does not
    try:
        checks = outside.check(("nat_binding",), nat_binding={
            "idle_s": [1, 2, 6], "budget_s": 30, "keepalive_s": 30})
    finally:
        outside.udp_timeout(30)
    n = checks["nat_binding"]
    assert n["status"] == "fail", n
    assert n["details"]["longest_kept_s"] == 2 and n["details"]["first_lost_s"] == 6, n
    assert "forgets an idle UDP flow between 2 and 6 s" in n["summary"]
    assert "raise the router's UDP session timeout" in n["hint"]


def test_nat_binding_kept_and_opt_in(outside):
    outside.start_pbx()
    outside.router_rules(forward=True)
    skipped = outside.check(("nat_binding",))["nat_binding"]
    assert skipped["status"] == "skip" and "opt-in" in skipped["summary"]
    n = outside.check(("nat_binding",), nat_binding={"idle_s": [1, 2], "budget_s": 20,
                                                     "keepalive_s": 1})["nat_binding"]
    assert n["status"] == "pass", n
    assert n["details"]["longest_kept_s"] == 2 and n["details"]["first_lost_s"] is None


def test_no_password_or_token_reaches_the_reflector(outside):
    """A full run — the authenticated REGISTER on the LAN and every outside check — then the
    reflector's request log, which holds every API body and every mirrored SIP message."""
    outside.start_pbx()
    outside.router_rules(forward=True)
    start = len(outside.log_rows())
    checks = outside.check(LAN + OUTSIDE, nat_binding={"idle_s": [1], "budget_s": 10})
    assert checks["register"]["details"]["final_status"] == 200  # the password was used
    assert {checks[c]["status"] for c in OUTSIDE} == {"pass"}, checks
    rows = outside.log_rows()[start:]
    kinds = {(r["kind"], r.get("path")) for r in rows}
    assert ("api", "/v1/reach") in kinds and ("api", "/v1/mirror") in kinds
    assert sum(1 for r in rows if r["kind"] == "sip" and r["session"]) >= 4  # the mirror
    text = outside.request_log.read_text()
    assert outside.lab.passwords()["100"] not in text
    assert outside.token not in text
    assert "response=" not in text and "Authorization" not in text
