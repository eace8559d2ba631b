"""The reflector's pure parts: the ALG diff, tokens, rate limits, the log's body filter, its
config file, the agent's settings, and the outside_reach verdicts on synthetic answers."""

from __future__ import annotations

import asyncio

import pytest
import yaml

from sipkit.checks import sip_alg
from sipkit.checks.base import CheckContext, RunOptions
from sipkit.errors import SettingsError
from sipkit.reflector.app import ReachBody, loggable
from sipkit.reflector.config import load_config
from sipkit.reflector.policy import RateLimiter, target_allowed
from sipkit.reflector.tokens import TokenBook, digest
from sipkit.settings import load_site
from sipkit.sip.sdp import audio_offer

SENT = ("INVITE sip:sipkit-mirror-0123456789abcdef@203.0.113.9:5060 SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 192.168.1.20:5062;branch=z9hG4bKabc;rport\r\n"
        "Max-Forwards: 70\r\nFrom: <sip:100@pbx.example.com>;tag=1\r\n"
        "To: <sip:sipkit-mirror-0123456789abcdef@203.0.113.9:5060>\r\nCall-ID: x@192.168.1.20\r\n"
        "CSeq: 2 INVITE\r\nContact: <sip:100@192.168.1.20:5062;transport=udp>\r\n"
        "Content-Type: application/sdp\r\n")


def _msg(head: str, body: bytes) -> bytes:
    return (head + f"Content-Length: {len(body)}\r\n\r\n").encode() + body


def test_diff_identical_is_empty():
    data = _msg(SENT, audio_offer("192.168.1.20", 40000))
    assert sip_alg.diff(data, data) == []


def test_diff_names_what_an_alg_rewrote():
    sent = _msg(SENT, audio_offer("192.168.1.20", 40000))
    alg = SENT.replace("Contact: <sip:100@192.168.1.20:5062", "Contact: <sip:100@198.51.100.7:5062")
    alg = alg.replace("Max-Forwards: 70", "Max-Forwards: 69")
    arrived = _msg(alg, audio_offer("198.51.100.7", 21000))
    fields = {c["field"]: c for c in sip_alg.diff(sent, arrived)}
    assert set(fields) == {"Contact", "Max-Forwards", "SDP c=", "SDP o=", "SDP m="}
    assert "198.51.100.7" in fields["SDP c="]["arrived"]
    assert fields["SDP m="]["sent"].startswith("m=audio 40000")


def test_diff_of_a_garbled_message_says_so():
    sent = _msg(SENT, b"")
    garbled = sent.replace(b"Via: SIP/2.0/UDP", b"Via: SIP/2.0/UDP 1.2.3.4:5060Via:", 1)
    garbled = garbled.replace(b"CSeq: 2 INVITE", b"CSeq: two")
    (change,) = sip_alg.diff(sent, garbled)
    assert change["field"] == "message" and "no longer valid SIP" in change["arrived"]


def test_tokens_hash_allow_and_bad_entries(tmp_path):
    path = tmp_path / "tokens.yaml"
    path.write_text(yaml.safe_dump([{"name": "a", "sha256": digest("tok-a")},
                                    {"name": "b", "token": "tok-b", "allow": ["198.51.100.0/24"]}]))
    book = TokenBook.load(path)
    assert book.find("tok-a").name == "a" and book.find("tok-b").name == "b"
    assert book.find("tok-c") is None and book.find("") is None and book.find(None) is None
    b = book.find("tok-b")
    assert target_allowed("198.51.100.77", "203.0.113.1", b)
    assert not target_allowed("192.0.2.1", "203.0.113.1", b)
    assert target_allowed("203.0.113.1", "203.0.113.1", book.find("tok-a"))
    path.write_text(yaml.safe_dump([{"name": "c", "allow": ["not-an-ip"], "token": "t"}]))
    with pytest.raises(SettingsError, match=r"\[0\]\.allow: 'not-an-ip' is not an address"):
        TokenBook.load(path)
    path.write_text(yaml.safe_dump([{"name": "d"}]))
    with pytest.raises(SettingsError, match="sipkit reflector token NAME"):
        TokenBook.load(path)


