"""Test calls with media through the real lab (pjsua2 ↔ Kamailio ↔ SIPp echo), allowed_ip,
and `check --create` end to end against the API sandbox."""

from __future__ import annotations

import asyncio
import time

import pytest
import yaml

from sipkit.media.call import run_call
from sipkit.media.model import CallParams
from tests.conftest import report_of
from tests.integration.test_checks_lab import checks, site_variant
from tests.peers import silent_sipp_uas

pytestmark = pytest.mark.lab


def lab_env(lab) -> dict:
    return lab.env()


def delete_all_connectors(lab, run_sipkit):
    env = lab_env(lab)
    listing = report_of(run_sipkit("connector", "list", "--json", env=env))
    for c in listing["items"]:
        run_sipkit("connector", "delete", c["pbx_extension_connector_uuid"], env=env)


def test_outbound_call_through_pbx_with_normalized_number(lab, run_sipkit, no_connectors):
    proc = run_sipkit("check", "-c", str(lab.site_file), "--only", "call_outbound", "--json")
    call = checks(report_of(proc))["call_outbound"]
    assert call["status"] == "pass", call
    d = call["details"]
    assert (d["raw_number"], d["number"]) == ("5321234567", "05321234567")
    c = d["call"]
    assert c["code"] == 200 and c["tx"]["packets"] > 50 and c["rx"]["packets"] > 50
    assert c["rx"]["loss"] == 0 and c["mos"] > 4.0
    # and it left no binding behind on the PBX
    proc = run_sipkit("check", "-c", str(lab.site_file), "--only", "register", "--json")
    assert checks(report_of(proc))["register"]["details"]["other_bindings"] == []


def test_wrong_number_rule_shows_the_pbx_rejection(lab, run_sipkit, tmp_path):
    # a rule that never applies: the raw 10-digit number reaches a PBX that wants 0 + 10 digits
    site = site_variant(lab, tmp_path, normalizer={"default_prefix": "0",
                                                   "condition_length": "11"})
    proc = run_sipkit("check", "-c", str(site), "--only", "call_outbound", "--json")
    call = checks(report_of(proc))["call_outbound"]
    assert call["status"] == "fail" and "484" in call["summary"], call
    assert "normalizer" in call["hint"]


def test_inbound_not_yet_allowed_then_create(lab, run_sipkit):
    env = lab_env(lab)
    delete_all_connectors(lab, run_sipkit)
    run_sipkit("server", "release", env=env)
    proc = run_sipkit("check", "-c", str(lab.site_file), "--only", "call_inbound", "--json",
                      env=env)
    assert "no SIP connector server is allocated" in checks(report_of(proc))["allowed_ip"]["summary"]
    assert run_sipkit("server", "allocate", env=env).returncode == 0
    proc = run_sipkit("check", "-c", str(lab.site_file), "--only", "call_inbound", "--json",
                      env=env)
    rep = report_of(proc)
    inbound = checks(rep)["call_inbound"]
    assert inbound["status"] == "warn" and "403" in inbound["summary"], inbound
    assert "--create" in inbound["hint"]
    assert checks(rep)["allowed_ip"]["status"] == "pass"

    proc = run_sipkit("check", "-c", str(lab.site_file), "--create", "--json", env=env)
    rep = report_of(proc)
    assert proc.returncode == 0, proc.stdout[-2000:]
    assert rep["provisioning"]["action"] == "created"
    inbound = checks(rep)["call_inbound"]
    assert inbound["status"] == "pass", inbound
    assert inbound["details"]["call"]["rx"]["packets"] > 50 and inbound["details"]["call"]["mos"] > 4
    # re-running is harmless: the connector already exists
    proc = run_sipkit("check", "-c", str(lab.site_file), "--create", "--json", env=env)
    assert report_of(proc)["provisioning"]["action"] == "exists"
    delete_all_connectors(lab, run_sipkit)


def test_create_refused_when_a_check_fails(lab, run_sipkit, tmp_path):
    env = lab_env(lab)
    site = site_variant(lab, tmp_path, pbx_password="wrong-pw-create")
    proc = run_sipkit("check", "-c", str(site), "--create", "--json", env=env)
    rep = report_of(proc)
    assert proc.returncode == 1 and rep["provisioning"]["action"] == "none"
    assert "register" in rep["provisioning"]["reason"]
    listing = report_of(run_sipkit("connector", "list", "--json", env=env))
    assert listing["pagination"]["total"] == 0


def test_allowed_ip_mismatch_names_both_addresses(lab, run_sipkit):
    env = lab_env(lab)
    run_sipkit("server", "allocate", env=env)
    other = lab.ip(9)  # a second loopback address: the site "egresses" from elsewhere
    proc = run_sipkit("check", "-c", str(lab.site_file), "--only", "allowed_ip", "--json",
                      "--source-ip", other, env=env)
    a = checks(report_of(proc))["allowed_ip"]
    assert a["status"] == "fail" and other in a["summary"] and lab.pbx_ip in a["summary"], a
    assert f"allowed_ip: {other}" in a["hint"]


def test_allowed_ip_private_while_server_sees_other(lab, run_sipkit, tmp_path):
    env = lab_env(lab)
    run_sipkit("server", "allocate", env=env)
    site = site_variant(lab, tmp_path, allowed_ip="192.168.1.10")
    proc = run_sipkit("check", "-c", str(site), "--only", "allowed_ip", "--json", env=env)
    a = checks(report_of(proc))["allowed_ip"]
    assert a["status"] == "fail" and "192.168.1.10" in a["summary"] and lab.pbx_ip in a["summary"]


