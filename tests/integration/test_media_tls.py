"""Test calls over TLS with registration, through a record-routing proxy: the session's lab
(Kamailio PBX with digest auth on TLS 5061, relaying to the echo UAS over UDP), calling from
the lab's host .10.

This is the path of research/lab.md's ACK assertion: an account bound to the TLS transport,
a proxy that record-routes, a far end on UDP. It must give two-way audio, and certificate
verification must be on unless asked off.
"""

from __future__ import annotations

import asyncio
import importlib.util
import shutil
from pathlib import Path

import pytest

from sipkit.media.call import run_call
from sipkit.media.model import CallParams

pytestmark = [
    pytest.mark.lab,
    pytest.mark.skipif(not (shutil.which("kamailio") and shutil.which("sipp")),
                       reason="needs kamailio and SIPp (Debian: kamailio kamailio-tls-modules "
                              "sip-tester)"),
    pytest.mark.skipif(not Path("/usr/lib/x86_64-linux-gnu/kamailio/modules/tls.so").exists(),
                       reason="needs kamailio-tls-modules"),
    pytest.mark.skipif(importlib.util.find_spec("pjsua2") is None,
                       reason="needs pjsua2 (pip install pjsua2-python)"),
]


@pytest.fixture(scope="module")
def tls_calls(lab):
    password = lab.passwords()["100"]
    pbx, local = lab.pbx_ip, lab.ip(10)
    base = {"target": f"sip:05321234567@{pbx}:5061", "transport": "tls", "local_ip": local,
            "registrar": f"sip:{pbx}:5061", "from_uri": f"sip:100@{pbx}",
            "username": "100", "password": password, "seconds": 1.5, "setup_timeout": 4}
    cases = {
        "verified": {"ca_file": str(lab.ca_file)},
        "unverified_ca": {},  # verification on by default, no CA for the lab's cert
        "insecure": {"verify_tls": False},
        "wrong_password": {"ca_file": str(lab.ca_file), "password": "Wrong-" + password},
    }

    async def run_all():
        results = await asyncio.gather(*(run_call(CallParams(**{**base, **kw}))
                                         for kw in cases.values()))
        return dict(zip(cases, results))

    results = asyncio.run(run_all())
    results["_password"], results["_local"] = password, local
    return results


def test_tls_registered_call_through_record_routing_proxy(tls_calls):
    r = tls_calls["verified"]
    assert r.status == "answered" and r.registration == 200, r
    assert r.two_way_audio and r.verdicts == [] and r.rx.loss == 0 and r.mos > 4.0
    assert r.codec == "PCMU/8000" and r.local_media.startswith(f"{tls_calls['_local']}:")


def test_tls_verification_is_on_by_default(tls_calls):
    r = tls_calls["unverified_ca"]
    assert r.status == "error" and "certificate" in r.error.lower()
    assert tls_calls["insecure"].status == "answered"


def test_wrong_password_over_tls(tls_calls):
    r = tls_calls["wrong_password"]
    assert r.status == "error" and r.registration in (401, 403) and r.tx.packets == 0


def test_no_password_in_any_result(tls_calls):
    pw = tls_calls["_password"]
    for name in ("verified", "unverified_ca", "insecure", "wrong_password"):
        assert pw not in tls_calls[name].model_dump_json()
