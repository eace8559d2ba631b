"""Regression tests for issue 11's register defects, each against one scripted hostile
registrar (tests/hostile.py with the plan fixed): a normal verdict every time, the one-attempt
rule intact, the binding removed, no digest value in any output."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import time

import pytest
import yaml

from sipkit.checks import register
from sipkit.checks.base import CheckContext, Target
from sipkit.settings import Site
from tests.conftest import ROOT, SIPKIT, _prefix
from tests.fuzzing import OPTIONS, PASSWORD, leaks, run_seed, site_data
from tests.hostile import BAD_CHALLENGES, GOOD_CHALLENGES, HostileRegistrar

IP = f"{_prefix()}.78"
# A well-behaved registrar; each test changes one thing.
PLAIN = dict(first="challenge", challenge=GOOD_CHALLENGES[0], auth=["ok"], min_expires="3600",
             retry_after="120", contact_expires="60", header_expires=None, via_top="keep",
             via_extra=[], contact_extra=[], duplicate=[], overlong=0, reflect=[], brk="none",
             unregister_challenge=False)


def run(tmp_path, transport: str = "udp", **changes):
    return asyncio.run(run_seed(0, transport, IP, tmp_path, **{**PLAIN, **changes}))


def test_plain_registrar_passes(tmp_path):
    out = run(tmp_path)
    assert out.result.status == "pass", out.result.summary
    assert out.result.details["unregistered"] is True and not out.violations


@pytest.mark.parametrize("contact,header,granted", [
    ("²", None, None), ("⁶⁰", None, None), ("５", "60", 60), ("", "⁶⁰", None),
    ("99999999999", None, None), ("60", "⁶⁰", 60)])
def test_unicode_digits_in_expires_are_no_number(tmp_path, contact, header, granted):
    out = run(tmp_path, contact_expires=contact, header_expires=header)
    assert out.result.status in ("pass", "warn"), out.result.summary
    assert out.result.details["granted_expires"] == granted
    assert out.result.details["unregistered"] is True and not out.violations


@pytest.mark.parametrize("minimum,retried", [
    ("²", False), ("⁶⁰", False), ("", False), ("99999999999", False), ("30", False),
    ("86401", False), ("3600 (one hour)", False), ("3600", True)])
def test_min_expires_is_read_by_the_ascii_rule(tmp_path, minimum, retried):
    out = run(tmp_path, auth=["423", "ok"], min_expires=minimum)
    d = out.result.details
    assert out.result.status != "error" and not out.violations, out.result.summary
    if retried:
        assert d["retried"] == "423: Min-Expires 3600" and d["unregistered"] is True
    else:
        assert out.result.status == "fail" and "423" in out.result.summary
        assert d["authenticated_attempts"] == 1


@pytest.mark.parametrize("via", ["Via: garbage", "Via: SIP/2.0/UDP [::1"])
def test_malformed_second_via_in_the_200_is_an_alg_sign(tmp_path, via):
    out = run(tmp_path, via_extra=[via])
    assert out.result.status == "warn", out.result.summary
    assert "2 Via headers came back" in out.result.summary
    assert out.result.details["unregistered"] is True and not out.violations


@pytest.mark.parametrize("step", ["401_no_challenge", "401_no_nonce", "401_broken",
                                  "407_empty"])
def test_broken_challenge_after_authenticating_is_credentials_refused(tmp_path, step):
    out = run(tmp_path, auth=[step])
    assert out.result.status == "fail", out.result.summary
    assert "wrong password" in out.result.summary and "one attempt" in out.result.hint
    assert out.result.details["authenticated_attempts"] == 1 and not out.violations


@pytest.mark.parametrize("challenge", BAD_CHALLENGES[:3], ids=["SHA-1", "AKAv1-MD5", "fullwidth"])
def test_stale_challenge_sipkit_cannot_answer_is_not_chosen(tmp_path, challenge):
    out = run(tmp_path, auth=["stale_bad"], stale_challenge=challenge)
    assert out.result.status == "fail", out.result.summary
    assert "answered nonsense" in out.result.summary and "stale=true" in out.result.summary
    assert out.result.details["authenticated_attempts"] == 1 and not out.violations


def test_stale_challenge_sipkit_can_answer_is_retried_once(tmp_path):
    out = run(tmp_path, auth=["stale_ok", "ok"])
    assert out.result.status == "pass", out.result.summary
    assert out.result.details["retried"] == "stale nonce" and not out.violations


@pytest.mark.parametrize("via", ["bare_rport", "rport_text", "rport_unicode", "rport_big"])
def test_rport_without_a_port_is_not_a_port(tmp_path, via):
    out = run(tmp_path, via_top=via)
    d = out.result.details
    assert "True" not in d["seen_as"] and "True" not in out.result.summary
    assert d["nat"] is False and d["seen_as"] == d["local"]


def test_nat_is_reported_from_received_and_rport(tmp_path):
    out = run(tmp_path, via_top="nat")
    assert "NAT: the PBX sees 203.0.113.7:40001" in out.result.summary


@pytest.mark.parametrize("how", [["reason"], ["warning"], ["header"], ["server_upper"],
                                 ["reason", "warning"]])
def test_reflected_digest_values_are_masked_everywhere(tmp_path, how):
    # run_seed renders JSON, human -vv and the pcap and fails on any digest value in them
    out = run(tmp_path, reflect=how, challenge=GOOD_CHALLENGES[0])
    assert out.result.status in ("pass", "warn") and not out.violations, out.violations


def test_reflected_digest_in_a_403_reason_is_masked(tmp_path):
    out = run(tmp_path, auth=["403_reflect"])
    assert out.result.status == "fail" and "<redacted>" in out.result.summary
    assert not out.violations


def test_retry_after_in_unicode_digits_is_not_printed(tmp_path):
    out = run(tmp_path, auth=["503"], retry_after="²")
    assert out.result.status == "fail" and "²" not in out.result.summary


# -- the binding is removed whatever fails after the 200 ----------------------------------

def test_tcp_peer_closing_after_the_200_still_gets_the_removal(tmp_path):
    out = run(tmp_path, "tcp", brk="close")
    assert out.result.details["unregistered"] is True, out.result.summary
    assert not out.violations


def _ctx_and_target(peer):
    site = Site.model_validate(site_data(IP, peer.address[1]))
    ctx = CheckContext.for_site(site, OPTIONS)
    target = Target(host=IP, ip=IP, port=peer.address[1], transport=peer.transport)
    return ctx, target


def test_an_exception_after_the_200_still_removes_the_binding(monkeypatch):
    def broken(*_a, **_k):
        raise RuntimeError("a bug after the 200")

    monkeypatch.setattr(register, "_path_facts", broken)
    with HostileRegistrar(0, IP, "udp", **PLAIN) as peer:
        ctx, target = _ctx_and_target(peer)
        with pytest.raises(RuntimeError):
            asyncio.run(register.attempt(ctx, target))
    assert peer.books.bindings_made == 1 and peer.books.removed == 1


def test_cancellation_after_the_200_still_removes_the_binding(monkeypatch):
    real, calls = register._unregister, []

    async def cancelled_first(flow, expires):  # Ctrl-C / the runner's budget, right then
        calls.append(expires)
        if len(calls) == 1:
            asyncio.current_task().cancel()
            await asyncio.sleep(0)  # the CancelledError lands here, before anything is sent
        return await real(flow, expires)

    monkeypatch.setattr(register, "_unregister", cancelled_first)
    with HostileRegistrar(0, IP, "udp", **PLAIN) as peer:
        ctx, target = _ctx_and_target(peer)
        with pytest.raises(asyncio.CancelledError):
            asyncio.run(register.attempt(ctx, target))
    assert peer.books.bindings_made == 1 and peer.books.removed == 1


def test_ctrl_c_after_the_200_removes_the_binding_and_exits_130(tmp_path):
    # The first removal is dropped, so sipkit is still removing when SIGINT arrives.
    with HostileRegistrar(0, IP, "udp", **{**PLAIN, "brk": "drop_next"}) as peer:
        site = tmp_path / "site.yaml"
        site.write_text(yaml.safe_dump(site_data(IP, peer.address[1])))
        proc = subprocess.Popen([*SIPKIT, "check", "-c", str(site), "--json", "--skip",
                                 "call_inbound,call_outbound,allowed_ip"], cwd=ROOT,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            assert peer.removing.wait(60), "sipkit never registered, or never removed"
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        deadline = time.monotonic() + 10
        while peer.books.bound and time.monotonic() < deadline:
            time.sleep(0.05)
    assert proc.returncode in (130, 0, 1), (proc.returncode, err[-1500:])  # 0/1: it finished
    assert peer.books.removed == 1 and not peer.books.bound, err[-1500:]
    assert not leaks([out, err], {PASSWORD} | peer.books.digest_values)
    if proc.returncode != 130:
        assert json.loads(out)["checks"]  # it completed before the signal landed
