"""`sipkit check` on a SIP trunk (kind: sip_trunk) against the lab carrier: a real Kamailio that
authenticates OPTIONS and INVITE like a provider, its secondary gateway, and SRV/NAPTR names
served by sipkit's DNS server on the session's own loopback address."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml

from sipkit.lab.dns import DnsServer
from tests.conftest import report_of, yaml_variant

pytestmark = pytest.mark.lab


def trunk_variant(lab, tmp_path: Path, **changes) -> Path:
    return yaml_variant(lab.trunk_file, tmp_path, **changes)


def carrier_auths(lab) -> int:
    """Authenticated requests the primary carrier has seen (its log marks each one)."""
    return (lab.directory / "carrier.log").read_text(errors="replace").count("AUTH-CARRIER")


def wait_auths(lab, at_least: int, seconds: float = 3.0) -> int:
    # Kamailio writes its log asynchronously to the check's exit: poll, with a deadline.
    deadline = time.monotonic() + seconds
    while carrier_auths(lab) < at_least and time.monotonic() < deadline:
        time.sleep(0.05)
    return carrier_auths(lab)


def by_id(proc) -> dict[str, dict]:
    return {c["id"]: c for c in report_of(proc)["checks"]}


def password(lab) -> str:
    return yaml.safe_load(lab.trunk_file.read_text())["password"]


CONNECTOR_ONLY = ("allowed_ip", "call_inbound", "call_outbound", "normalizer", "register")


def test_trunk_passes_and_never_gets_connector_verdicts(lab, run_sipkit):
    before = carrier_auths(lab)
    proc = run_sipkit("check", "-c", str(lab.trunk_file), "--json")
    by = by_id(proc)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for cid in ("config", "dns", "transport", "credentials", "secondary_gateway"):
        assert by[cid]["status"] == "pass", by[cid]
    # A trunk has no allowed_ip, no extension: those checks are skipped with the reason.
    for cid in CONNECTOR_ONLY:
        assert by[cid]["status"] == "skip" and "not for a SIP trunk" in by[cid]["summary"], cid
    assert by["trunk_call"]["status"] == "skip" and "billed" in by["trunk_call"]["summary"]
    assert by["credentials"]["details"]["authenticated_attempts"] == 1
    assert "challenged OPTIONS" in by["credentials"]["summary"]
    assert wait_auths(lab, before + 1) == before + 1  # exactly one, counted at Kamailio
    assert password(lab) not in proc.stdout + proc.stderr


def test_trunk_over_tls(lab, run_sipkit, tmp_path):
    path = trunk_variant(lab, tmp_path, transport="tls", port="5061",
                         secondary_gateway=f"{lab.carrier2_ip}:5061")
    proc = run_sipkit("check", "-c", str(path), "--json")
    by = by_id(proc)
    assert proc.returncode == 0, proc.stdout
    assert by["tls"]["status"] == "pass" and by["tls"]["details"]["verified"] is True
    assert by["credentials"]["status"] == "pass"
    assert by["secondary_gateway"]["status"] == "pass"
    assert "tls" in by["secondary_gateway"]["details"]["steps"]


def test_wrong_password_one_attempt_and_no_secret(lab, run_sipkit, tmp_path):
    wrong = "Wrong-trunk-Pass-42"
    path = trunk_variant(lab, tmp_path, password=wrong)
    before = carrier_auths(lab)
    for args in (["--json"], ["-vv"]):
        proc = run_sipkit("check", "-c", str(path), *args)
        assert proc.returncode == 1, proc.stdout
        assert wrong not in proc.stdout + proc.stderr
    proc = run_sipkit("check", "-c", str(path), "--json")
    cred = by_id(proc)["credentials"]
    assert cred["status"] == "fail" and "credentials refused" in cred["summary"]
    assert "one attempt" in cred["hint"]
    assert cred["details"]["authenticated_attempts"] == 1
    assert wait_auths(lab, before + 3) == before + 3  # three runs, one attempt each


def test_secondary_gateway_down_is_a_failure(lab, run_sipkit):
    assert lab.stop("carrier2")
    try:
        proc = run_sipkit("check", "-c", str(lab.trunk_file), "--json", "--timeout", "0.5")
        by = by_id(proc)
        assert proc.returncode == 1
        sec = by["secondary_gateway"]
        assert sec["status"] == "fail" and lab.carrier2_ip in sec["summary"]
        assert sec["hint"].startswith("calls fail over to it when the gateway is down")
        assert sec["details"]["failed"] == "transport"
        assert by["credentials"]["status"] == "pass"  # the primary is fine
    finally:
        lab.up()


@pytest.fixture(scope="module")
def trunk_dns(lab):
    carrier = lab.carrier_ip
    zone = {
        # SRV only, no A for the name itself: the gateway must be found by RFC 3263
        "_sip._udp.srv-only.trunk.test.": {"SRV": ["10 10 5060 gw1.trunk.test."]},
        "gw1.trunk.test.": {"A": [carrier]},
        # NAPTR -> SRV -> A, as Telnyx publishes sip.telnyx.com
        "naptr.trunk.test.": {"NAPTR": ['10 50 "s" "SIP+D2U" "" _sip._udp.naptr.trunk.test.']},
        "_sip._udp.naptr.trunk.test.": {"SRV": ["10 10 5060 gw1.trunk.test."]},
        # A record plus an SRV that advertises another port than the one configured
        "mismatch.trunk.test.": {"A": [carrier]},
        "_sip._udp.mismatch.trunk.test.": {"SRV": ["10 10 5060 gw1.trunk.test."]},
    }
    with DnsServer(lab.ip(249), 0, zone) as srv:
        yield srv
        assert srv.errors == []


@pytest.mark.parametrize("name", ["srv-only.trunk.test", "naptr.trunk.test"])
def test_gateway_without_port_follows_rfc3263(lab, run_sipkit, tmp_path, trunk_dns, name):
    path = trunk_variant(lab, tmp_path, gateway=name, port=None, secondary_gateway=None)
    proc = run_sipkit("check", "-c", str(path), "--json", "--nameserver", trunk_dns.nameserver)
    by = by_id(proc)
    assert by["dns"]["status"] == "pass", by["dns"]
    assert by["dns"]["details"]["targets"][0] == {"host": name, "ip": lab.carrier_ip,
                                                   "port": 5060, "transport": "udp"}
    assert by["dns"]["details"]["explicit_port"] is False
    assert "from SRV" in by["dns"]["summary"]
    assert by["credentials"]["status"] == "pass"
    assert by["secondary_gateway"]["status"] == "skip"


def test_port_mismatched_srv_warns_and_the_registering_variant_registers(
        lab, run_sipkit, tmp_path, trunk_dns):
    """Port 5070 (the carrier's registering variant) while SRV says 5060: dns warns; OPTIONS
    there is not challenged, so the credentials are proven by one REGISTER instead."""
    path = trunk_variant(lab, tmp_path, gateway="mismatch.trunk.test", port="5070",
                         secondary_gateway=None)
    before = carrier_auths(lab)
    proc = run_sipkit("check", "-c", str(path), "--json", "--nameserver", trunk_dns.nameserver)
    by = by_id(proc)
    assert by["dns"]["status"] == "warn"
    assert "advertises port 5060, but port is 5070" in by["dns"]["summary"]
    cred = by["credentials"]
    assert cred["status"] == "pass", cred
    assert cred["summary"].startswith("REGISTER: registered lab-trunk@")
    assert cred["details"]["options_unchallenged"] is True
    assert cred["details"]["register"]["unregistered"] is True
    # the REGISTER and the removal of our own binding: the password was proven by the first
    assert wait_auths(lab, before + 2) == before + 2


def test_registration_never_and_unchallenged_options_is_unverified(lab, run_sipkit, tmp_path):
    path = trunk_variant(lab, tmp_path, port="5070", secondary_gateway=None,
                         **{"check.registration": "never"})
    before = carrier_auths(lab)
    proc = run_sipkit("check", "-c", str(path), "--json")
    cred = by_id(proc)["credentials"]
    assert proc.returncode == 0  # a warning, not a failure
    assert cred["status"] == "warn" and "credentials not verified" in cred["summary"]
    assert "outbound_test_number" in cred["hint"]
    time.sleep(0.3)
    assert carrier_auths(lab) == before  # nothing was sent with credentials


def test_trunk_test_call_only_when_asked(lab, run_sipkit, tmp_path):
    path = trunk_variant(lab, tmp_path, **{"check.outbound_test_number": "+902124439100",
                                           "check.call_seconds": "2"})
    proc = run_sipkit("check", "-c", str(path), "--json", "--only", "trunk_call", timeout=90)
    call = by_id(proc)["trunk_call"]
    assert call["status"] == "pass", call
    assert call["details"]["number"] == "+902124439100"
    assert password(lab) not in proc.stdout + proc.stderr


def test_trunk_site_errors_name_the_field(run_sipkit, tmp_path):
    path = tmp_path / "bad-trunk.yaml"
    path.write_text("kind: sip_trunk\nname: x\ngateway: sip://nope\nusername: u\n")
    proc = run_sipkit("check", "-c", str(path))
    assert proc.returncode == 2
    assert "gateway: must be a bare host name" in proc.stderr
    assert "Traceback" not in proc.stderr
