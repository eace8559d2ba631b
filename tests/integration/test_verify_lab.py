"""`sipkit verify` on the real lab: the cloud agent (pjsua2) registers to the lab PBX as the
connector's extension, the test extension calls it through the PBX and is called by it.
Each test breaks the path the way customers do and expects its own verdict and fix."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import time

import pytest

from sipkit.lab.agents import CloudAgents
from sipkit.mihu.client import MihuClient
from sipkit.settings import load_site
from tests.conftest import report_of
from tests.integration.test_calls_lab import lab_env
from tests.integration.test_checks_lab import checks, site_variant

pytestmark = pytest.mark.lab


def _client(lab) -> MihuClient:
    return MihuClient(lab.api_url, lab.token(), timeout=10)


def fresh_connector(lab, site_file=None, **body_changes) -> str:
    """Delete every connector, create one from the site file (with ``body_changes`` to the
    API body), return its uuid. A new connector is a new cloud agent: a fresh REGISTER."""
    body = load_site(site_file or lab.site_file).api_body() | body_changes
    delete_connectors(lab)
    with _client(lab) as c:
        c.allocate_server()
        return c.create_connector(body).uuid


def delete_connectors(lab) -> None:
    with _client(lab) as c:
        for conn in list(c.iter_connectors()):
            c.delete_connector(conn.uuid)


def wait_registration(lab, uid: str, state: str = "registered", seconds: float = 30) -> dict:
    deadline = time.monotonic() + seconds
    with _client(lab) as c:
        while True:
            reg = c.get_connector(uid).registration or {}
            if reg.get("state") == state or time.monotonic() > deadline:
                return reg
            time.sleep(0.2)


def verify(run_sipkit, lab, site=None, *extra, timeout=150):
    proc = run_sipkit("verify", "-c", str(site or lab.site_file), "--json", *extra,
                      env=lab_env(lab), timeout=timeout)
    return proc, report_of(proc)


def assert_no_secrets(lab, *texts: str) -> None:
    secrets = [*lab.passwords().values(), lab.token()]
    for text in texts:
        for secret in secrets:
            assert secret not in text


@contextlib.contextmanager
def pbx_rule(path, line: str):
    """One line in a lab PBX rules file (pbx.cfg reads it per request); removed afterwards."""
    path.write_text(line + "\n")
    try:
        yield
    finally:
        path.write_text("")


@pytest.fixture(scope="module", autouse=True)
def no_connector_left(lab):
    """Later test modules expect no cloud agent registered as extension 100."""
    yield
    delete_connectors(lab)


@pytest.fixture
def clean_lab(lab):
    """A connector as the site file says, registered, and the rules files empty after."""
    uid = fresh_connector(lab)
    assert wait_registration(lab, uid)["state"] == "registered"
    yield lab
    lab.source_rules.write_text("")
    lab.reroute_file.write_text("")
    fresh_connector(lab)


def test_check_create_then_verify_pass_both_directions(lab, run_sipkit, tmp_path):
    env = lab_env(lab)
    delete_connectors(lab)
    proc = run_sipkit("check", "-c", str(lab.site_file), "--create", "--json", env=env,
                      timeout=180)
    rep = report_of(proc)
    assert proc.returncode == 0, proc.stdout[-3000:]
    by = checks(rep)
    for cid in ("cloud_registration", "call_via_pbx_inbound", "call_via_pbx_outbound"):
        assert by[cid]["status"] == "pass", by[cid]
    proc, rep = verify(run_sipkit, lab)
    assert proc.returncode == 0, proc.stdout[-3000:]
    by = checks(rep)
    reg = by["cloud_registration"]["details"]
    assert reg["cloud_registration"]["state"] == "registered"
    assert reg["answered_by"] == lab.connector_ip
    for cid in ("call_via_pbx_inbound", "call_via_pbx_outbound"):
        d = by[cid]["details"]
        call = d["call"]
        assert call["tx"]["packets"] > 50 and call["rx"]["packets"] > 50, call  # two-way
        assert call["mos"] > 4.0 and call["rx"]["loss"] == 0
        assert d["path"]["expected"] is True and d["hung_up_by"] == "sipkit"
        assert d["setup_ms"] is not None
    out = by["call_via_pbx_outbound"]["details"]
    assert out["path"]["invite_from"] == lab.pbx_ip  # through the PBX, not from the cloud
    assert out["api_call"]["status"] in ("answered", "completed")
    pcap = tmp_path / "verify.pcap"
    human = run_sipkit("verify", "-c", str(lab.site_file), "-vv", "--pcap", str(pcap), env=env,
                       timeout=150)
    assert human.returncode == 0, human.stdout[-2000:]
    assert b"INVITE sip:100@" in pcap.read_bytes()  # the calls' SIP is the evidence
    assert_no_secrets(lab, proc.stdout, proc.stderr, human.stdout, human.stderr,
                      pcap.read_bytes().decode("latin-1"))
    # the test extension removed its own binding: nothing is left registered as 200
    test_pw = lab.passwords()["200"]
    reg = run_sipkit("check", "-c", str(lab.site_file), "--only", "register", "--json",
                     "--set", "username_extension=200", "--set", f"pbx_password={test_pw}",
                     "--set", "check.test_extension=null", env=env)
    assert checks(report_of(reg))["register"]["details"]["other_bindings"] == []


def test_pbx_refuses_register_from_the_cloud_address(clean_lab, run_sipkit):
    lab = clean_lab
    delete_connectors(lab)  # first: the old agent's un-REGISTER must still get through
    with pbx_rule(lab.source_rules, f"{lab.connector_ip} refuse"):
        uid = fresh_connector(lab)
        reg = wait_registration(lab, uid, "failed")
        assert reg["code"] == 403 and not reg["challenged"], reg
        proc, rep = verify(run_sipkit, lab)
        delete_connectors(lab)  # while the rule holds: a retry must not register after it
    r = checks(rep)["cloud_registration"]
    assert proc.returncode == 1 and r["status"] == "fail", r
    assert r["details"]["cause"] == "address" and "before any challenge" in r["summary"]
    assert "remote registration" in r["hint"] and lab.connector_ip in r["hint"]
    assert checks(rep)["call_via_pbx_outbound"]["status"] == "skip"


def test_pbx_silently_drops_the_cloud_register(clean_lab, run_sipkit):
    lab = clean_lab
    delete_connectors(lab)  # first: the old agent's un-REGISTER must still get through
    with pbx_rule(lab.source_rules, f"{lab.connector_ip} drop"):
        fresh_connector(lab)
        proc, rep = verify(run_sipkit, lab)
        delete_connectors(lab)  # while the rule holds: a retransmission must not register
    r = checks(rep)["cloud_registration"]
    assert proc.returncode == 1 and r["status"] == "fail", r
    assert r["details"].get("cause") == "silent" and "no answer" in r["summary"], r
    assert "480" in r["summary"]  # seen from the PBX side too: no binding
    assert "fail2ban" in r["hint"] and "forward" in r["hint"]


def test_connector_password_is_not_the_pbx_one(clean_lab, run_sipkit):
    lab = clean_lab
    uid = fresh_connector(lab, pbx_password="not-the-pbx-password")
    reg = wait_registration(lab, uid, "failed")
    assert reg["code"] == 403 and reg["challenged"], reg
    proc, rep = verify(run_sipkit, lab)
    r = checks(rep)["cloud_registration"]
    assert proc.returncode == 1 and r["status"] == "fail", r
    assert r["details"]["cause"] == "password" and "password" in r["summary"]
    assert "--replace" in r["hint"]
    assert "not-the-pbx-password" not in proc.stdout


def test_pbx_routes_the_extension_elsewhere(clean_lab, run_sipkit):
    lab = clean_lab
    with pbx_rule(lab.reroute_file, "100"):
        proc, rep = verify(run_sipkit, lab, None, "--only", "call_via_pbx_inbound")
    r = checks(rep)["call_via_pbx_inbound"]
    assert proc.returncode == 1 and r["status"] == "fail", r
    assert lab.echo_ip in r["summary"] and "not to the connector server" in r["summary"]
    assert "forward" in r["hint"]
    assert r["details"]["path"]["expected"] is False


def test_outbound_number_format_refused(clean_lab, run_sipkit, tmp_path):
    lab = clean_lab
    # a rule that turns the 3-digit extension into 9200: the PBX's dial plan says 484
    site = site_variant(lab, tmp_path, normalizer={"default_prefix": "9",
                                                   "condition_length": "3"})
    uid = fresh_connector(lab, site)
    assert wait_registration(lab, uid)["state"] == "registered"
    proc, rep = verify(run_sipkit, lab, site)
    r = checks(rep)["call_via_pbx_outbound"]
    assert proc.returncode == 1 and r["status"] == "fail", r
    assert "484" in r["summary"] and "200 → 9200" in r["summary"], r
    assert "normalizer" in r["hint"]
    assert checks(rep)["call_via_pbx_inbound"]["status"] == "pass"


def _nft(*args: str) -> None:
    subprocess.run(["nft", *args], check=True, capture_output=True, timeout=10)


def test_one_way_audio_on_the_real_path(clean_lab, run_sipkit):
    """The agent's RTP never arrives (a firewall on the media range): audio one way only."""
    lab = clean_lab
    if shutil.which("nft") is None or os.geteuid() != 0:
        pytest.skip("needs nft and root to drop the cloud's RTP")
    table = f"vfy_{os.getpid()}"
    try:
        _nft("add", "table", "inet", table)
        _nft("add", "chain", "inet", table, "out", "{ type filter hook output priority 0 ; }")
        # RTP the cloud agent sends to this lab's PBX host, where the test extension's media
        # lives: UDP from the connector server whose payload starts with version 2 (RFC 3550
        # §5.1: the top two bits); SIP is text, its first byte never has them
        _nft("add", "rule", "inet", table, "out", "ip", "saddr", lab.connector_ip, "ip", "daddr",
             lab.pbx_ip, "meta", "l4proto", "udp", "@th,64,2", "2", "drop")
        proc, rep = verify(run_sipkit, lab, None, "--only", "call_via_pbx_inbound")
    finally:
        subprocess.run(["nft", "delete", "table", "inet", table], capture_output=True,
                       timeout=10, check=False)  # gone already if the first add failed
    r = checks(rep)["call_via_pbx_inbound"]
    assert proc.returncode == 1 and r["status"] == "fail", r
    assert "one-way audio" in r["summary"], r
    assert r["details"]["call"]["rx"]["packets"] == 0 and r["details"]["call"]["tx"]["packets"] > 50


