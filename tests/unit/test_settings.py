"""Settings validation: every bad field gets one clear message naming it, no secret echoed."""

from __future__ import annotations

import pytest

from sipkit.errors import SettingsError
from sipkit.settings import load_site, parse_overrides

GOOD = {
    "agent_uuid": "3c90c3cc-0d44-4b50-8888-8dd25736052a",
    "phone_number": "+12084439178",
    "registrar_server": "pbx.example.com",
    "username_extension": "100",
    "pbx_password": "s3cret-Pa55",
    "allowed_ip": "198.51.100.7",
}
REQUIRED = list(GOOD)


def _write(tmp_path, data: dict, name="site.yaml"):
    import yaml

    p = tmp_path / name
    p.write_text(yaml.safe_dump(data))
    return p


def _problems(tmp_path, data, overrides=None, env=None):
    with pytest.raises(SettingsError) as exc:
        load_site(_write(tmp_path, data), overrides, env=env or {})
    return exc.value


def test_good_site_defaults(tmp_path):
    site = load_site(_write(tmp_path, GOOD), env={})
    assert (site.setup_mode, site.connection_type, site.port) == ("both", "udp", 5060)
    assert site.pbx_password.get_secret_value() == "s3cret-Pa55"
    assert "s3cret" not in repr(site) and "s3cret" not in str(site.public_view())
    assert site.api_body()["pbx_password"] == "s3cret-Pa55"
    assert "check" not in site.api_body()


@pytest.mark.parametrize("field", REQUIRED)
def test_each_required_field_missing(tmp_path, field):
    data = {k: v for k, v in GOOD.items() if k != field}
    err = _problems(tmp_path, data)
    assert [p.field for p in err.problems] == [field]
    assert "required" in err.problems[0].problem
    assert err.problems[0].fix


@pytest.mark.parametrize("field,value,expect", [
    ("setup_mode", "sideways", "'both', 'inbound' or 'outbound'"),
    ("connection_type", "tcp", "'udp' or 'tls'"),
    ("phone_number", "12084439178", "E.164"),
    ("phone_number", "+0123", "E.164"),
    ("allowed_ip", "300.1.1.1", "IP address"),
    ("allowed_ip", "10.0.0.0/8", "IP address"),
    ("allowed_ip", "pbx.example.com", "IP address"),
    ("port", "0", "greater than or equal to 1"),
    ("port", "70000", "less than or equal to 65535"),
    ("port", "fifty", "integer"),
    ("registrar_server", "sip:pbx.example.com", "scheme"),
    ("registrar_server", "pbx.example.com:5060", "port"),
    ("registrar_server", "bad_host!", "host name"),
    ("agent_uuid", "not-a-uuid", "UUID"),
    ("username_extension", "1 00", "user part"),
])
def test_bad_values(tmp_path, field, value, expect):
    err = _problems(tmp_path, {**GOOD, field: value})
    assert [p.field for p in err.problems] == [field]
    assert expect in err.problems[0].problem
    assert field in str(err) and "Fix:" in str(err)


def test_unset_env_var_names_field_and_variable(tmp_path):
    err = _problems(tmp_path, {**GOOD, "pbx_password": "${PBX_PASSWORD}"})
    assert err.problems[0].field == "pbx_password"
    assert "PBX_PASSWORD" in err.problems[0].problem


def test_env_var_expanded(tmp_path):
    site = load_site(_write(tmp_path, {**GOOD, "pbx_password": "${PW}"}), env={"PW": "from-env"})
    assert site.pbx_password.get_secret_value() == "from-env"


def test_password_never_echoed_in_errors(tmp_path):
    err = _problems(tmp_path, {**GOOD, "pbx_password": ["s3cret-Pa55"]})
    assert "s3cret" not in str(err)


def test_auth_pair_required_together(tmp_path):
    err = _problems(tmp_path, {**GOOD, "auth_username": "trunk"})
    assert "auth_password" in str(err)


def test_unknown_field(tmp_path):
    err = _problems(tmp_path, {**GOOD, "regsitrar": "x"})
    assert err.problems[0].field == "regsitrar"


def test_yaml_scalars_stay_strings(tmp_path):
    p = tmp_path / "site.yaml"
    text = "\n".join(f"{k}: {v}" for k, v in GOOD.items() if k != "username_extension")
    p.write_text(text + "\nusername_extension: 0100\nport: 5061\nconnection_type: tls\n")
    site = load_site(p, env={})
    assert site.username_extension == "0100"  # not octal 64
    assert site.phone_number == "+12084439178"  # unquoted, the + survives
    assert site.port == 5061


def test_json_site_and_overrides(tmp_path):
    import json

    p = tmp_path / "site.json"
    p.write_text(json.dumps({**GOOD, "username_extension": 100}))
    site = load_site(p, parse_overrides(["port=5061", "check.call_seconds=2", "auth_username=null"]),
                     env={})
    assert site.username_extension == "100" and site.port == 5061
    assert site.check.call_seconds == 2


def test_bad_override_syntax():
    with pytest.raises(SettingsError):
        parse_overrides(["port"])


def test_unreadable_and_malformed_files(tmp_path):
    with pytest.raises(SettingsError, match="cannot read"):
        load_site(tmp_path / "nope.yaml", env={})
    p = tmp_path / "bad.yaml"
    p.write_text("a: [unclosed\n")
    with pytest.raises(SettingsError, match="not valid YAML"):
        load_site(p, env={})
    p.write_text("- a list\n")
    with pytest.raises(SettingsError, match="mapping"):
        load_site(p, env={})


@pytest.mark.parametrize("name, text, words", [
    ("tab.yaml", "pbx_host: pbx\n\tport: 5060\n", "YAML: line 2, column 1: found character "
     "'\\t' that cannot start any token (YAML indents with spaces, never tabs)"),
    ("cut.yaml", "pbx_host: [a,\n", "YAML: line 2, column 1:"),
    ("comma.json", '{"pbx_host": "a",}', "JSON: line 1, column 18: Expecting property name"),
])
def test_syntax_errors_say_where(tmp_path, name, text, words):
    p = tmp_path / name
    p.write_text(text)
    with pytest.raises(SettingsError) as err:
        load_site(p, env={})
    assert words in str(err.value) and "Traceback" not in str(err.value)
