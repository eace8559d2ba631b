"""The pure parts of the after-creation checks: reading a call's path from its own SIP, the
cloud's REGISTER outcome as a cause, the test extension's settings and the VERIFY group."""

from __future__ import annotations

import pytest

from sipkit.checks import REGISTRY, VERIFY, load
from sipkit.checks.cloud_registration import _cloud_cause
from sipkit.checks.runner import select
from sipkit.checks.via_pbx import answer_contact_host, challenged, first_invite
from sipkit.errors import UsageError
from sipkit.media.model import CallResult, SipMessage
from sipkit.settings import load_site


def _msg(direction: str, text: str, remote=("192.0.2.1", 5060), ts=100.0) -> SipMessage:
    return SipMessage(direction=direction, ts=ts, transport="udp", local=("192.0.2.9", 5062),
                      remote=remote, data=text.replace("\n", "\r\n") + "\r\n")


def _response(status: int, reason: str, method: str = "INVITE", contact: str = "") -> str:
    return (f"SIP/2.0 {status} {reason}\nVia: SIP/2.0/UDP 192.0.2.9:5062;branch=z9hG4bK1\n"
            "From: <sip:200@pbx>;tag=a\nTo: <sip:100@pbx>;tag=b\nCall-ID: c1\n"
            f"CSeq: 1 {method}\n" + (f"Contact: {contact}\n" if contact else "")
            + "Content-Length: 0\n")


INVITE = ("INVITE sip:200@192.0.2.9:5062 SIP/2.0\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK2\n"
          "From: <sip:100@pbx>;tag=x\nTo: <sip:200@pbx>\nCall-ID: c2\nCSeq: 1 INVITE\n"
          "Contact: <sip:100@198.51.100.7:5080>\nContent-Length: 0\n")


def test_answer_contact_names_who_answered():
    r = CallResult(status="answered", sip=[
        _msg("in", _response(407, "Proxy Authentication Required")),
        _msg("in", _response(200, "OK", contact='"Agent" <sip:100@198.51.100.7:5080>;expires=60')),
    ])
    assert answer_contact_host(r) == "198.51.100.7"
    assert challenged(r) is True


def test_a_200_to_register_is_not_the_answer():
    r = CallResult(status="answered",
                   sip=[_msg("in", _response(200, "OK", "REGISTER", "<sip:200@192.0.2.9>"))])
    assert answer_contact_host(r) is None and challenged(r) is False


def test_first_invite_gives_source_and_time():
    r = CallResult(status="answered", sip=[_msg("out", INVITE),
                                           _msg("in", INVITE, ("203.0.113.5", 5060), 123.5)])
    source, ts, from_ = first_invite(r)
    assert (source, ts) == ("203.0.113.5", 123.5) and "100@pbx" in from_
    assert first_invite(CallResult(status="no_answer")) is None


@pytest.mark.parametrize("reg,cause", [
    ({"code": 403, "challenged": True}, "password"),
    ({"code": 403, "challenged": False}, "address"),
    ({"code": 408}, "silent"),
    ({"code": None}, "silent"),
    ({"code": 404}, "unknown_ext"),
    ({"code": 401, "challenged": True}, "password"),
])
def test_cloud_register_outcome_as_cause(reg, cause):
    assert _cloud_cause(reg) == cause


def test_verify_group_is_apart_from_check():
    assert not set(VERIFY) & set(REGISTRY)
    ids, _ = select(registry=VERIFY)
    assert ids == ["cloud_registration", "call_via_pbx_inbound", "call_via_pbx_outbound"]
    assert "cloud_registration" not in select()[0]  # a plain check never runs them
    with pytest.raises(UsageError):
        select(only=["register"], registry=VERIFY)
    for cid in VERIFY:
        mod = load(cid)
        assert set(mod.DEPENDS) <= set(VERIFY) and mod.KINDS == ("pbx_extension",)


SITE = """agent_uuid: 3c90c3cc-0d44-4b50-8888-8dd25736052a
phone_number: "+12084439178"
registrar_server: pbx.example.com
username_extension: "100"
pbx_password: pw-connector-1
allowed_ip: 198.51.100.10
check:
  test_extension: {username: "200", password: "${TEST_PW}"}
"""


def test_test_extension_reads_env_and_is_a_secret(tmp_path, monkeypatch):
    monkeypatch.setenv("TEST_PW", "pw-test-ext-9")
    path = tmp_path / "site.yaml"
    path.write_text(SITE)
    site = load_site(path)
    test = site.check.test_extension
    assert test.username == "200" and test.dial == "200"
    assert test.password.get_secret_value() == "pw-test-ext-9"
    assert "pw-test-ext-9" in site.secrets()  # so every output redacts it
    assert "pw-test-ext-9" not in repr(site) and "pw-test-ext-9" not in str(site.public_view())

