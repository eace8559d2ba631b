"""The register and tls verdicts that the lab's Kamailio cannot produce: 423 Min-Expires,
stale nonces, a SIP ALG, other devices on the extension, certificates near or before their
validity window. Scripted peers, real sockets, sipkit's real checks."""

from __future__ import annotations

import datetime as dt

import pytest

from tests.conftest import report_of
from tests.integration.test_checks_lab import NO_CALLS, checks, site_variant
from tests.peers import Registrar, TlsSipPeer, UdpPeer

pytestmark = pytest.mark.lab


def _register(lab, run_sipkit, tmp_path, ip):
    site = site_variant(lab, tmp_path, registrar_server=ip)
    return checks(report_of(run_sipkit("check", "-c", str(site), "--only", "register",
                                       "--json", "--set", f"check.source_ip={lab.pbx_ip}")))


def test_423_retries_once_with_min_expires(lab, run_sipkit, tmp_path):
    peer = Registrar("min_expires")
    with UdpPeer(lab.ip(40), 5060, peer):
        reg = _register(lab, run_sipkit, tmp_path, lab.ip(40))["register"]
    assert reg["status"] == "pass", reg
    assert reg["details"]["retried"] == "423: Min-Expires 3600"
    assert reg["details"]["granted_expires"] == 3600
    assert peer.expires_seen == ["60", "60", "3600", "0"]  # challenge, 423, retry, removal


def test_stale_nonce_is_answered_once(lab, run_sipkit, tmp_path):
    peer = Registrar("stale")
    with UdpPeer(lab.ip(41), 5060, peer):
        reg = _register(lab, run_sipkit, tmp_path, lab.ip(41))["register"]
    assert reg["status"] == "pass" and reg["details"]["retried"] == "stale nonce", reg


def test_alg_and_other_bindings_warn(lab, run_sipkit, tmp_path, no_connectors):
    with UdpPeer(lab.ip(42), 5060, Registrar("alg")):
        reg = _register(lab, run_sipkit, tmp_path, lab.ip(42))["register"]
    assert reg["status"] == "warn", reg
    signs = " ".join(reg["details"]["alg_signs"])
    assert "Via sent-by changed" in signs and "Contact rewritten" in signs
    assert reg["details"]["other_bindings"] == ["sip:100@192.0.2.50:5060"]
    assert "SIP ALG" in reg["summary"] and "disable the SIP ALG" in reg["hint"]
    assert "1 other registered device" in reg["summary"]


@pytest.mark.parametrize("days_from_now,span,status,words", [
    (5, None, "warn", "expires in"),                    # valid, but only 5 days left
    (400, 30, "fail", "not valid before"),              # issued for the future: clocks?
])
def test_tls_certificate_windows(lab, run_sipkit, tmp_path, days_from_now, span, status, words):
    from sipkit.lab.certs import make_server_cert

    now = dt.datetime.now(dt.timezone.utc)
    ip = lab.ip(43)
    before = now - dt.timedelta(days=1) if span is None else now + dt.timedelta(days=span)
    crt, key = make_server_cert(tmp_path, "edge", lab.directory / "certs" / "ca.crt",
                                lab.directory / "certs" / "ca.key", ["edge.sipkit.test"], [ip],
                                not_before=before,
                                not_after=now + dt.timedelta(days=days_from_now))
    with TlsSipPeer(ip, str(crt), str(key)) as peer:
        site = site_variant(lab, tmp_path, tls=True, registrar_server=ip,
                            port=peer.address[1])
        proc = run_sipkit("check", "-c", str(site), *NO_CALLS, "--only", "tls", "--json")
    tls = checks(report_of(proc))["tls"]
    assert tls["status"] == status and words in tls["summary"], tls
