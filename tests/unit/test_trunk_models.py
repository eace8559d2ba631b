"""The trunk layer's pure parts: both /sip-trunks shapes, error envelopes, request bodies and
what counts as the same trunk."""

from __future__ import annotations

import httpx
import pytest

from sipkit.mihu.client import MihuClient
from sipkit.mihu.errors import AuthError, ServerError, ValidationError
from sipkit.mihu.responses import parse
from sipkit.mihu.trunk_models import ByoTrunk, SipTrunk, TrunkConnection, unwrap_sip_trunk
from sipkit.mihu.trunk_provision import body, differences
from sipkit.settings import TrunkSite

PW = "Unit-trunk-pw-77"


def site(api="mihu", **kw) -> TrunkSite:
    data = {"kind": "sip_trunk", "api": api, "name": "main", "phone_number": "+12084439178",
            "gateway": "sip.example.com", "username": "u", "password": PW,
            "agent_uuid": "3c90c3cc-0d44-4b50-8888-8dd25736052a"}
    data.update(kw)
    return TrunkSite(**{k: v for k, v in data.items() if v is not None})


DOCS = {"sip_trunk": {"id": "t1", "name": "Main Trunk", "host": "sip.provider.com",
                      "port": 5060, "username": "myuser",
                      "created_at": "2025-12-13T10:00:00.000Z"}}
SDK = {"trunk": {"id": "t1", "org_id": "o", "name": "Main Trunk", "provider": "telnyx",
                 "address": "sip.provider.com:5080", "transport": "tls",
                 "auth_username": "myuser", "is_active": True,
                 "created_at": "2025-12-13T10:00:00.000Z", "updated_at": None}}


def test_docs_shape():
    t = SipTrunk.model_validate(unwrap_sip_trunk(DOCS))
    assert (t.host, t.port, t.username, t.transport) == ("sip.provider.com", 5060, "myuser", None)


def test_sdk_shape():
    t = SipTrunk.model_validate(unwrap_sip_trunk(SDK))
    assert (t.host, t.port, t.username, t.transport, t.provider, t.is_active) == (
        "sip.provider.com", 5080, "myuser", "tls", "telnyx", True)


@pytest.mark.parametrize("address, host, port", [
    ("sip.provider.com", "sip.provider.com", None), ("[2001:db8::1]:5062", "2001:db8::1", 5062),
    ("203.0.113.5:5070", "203.0.113.5", 5070), ("not a host:99999", "not a host:99999", None)])
def test_sdk_addresses(address, host, port):
    t = SipTrunk.model_validate({"id": "x", "name": "n", "address": address})
    assert (t.host, t.port) == (host, port)


def test_an_unexpected_answer_is_the_servers_fault():
    with pytest.raises(ServerError) as exc:
        parse(TrunkConnection, {"uuid": "x"})
    assert exc.value.exit_code == 4 and "TrunkConnection" in str(exc.value)


@pytest.mark.parametrize("status, payload, cls, field", [
    (401, {"error": "Unauthorized", "message": "Invalid API key"}, AuthError, None),
    (422, {"error": {"code": "validation_error", "message": "host is required",
                     "param": "host", "type": "invalid_request_error"}}, ValidationError, "host"),
    (422, {"success": False, "message": "The gateway field is required.",
           "error": {"code": "VALIDATION_ERROR", "details": "", "field": "gateway"}},
     ValidationError, "gateway"),
])
def test_every_error_envelope(status, payload, cls, field):
    err = MihuClient._error_for(httpx.Response(status, json=payload))
    assert type(err) is cls and err.field == field
    assert (payload.get("message") or payload["error"]["message"]) in str(err)


def test_bodies_per_api():
    mihu, notes = body(site(transport="tls", secondary_gateway="sip2.example.com"))
    assert mihu == {"name": "main", "phone_number": "+12084439178", "gateway": "sip.example.com",
                    "username": "u", "password": PW, "secondary_gateway": "sip2.example.com"}
    assert any("no transport field" in n for n in notes)
    assert any("no port field" in n for n in body(site(port=5080))[1])
    assert body(site(port=5060))[1] == []  # the default port needs no note
    byo, _ = body(site("mihu_byo", gateway="sip.example.com:5080"))
    assert byo["sip"] == {"gateway": "sip.example.com", "port": 5080, "username": "u",
                          "password": PW}
    assert (byo["channel"], byo["direction"]) == ("call", "both")
    docs, notes = body(site("sip_trunks", secondary_gateway="sip2.example.com"))
    assert docs == {"name": "main", "host": "sip.example.com", "port": 5060, "username": "u",
                    "password": PW}
    assert any("no secondary gateway" in n for n in notes)


def test_same_trunk_whatever_the_shape():
    s = site("sip_trunks", gateway="sip.provider.com:5080", username="myuser")
    sdk = SipTrunk.model_validate(unwrap_sip_trunk(SDK))
    assert differences(sdk, s) == {"transport": ("tls", "udp")}
    assert differences(sdk, site("sip_trunks", gateway="sip.provider.com:5080",
                                 username="myuser", transport="tls")) == {}
    docs = SipTrunk.model_validate(unwrap_sip_trunk(DOCS))
    assert differences(docs, site("sip_trunks", gateway="sip.provider.com",
                                  username="myuser")) == {}  # no transport to compare
    byo = ByoTrunk.model_validate({"number": "+12084439178", "bindings": {"call": {
        "bound": True, "agent_uuid": "3c90c3cc-0d44-4b50-8888-8dd25736052a"}}})
    assert differences(byo, site("mihu_byo")) == {}


def test_example_and_readme_trunk_files_load(tmp_path):
    import re
    from pathlib import Path

    from sipkit.settings import load_site

    root = Path(__file__).resolve().parents[2]
    env = {"TRUNK_PASSWORD": PW}
    for api in ("mihu", "mihu_byo", "sip_trunks"):
        loaded = load_site(root / "examples/trunk.yaml", {"api": api}, env=env)
        assert loaded.kind == "sip_trunk" and loaded.api == api
    section = (root / "README.md").read_text().split("## SIP trunks")[1].split("\n## ")[0]
    blocks = re.findall(r"```yaml\n(.*?)```", section, re.DOTALL)
    assert len(blocks) == 3
    for i, text in enumerate(blocks):
        path = tmp_path / f"readme-{i}.yaml"
        path.write_text(text)
        loaded = load_site(path, env=env)
        assert loaded.kind == "sip_trunk" and PW == loaded.password.get_secret_value()
        assert body(loaded)[0]  # and it makes a request body for its API