def test_verify_without_a_connector(lab, run_sipkit):
    delete_connectors(lab)
    proc, rep = verify(run_sipkit, lab)
    r = checks(rep)["cloud_registration"]
    assert proc.returncode == 1 and r["status"] == "fail", r
    assert "no connector" in r["summary"] and "--create" in r["hint"]
    assert "Traceback" not in proc.stderr
    fresh_connector(lab)


def test_verify_with_the_api_down(lab, run_sipkit):
    env = lab_env(lab) | {"SIPKIT_API_URL": f"http://{lab.ip(98)}:8080"}  # nothing listens
    proc = run_sipkit("verify", "-c", str(lab.site_file), "--json", env=env, timeout=120)
    r = checks(report_of(proc))["cloud_registration"]
    assert proc.returncode == 4 and r["status"] == "error", r
    assert "did not answer" in r["summary"] and "Traceback" not in proc.stderr


def test_verify_usage_errors(lab, run_sipkit, tmp_path):
    env = {k: v for k, v in lab_env(lab).items() if not k.startswith("SIPKIT_API")}
    proc = run_sipkit("verify", "-c", str(lab.site_file), env=env | {"SIPKIT_API_URL": "",
                                                                     "SIPKIT_API_TOKEN_FILE": ""})
    assert proc.returncode == 2 and "--api-url" in proc.stderr, proc.stderr
    site = site_variant(lab, tmp_path, **{"check.test_extension": {"username": "100",
                                                                   "password": "x"}})
    proc = run_sipkit("verify", "-c", str(site), env=lab_env(lab))
    assert proc.returncode == 2 and "check.test_extension.username" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_wrong_test_extension_password_is_tried_once(lab, run_sipkit):
    uid = fresh_connector(lab)
    assert wait_registration(lab, uid)["state"] == "registered"
    proc, rep = verify(run_sipkit, lab, None, "--set",
                       "check.test_extension.password=wrong-test-pw")
    by = checks(rep)
    r = by["cloud_registration"]
    assert proc.returncode == 1 and r["status"] == "fail", r
    assert "test extension 200's password" in r["summary"] and "tried once" in r["summary"]
    assert by["call_via_pbx_outbound"]["status"] == "skip"
    invites = [m for m in json.dumps(rep).split("INVITE sip:100@") if "Authorization" in m]
    assert len(invites) <= 1
    assert "wrong-test-pw" not in proc.stdout