def test_token_file_reads_digits_as_text_and_refuses_a_malformed_digest(tmp_path):
    # found by review: YAML 1.1 read an all-digit value as a number (0123... as octal)
    token = "00000123"  # octal 83 in YAML 1.1
    path = tmp_path / "tokens.yaml"
    path.write_text(f"- name: digits\n  token: {token}\n  allow: 198.51.100.0/24\n"
                    f"- name: zero-led\n  sha256: {'0' + '1' * 63}\n")
    book = TokenBook.load(path)
    assert book.find(token).name == "digits"  # stayed text, not 83
    assert book.find(token).may_probe("198.51.100.9")  # one network without a list
    assert book.entries[1].digest == "0" + "1" * 63
    for bad in ("5e88489", "Z" * 64, "ab" * 33):
        path.write_text(f"- name: typo\n  sha256: {bad}\n")
        with pytest.raises(SettingsError, match=r"\[0\]\.sha256: is not a sha256 digest"):
            TokenBook.load(path)


def test_rate_limiter_slides():
    rl = RateLimiter(2, window=60)
    assert rl.allow("k", 0) and rl.allow("k", 1) and not rl.allow("k", 2)
    assert rl.retry_after("k", 2) == 59
    assert rl.allow("k", 60.5) and rl.allow("other", 2)


def test_the_log_never_holds_secret_looking_values():
    body = {"host": "pbx", "password": "p", "nested": [{"auth_password": "q", "Token": "t"}]}
    assert loggable(body) == {"host": "pbx", "password": "<not logged>",
                              "nested": [{"auth_password": "<not logged>",
                                          "Token": "<not logged>"}]}


def test_reach_body_takes_no_credentials():
    with pytest.raises(ValueError, match="Extra inputs"):
        ReachBody.model_validate({"host": "pbx.example.com", "port": 5060,
                                  "transports": ["udp"], "password": "x"})
    with pytest.raises(ValueError):
        ReachBody.model_validate({"host": "pbx example", "port": 5060, "transports": ["udp"]})


def test_config_errors_name_the_field(tmp_path):
    path = tmp_path / "reflector.yaml"
    path.write_text("listen: 0.0.0.0:8443\npublic_ip: nowhere\n")
    with pytest.raises(SettingsError) as err:
        load_config(path)
    text = str(err.value)
    assert "public_ip: must be an IP address" in text and "tls_cert: is required" in text
    path.write_text("listen: 0.0.0.0:8443\n\tpublic_ip: 1.2.3.4\n")
    with pytest.raises(SettingsError, match="tabs"):
        load_config(path)


SITE = {"agent_uuid": "3c90c3cc-0d44-4b50-8888-8dd25736052a", "phone_number": "+12084439178",
        "registrar_server": "pbx.example.com", "username_extension": "100",
        "pbx_password": "pw-123456", "allowed_ip": "203.0.113.10"}


def test_site_reflector_settings(tmp_path):
    with pytest.raises(SettingsError, match="check.reflector: must be the reflector's https"):
        load_site(None, {**{k: v for k, v in SITE.items()}, "check.reflector": "http://x"})
    with pytest.raises(SettingsError, match="growing idle times"):
        load_site(None, {**SITE, "check.nat_binding": {"idle_s": ["30", "15"]}})
    site = load_site(None, {**SITE, "check.reflector": "https://rfl.example.net:8443",
                            "check.nat_binding": {}})
    assert site.check.nat_binding.idle_s == [15, 30, 60, 120, 240]


def _ctx(**check) -> CheckContext:
    site = load_site(None, {**SITE, **{f"check.{k}": v for k, v in check.items()}})
    return CheckContext.for_site(site, RunOptions())