@pytest.fixture
def silent_uas(lab, tmp_path):
    """A SIPp UAS that answers but never sends RTP: the far end of a one-way-audio call."""
    with silent_sipp_uas(lab, 31, 8890, tmp_path) as ip:
        yield ip


def test_one_way_audio_detected(lab, silent_uas):
    r = asyncio.run(run_call(CallParams(target=f"sip:echo@{silent_uas}:5060", local_ip=lab.pbx_ip,
                                        seconds=1.5)))
    assert r.status == "answered" and r.tx.packets > 30 and r.rx.packets == 0
    assert "one_way_audio" in r.verdicts and r.mos is None


def test_two_way_audio_direct(lab):
    t0 = time.monotonic()
    r = asyncio.run(run_call(CallParams(target=f"sip:echo@{lab.echo_ip}:5060",
                                        local_ip=lab.pbx_ip, seconds=1.5)))
    assert r.status == "answered" and r.verdicts == [] and r.rx.loss == 0
    assert r.codec == "PCMU/8000" and r.remote_media == f"{lab.echo_ip}:6000"
    assert time.monotonic() - t0 < 8


def test_far_end_rtcp_gives_rtt_and_our_outbound_loss(lab):
    # The lab's media echo answers RTCP like a phone (sipkit.lab.rtp_echo): the RTT comes from
    # its LSR/DLSR and what it lost of our stream from its receiver report (RFC 3550 §6.4.1).
    r = asyncio.run(run_call(CallParams(target=f"sip:echo@{lab.echo_ip}:5060",
                                        local_ip=lab.pbx_ip, seconds=3,
                                        test_hook="tx_drop_pct=20")))
    assert r.status == "answered" and r.rtcp_reports >= 1, r
    assert r.rtt_ms is not None and 0 < r.rtt_ms < 50
    assert r.mos_inputs["delay_from_rtcp"] is True
    # the far end's count of what it lost of ours, as of its last report (it reports every
    # second; pjsua, like us, puts that count over all we sent, so it lags a little)
    assert r.tx.loss > 10 and 5 < r.tx.loss_pct < 30, r.tx
    assert r.tx.jitter_ms_mean is not None and "loss_high" in r.verdicts


def test_worker_crash_is_a_result_not_an_exception(lab):
    r = asyncio.run(run_call(CallParams(target=f"sip:echo@{lab.echo_ip}", local_ip=lab.pbx_ip,
                                        password="Secret-In-Crash-1", test_hook="abort")))
    assert r.status == "error" and "SIGABRT" in r.error
    assert "Secret-In-Crash-1" not in r.model_dump_json()


def test_unanswered_call(lab):
    ip = lab.ip(32)  # nothing there: ICMP refused, pjsua2 gives up
    r = asyncio.run(run_call(CallParams(target=f"sip:x@{ip}:5060", local_ip=lab.pbx_ip,
                                        setup_timeout=3)))
    assert r.status in ("no_answer", "rejected") and r.tx.packets == 0


def test_full_check_with_both_calls_no_secret(lab, run_sipkit):
    env = lab_env(lab)
    password = yaml.safe_load(lab.site_file.read_text())["pbx_password"]
    token = lab.token()
    proc = run_sipkit("check", "-c", str(lab.site_file), "--create", "-vv", env=env)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    assert "call_inbound" in out and "call_outbound" in out and "MOS" in out
    assert password not in out and token not in out
    delete_all_connectors(lab, run_sipkit)


def test_allowed_ip_falls_back_to_what_the_pbx_saw(lab, run_sipkit, tmp_path):
    # no API configured and connector_server auto: the PBX's view is the next best thing
    env = {"SIPKIT_API_URL": "", "SIPKIT_API_TOKEN_FILE": ""}
    proc = run_sipkit("check", "-c", str(lab.site_file), "--only", "allowed_ip,register",
                      "--json", env=env)
    a = checks(report_of(proc))["allowed_ip"]
    assert a["status"] == "warn" and a["details"]["from_pbx"] is True, a
    assert f"the PBX sees this site as {lab.pbx_ip} = allowed_ip" in a["summary"]
    # a silent connector server: fail, and say what the PBX saw
    site = site_variant(lab, tmp_path, **{"check.connector_server": f"{lab.ip(44)}:5060"})
    proc = run_sipkit("check", "-c", str(site), "--only", "allowed_ip,register", "--json",
                      "--timeout", "0.5", env=env)
    a = checks(report_of(proc))["allowed_ip"]
    assert a["status"] == "fail" and a["details"]["pbx_seen_as"] == lab.pbx_ip, a


def test_api_flags_reach_connector_server_auto(lab, run_sipkit):
    """Settings flow once: --api-url/--token-file (no env) reach the connector_server: auto
    lookup, not only --create."""
    assert run_sipkit("server", "allocate", env=lab_env(lab)).returncode == 0
    env = {"SIPKIT_API_URL": "", "SIPKIT_API_TOKEN": "", "SIPKIT_API_TOKEN_FILE": ""}
    proc = run_sipkit("check", "-c", str(lab.site_file), "--only", "allowed_ip", "--json",
                      "--api-url", lab.api_url, "--token-file", str(lab.token_file), env=env)
    a = checks(report_of(proc))["allowed_ip"]
    assert a["details"].get("server_from") == "api", a
    assert a["details"]["connector_server"]["ip"] == lab.connector_ip
    assert "not configured" not in a["summary"]
    assert lab.token() not in proc.stdout + proc.stderr
    # and without them, the check says how to configure it
    proc = run_sipkit("check", "-c", str(lab.site_file), "--only", "allowed_ip", "--json",
                      env=env)
    a = checks(report_of(proc))["allowed_ip"]
    assert "--api-url" in a["summary"] or "--api-url" in (a["hint"] or ""), a