def test_verify_over_tls(lab, run_sipkit):
    """A TLS connector: the cloud registers over TLS 5061, both calls go over TLS."""
    uid = fresh_connector(lab, lab.tls_site_file)
    try:
        assert wait_registration(lab, uid)["state"] == "registered"
        proc, rep = verify(run_sipkit, lab, lab.tls_site_file)
        assert proc.returncode == 0, proc.stdout[-3000:]
        for cid in ("call_via_pbx_inbound", "call_via_pbx_outbound"):
            call = checks(rep)[cid]["details"]["call"]
            assert call["tx"]["packets"] > 50 and call["rx"]["packets"] > 50, call
    finally:
        fresh_connector(lab)


def _registered_phone(lab, host: int, seconds: float = 30) -> CloudAgents:
    """Another device on extension 100: a real UA (the lab's pjsua2 agent) on .``host``,
    registered with the extension's own credentials."""
    phone = CloudAgents(lab.ip(host))
    phone.start("phone", {"registrar_server": lab.pbx_ip, "username_extension": "100",
                          "pbx_password": lab.passwords()["100"]})
    deadline = time.monotonic() + seconds
    while (phone.view("phone") or {}).get("state") != "registered":
        if time.monotonic() > deadline:
            phone.stop("phone")
            raise AssertionError(f"the phone did not register: {phone.view('phone')}")
        time.sleep(0.2)
    return phone