def test_outside_reach_verdicts_on_synthetic_answers():
    from sipkit.checks.outside_reach import verdict

    ctx = _ctx(reflector="https://rfl.example.net")
    gone = verdict(ctx, {"dns": {"addresses": [], "error": "A nxdomain"}}, "https://r")
    assert gone.status == "fail" and "does not resolve from the internet" in gone.summary
    ok = {"dns": {"addresses": ["203.0.113.10"]}, "caller": "203.0.113.10", "probed": [
        {"transport": "udp", "ip": "203.0.113.10", "port": 5060, "outcome": "answered",
         "options": {"status": 200, "server": "router-sip/1.0"},
         "register": {"status": 401, "challenge": {"realm": "pbx"}}}]}
    ctx.facts.server_header = "Asterisk PBX 18"
    other = verdict(ctx, ok, "https://r")
    assert other.status == "warn" and "a different SIP server answers from outside" in \
        other.summary


def test_outside_checks_skip_without_a_reflector():
    from sipkit.checks import nat_binding, outside_reach

    for mod in (outside_reach, sip_alg, nat_binding):
        r = asyncio.run(mod.run(_ctx()))
        assert r.status == "skip" and "check.reflector" in r.summary


def test_nat_binding_is_opt_in(monkeypatch):
    from sipkit.checks import nat_binding

    monkeypatch.setenv("SIPKIT_REFLECTOR_TOKEN", "rfl_x")
    r = asyncio.run(nat_binding.run(_ctx(reflector="https://rfl.example.net")))
    assert r.status == "skip" and "opt-in" in r.summary


def test_the_shipped_reflector_files_are_valid():
    from pathlib import Path

    from sipkit.reflector.config import ReflectorConfig

    probes = Path(__file__).resolve().parents[2] / "probes"
    cfg = ReflectorConfig.model_validate(yaml.safe_load((probes / "reflector.yaml").read_text()))
    assert cfg.listen_hostport == ("0.0.0.0", 8443) and cfg.limits.per_target_per_minute == 6
    book = TokenBook.load(probes / "reflector-tokens.yaml")
    assert book.find("example-only").name == "example-site"
    unit = (probes / "sipkit-reflector.service").read_text()
    assert "sipkit reflector serve --config /etc/sipkit/reflector.yaml" in unit


def _alg_rows():
    sent = _msg(SENT, audio_offer("192.168.1.20", 40000))
    arrived = _msg(SENT, audio_offer("198.51.100.7", 40000))
    key = ("udp", "INVITE")
    return ({key: {"data": sent, "local": "192.168.1.20:5062"}},
            {key: {"data": arrived, "source": "198.51.100.7:5062"}})


def test_sip_alg_verdict_fails_udp_sites_and_warns_tls_sites():
    sent, arrived = _alg_rows()
    udp = sip_alg.verdict(_ctx(), sent, arrived, {}, "https://r")
    assert udp.status == "fail" and "SDP c= 'c=IN IP4 192.168.1.20'" in udp.summary
    tls_site = load_site(None, {**SITE, "connection_type": "tls", "port": "5061"})
    tls = sip_alg.verdict(CheckContext.for_site(tls_site, RunOptions()), sent, arrived, {}, "r")
    assert tls.status == "warn"
    lost = sip_alg.verdict(_ctx(), sent, {}, {}, "r")
    assert lost.status == "fail" and "no SIP request reached" in lost.summary


def test_outside_reach_counts_a_challenged_register_when_options_are_ignored():
    from sipkit.checks.outside_reach import verdict

    data = {"dns": {"addresses": ["8.8.4.4"]}, "probed": [
        {"transport": "udp", "ip": "8.8.4.4", "port": 5060, "outcome": "answered",
         "options": {"outcome": "no_answer", "sends": 4},
         "register": {"status": 401, "outcome": "answered", "challenge": {"realm": "pbx"}}}]}
    r = verdict(_ctx(reflector="https://rfl.example.net"), data, "https://r")
    assert r.status == "pass" and "ignores OPTIONS but answers REGISTER" in r.summary
    assert "challenged (401, realm pbx)" in r.summary
    data["dns"]["addresses"] = ["203.0.113.10"]
    doc = verdict(_ctx(reflector="https://rfl.example.net"), data, "https://r")
    assert doc.status == "warn" and "203.0.113.10 (documentation-only" in doc.summary
