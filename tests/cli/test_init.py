"""`sipkit init`: a starter site file from flags, from prompts on a terminal (validated with the
loader's messages, the password read without echo into an env file), or from a connector."""

from __future__ import annotations

import json
import stat

import pytest

from sipkit.settings import load_site
from tests.terminal import PtyRun, answer, visible

UUID = "3c90c3cc-0d44-4b50-8888-8dd25736052a"
FLAGS = ("--agent-uuid", UUID, "--phone-number", "+12084439178", "--registrar-server",
         "pbx.example.com", "--username-extension", "100", "--allowed-ip", "198.51.100.7")


def test_flags_write_a_site_file_that_validates(tmp_path, run_sipkit):
    site = tmp_path / "site.yaml"
    proc = run_sipkit("init", str(site), *FLAGS, "--connection-type", "tls")
    assert proc.returncode == 0, proc.stderr
    loaded = load_site(site, env={"PBX_PASSWORD": "s3cret"})
    assert (loaded.connection_type, loaded.port, loaded.phone_number) == ("tls", 5061,
                                                                          "+12084439178")
    assert "${PBX_PASSWORD}" in site.read_text()
    assert stat.S_IMODE(site.stat().st_mode) == 0o600
    again = run_sipkit("init", str(site), *FLAGS)
    assert again.returncode == 2 and "--force" in again.stderr


def test_missing_and_bad_flags_get_the_loaders_messages(tmp_path, run_sipkit):
    proc = run_sipkit("init", str(tmp_path / "s.yaml"), "--phone-number", "123",
                      "--registrar-server", "http://pbx")
    assert proc.returncode == 2
    for words in ("agent_uuid: is required and missing", "phone_number: must be E.164",
                  "registrar_server: must be a bare host name", "allowed_ip: is required"):
        assert words in proc.stderr
    assert not (tmp_path / "s.yaml").exists()


def test_interactive_on_a_terminal(tmp_path):
    site, secret = tmp_path / "office.yaml", "Typed-Secret-42"
    run = PtyRun("init", str(site))
    answer(run, r"agent UUID", UUID)
    answer(run, r"Phone number", "2084439178")  # not E.164: the loader's message, asked again
    answer(run, r"must be E\.164.*\n.*Phone number", "+12084439178")
    answer(run, r"host name or IP", "pbx.example.com")
    answer(run, r"Transport", "")  # the default: udp
    answer(run, r"SIP port \[5060\]", "")
    answer(run, r"Extension", "100")
    answer(run, r"public source IP", "10.0.0.300")  # not an IP: asked again
    answer(run, r"must be one IP address.*\n.*public source IP", "198.51.100.7")
    answer(run, r"Calls", "")
    answer(run, r"password .*not shown", secret)
    assert run.wait(30) == 0, visible(run.output)
    out = visible(run.output)
    assert secret not in out  # read without echo
    assert "must be E.164" in out
    env_file = site.with_suffix(".env")
    assert secret not in site.read_text()
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    assert env_file.read_text().startswith("export PBX_PASSWORD=")
    loaded = load_site(site, env={"PBX_PASSWORD": secret})
    assert loaded.pbx_password.get_secret_value() == secret
    assert loaded.phone_number == "+12084439178" and loaded.port == 5060


@pytest.mark.lab
def test_from_connector(lab, run_sipkit, tmp_path):
    env = lab.env()
    made = json.loads(run_sipkit("connector", "create", "--config", str(lab.site_file),
                                 "--skip-checks", "--json", env=env).stdout)
    uuid = (made.get("connector") or made)["pbx_extension_connector_uuid"]
    site = tmp_path / "from-api.yaml"
    try:
        proc = run_sipkit("init", str(site), "--from-connector", uuid, "--no-input",
                          "--outbound-test-number", "5321234567", env=env)
    finally:  # leave the sandbox as other tests expect it
        run_sipkit("connector", "delete", uuid, "--missing-ok", env=env)
    assert proc.returncode == 0, proc.stderr
    mine = load_site(site, env={"PBX_PASSWORD": "x"})
    lab_site = load_site(lab.site_file)
    for field in ("agent_uuid", "phone_number", "registrar_server", "username_extension",
                  "allowed_ip", "port", "connection_type", "setup_mode", "normalizer"):
        assert getattr(mine, field) == getattr(lab_site, field), field
    bad = run_sipkit("init", str(tmp_path / "x.yaml"), "--from-connector",
                     "00000000-0000-4000-8000-000000000000", "--no-input", env=env)
    assert bad.returncode != 0 and "Traceback" not in bad.stderr