def test_register_tells_the_connectors_binding_from_another_device(lab, run_sipkit):
    """Once the connector exists the cloud registers extension 100 too: `sipkit check` must
    not call that another device (connector_server: auto, asked of the API), while a real
    other device on the extension still warns."""
    uid = fresh_connector(lab)
    assert wait_registration(lab, uid)["state"] == "registered"
    env = lab_env(lab)
    only = ("check", "-c", str(lab.site_file), "--only", "register")
    proc = run_sipkit(*only, "--json", env=env)
    reg = checks(report_of(proc))["register"]
    assert proc.returncode == 0 and reg["status"] == "pass", reg
    assert reg["details"]["other_bindings"] == []
    (cloud,) = reg["details"]["connector_bindings"]
    assert f"@{lab.connector_ip}:" in cloud and reg["details"]["connector_server"] == \
        lab.connector_ip
    assert "the connector's own registration (cloud" in reg["summary"], reg["summary"]
    human = run_sipkit(*only, env=env | {"COLUMNS": "400"})
    assert human.returncode == 0, human.stdout
    assert "the connector's own registration (cloud" in human.stdout, human.stdout
    assert "other registered device" not in human.stdout

    phone = _registered_phone(lab, 64)
    try:  # the site file's own connector_server this time: no API needed to know it
        proc = run_sipkit(*only, "--json", "--set", f"check.connector_server={lab.connector_ip}",
                          env=env)
    finally:
        phone.stop("phone")  # it un-registers
    reg = checks(report_of(proc))["register"]
    assert reg["status"] == "warn", reg
    assert "extension 100 has 1 other registered device" in reg["summary"], reg["summary"]
    assert "give the connector an extension of its own" in reg["hint"]
    (other,) = reg["details"]["other_bindings"]
    assert f"@{lab.ip(64)}:" in other
    assert len(reg["details"]["connector_bindings"]) == 1
    assert_no_secrets(lab, proc.stdout, proc.stderr, human.stdout, human.stderr)
