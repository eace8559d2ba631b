"""Scripts: a bad site file gives a JSON error object on stdout with --json, and every field
problem is reported, even next to an unset ${VAR}."""

from __future__ import annotations

import json

import pytest

from sipkit.errors import SettingsError
from sipkit.settings import load_site

BAD = """agent_uuid: nope
phone_number: "+12084439178"
registrar_server: pbx.example.com
username_extension: "100"
pbx_password: ${SIPKIT_TEST_UNSET_PW}
allowed_ip: 10.0.0.300
"""


def test_one_unset_variable_does_not_hide_the_other_problems(tmp_path):
    path = tmp_path / "site.yaml"
    path.write_text(BAD)
    with pytest.raises(SettingsError) as err:
        load_site(path, env={})
    fields = [p.field for p in err.value.problems]
    assert fields == ["pbx_password", "agent_uuid", "allowed_ip"]
    assert "SIPKIT_TEST_UNSET_PW" in err.value.problems[0].problem
    # the empty stand-in for the unset variable is not reported a second time
    assert not any("empty" in p.problem for p in err.value.problems)


def test_an_override_replaces_an_unset_variable(tmp_path):
    path = tmp_path / "site.yaml"
    path.write_text(BAD.replace("nope", "3c90c3cc-0d44-4b50-8888-8dd25736052a")
                    .replace("10.0.0.300", "198.51.100.10"))
    site = load_site(path, {"pbx_password": "from-the-flag"}, env={})
    assert site.pbx_password.get_secret_value() == "from-the-flag"


def test_check_json_prints_the_field_errors_as_json(tmp_path, run_sipkit):
    path = tmp_path / "site.yaml"
    path.write_text(BAD)
    proc = run_sipkit("check", "-c", str(path), "--json", env={"SIPKIT_TEST_UNSET_PW": ""})
    assert proc.returncode == 2
    out = json.loads(proc.stdout)
    assert out["status"] == "error" and out["exit_code"] == 2
    assert [p["field"] for p in out["problems"]] == ["agent_uuid", "pbx_password", "allowed_ip"]
    assert all(p["fix"] for p in out["problems"])
    assert "agent_uuid" in proc.stderr  # people still read stderr
    none = run_sipkit("check", "--json")
    assert none.returncode == 2 and json.loads(none.stdout)["status"] == "error"
