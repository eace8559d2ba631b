"""The trunk site file (kind: sip_trunk) and the endpoints both kinds become."""

from __future__ import annotations

import pytest
import yaml

from sipkit.errors import SettingsError
from sipkit.settings import Site, TrunkSite, load_site

TRUNK = {"kind": "sip_trunk", "name": "telnyx-main", "phone_number": "+12084439178",
         "gateway": "sip.telnyx.com", "username": "acct", "password": "Trunk-Secret-9"}


def load(tmp_path, data, **kw):
    p = tmp_path / "trunk.yaml"
    p.write_text(yaml.safe_dump(data))
    return load_site(p, **kw)


def problems(tmp_path, data) -> dict[str, str]:
    with pytest.raises(SettingsError) as exc:
        load(tmp_path, data)
    assert "Trunk-Secret-9" not in str(exc.value)
    return {p.field: p.problem for p in exc.value.problems}


def test_a_trunk_file_is_a_trunk_and_the_default_is_an_extension(tmp_path):
    t = load(tmp_path, TRUNK)
    assert isinstance(t, TrunkSite) and t.kind == "sip_trunk" and t.api == "mihu"
    site = load(tmp_path, {"agent_uuid": "3c90c3cc-0d44-4b50-8888-8dd25736052a",
                           "phone_number": "+12084439178", "registrar_server": "pbx.example.com",
                           "username_extension": "100", "pbx_password": "x",
                           "allowed_ip": "198.51.100.7"})
    assert isinstance(site, Site) and site.kind == "pbx_extension"
    assert "kind" not in site.api_body()


def test_gateway_without_port_leaves_it_to_rfc3263(tmp_path):
    (gw,) = load(tmp_path, TRUNK).endpoints()
    assert (gw.host, gw.port, gw.explicit_port, gw.effective_port) == \
        ("sip.telnyx.com", None, False, 5060)
    assert gw.role == "gateway" and gw.registers is None and gw.sip_domain == "sip.telnyx.com"
    assert gw.password.get_secret_value() == "Trunk-Secret-9"


def test_ports_and_the_secondary_gateway(tmp_path):
    t = load(tmp_path, {**TRUNK, "gateway": "sip.example.com:5080", "transport": "tls",
                        "secondary_gateway": "[2001:db8::5]:5081",
                        "check": {"registration": "required", "realm": "acct.example"}})
    gw, sec = t.endpoints()
    assert (gw.port, gw.transport, gw.default_port, gw.registers) == (5080, "tls", 5061, True)
    assert (sec.host, sec.port, sec.role) == ("2001:db8::5", 5081, "secondary_gateway")
    assert gw.sip_domain == "acct.example" and gw.display == "sip.example.com:5080"
    assert "Trunk-Secret-9" not in str(t.public_view())
    assert "password" not in t.public_view()


@pytest.mark.parametrize("change, field, words", [
    ({"gateway": "sip:carrier.example"}, "gateway", "without a scheme"),
    ({"gateway": "bad host!"}, "gateway", "host name"),
    ({"secondary_gateway": "x.example:99999"}, "secondary_gateway", "port"),
    ({"phone_number": "12084439178"}, "phone_number", "E.164"),
    ({"transport": "sctp"}, "transport", "udp"),
    ({"api": "twilio"}, "api", "mihu"),
])
def test_bad_fields_are_named(tmp_path, change, field, words):
    got = problems(tmp_path, {**TRUNK, **change})
    assert field in got and words in got[field], got


def test_rules_between_fields(tmp_path):
    got = problems(tmp_path, {k: v for k, v in TRUNK.items() if k != "password"})
    assert any("username and password" in p for p in got.values()), got
    got = problems(tmp_path, {**TRUNK, "api": "mihu_byo"})
    assert any("agent_uuid is required" in p for p in got.values()), got
    got = problems(tmp_path, {**TRUNK, "gateway": "sip.example.com:5080", "port": "5090"})
    assert any("gateway says port 5080 but port is 5090" in p for p in got.values()), got


def test_sip_trunks_api_needs_no_phone_number(tmp_path):
    t = load(tmp_path, {k: v for k, v in TRUNK.items() if k != "phone_number"}
             | {"api": "sip_trunks"})
    assert t.phone_number is None
