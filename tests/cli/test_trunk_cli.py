"""`sipkit trunk` as scripts use it, in a subprocess against the sandbox over real HTTP; and,
with the lab carrier, `check --create` on a trunk and the README's trunk commands as pasted."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time

import pytest

from tests.conftest import ROOT, at_once
from tests.integration.test_mihu import TOKEN, sandbox  # noqa: F401
from tests.integration.test_trunk_api import AGENT2, TRUNK_PW

TRUNK_FILE = """kind: sip_trunk
api: {api}
name: telnyx-main
phone_number: "+12084439178"
gateway: sip.telnyx.com
secondary_gateway: sip2.telnyx.com
username: trunk-user
password: ${{TRUNK_PASSWORD}}
agent_uuid: 3c90c3cc-0d44-4b50-8888-8dd25736052a
"""


@pytest.fixture
def cli(sandbox, tmp_path, run_sipkit):  # noqa: F811
    url, _ = sandbox
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN)
    env = {"SIPKIT_API_URL": url, "SIPKIT_API_TOKEN_FILE": str(token_file),
           "SIPKIT_API_TOKEN": "", "TRUNK_PASSWORD": TRUNK_PW}
    outputs: list[str] = []

    def run(*args, extra_env=None):
        proc = run_sipkit(*args, env={**env, **(extra_env or {})})
        outputs.append(proc.stdout + proc.stderr)
        return proc

    def trunk_file(api="mihu", text=None):
        path = tmp_path / f"trunk-{api}-{len(outputs)}.yaml"
        path.write_text(text if text is not None else TRUNK_FILE.format(api=api))
        return str(path)

    yield run, trunk_file, env
    text = "\n".join(outputs)
    assert TRUNK_PW not in text and TOKEN not in text  # never, in any output of any test


def test_lifecycle_and_exit_codes(cli):
    run, trunk_file, _ = cli
    f = trunk_file()
    proc = run("trunk", "create", "-c", f, "--skip-checks", "--json")
    assert proc.returncode == 0, proc.stderr
    made = json.loads(proc.stdout)
    uuid = made["trunk"]["uuid"]
    assert made["action"] == "created" and made["id"] == uuid
    proc = run("trunk", "create", "-c", f, "--skip-checks")
    assert proc.returncode == 0 and "already exists" in proc.stdout and "not compared" in proc.stdout
    proc = run("trunk", "create", "-c", f, "--skip-checks", "--set", "gateway=sip9.telnyx.com")
    assert proc.returncode == 1 and "gateway" in proc.stderr and "--replace" in proc.stderr
    listed = json.loads(run("trunk", "list", "--json").stdout)
    assert listed["pagination"]["total"] == 1 and listed["items"][0]["uuid"] == uuid
    assert json.loads(run("trunk", "get", "-c", f, "--json").stdout)["id"] == uuid
    assert uuid in run("trunk", "get", uuid).stdout

    assert run("trunk", "assign", "-c", f, "--json").returncode == 0
    proc = run("trunk", "assign", "-c", f, "--agent-uuid", AGENT2)
    assert proc.returncode == 1 and "phone_in_use" in proc.stderr and "--force" in proc.stderr
    proc = run("trunk", "assign", "-c", f, "--agent-uuid", AGENT2, "--force", "--json")
    assert proc.returncode == 0 and json.loads(proc.stdout)["agent_uuid"] == AGENT2

    assert run("trunk", "delete", "-c", f).returncode == 0
    proc = run("trunk", "delete", uuid)
    assert proc.returncode == 1 and "404" in proc.stderr and "Traceback" not in proc.stderr
    proc = run("trunk", "delete", "-c", f, "--missing-ok", "--json")
    assert proc.returncode == 0 and json.loads(proc.stdout)["result"] == "absent"


@pytest.mark.parametrize("api", ["mihu", "mihu_byo", "sip_trunks"])
def test_create_twice_makes_one_per_api(cli, api):
    run, trunk_file, _ = cli
    f = trunk_file(api)
    actions = [json.loads(run("trunk", "create", "-c", f, "--skip-checks", "--json").stdout)
               ["action"] for _ in range(2)]
    assert actions == ["created", "exists"]
    assert json.loads(run("trunk", "list", "--api", api, "--json").stdout)[
        "pagination"]["total"] == 1
    proc = run("trunk", "get", "-c", f, "--json")
    assert proc.returncode == 0 and json.loads(proc.stdout)["api"] == api
    assert run("trunk", "delete", "-c", f).returncode == 0


def test_lost_response_create_via_cli(cli, sandbox):  # noqa: F811
    from tests.integration.test_mihu import fault

    run, trunk_file, _ = cli
    url, _ = sandbox
    fault(url, method="POST", path_prefix="/api/v1/channels/sip-trunk", drop_after_commit=True)
    proc = run("trunk", "create", "-c", trunk_file(), "--skip-checks", "--json")
    assert proc.returncode == 0 and json.loads(proc.stdout)["action"] == "created", proc.stderr
    assert json.loads(run("trunk", "list", "--json").stdout)["pagination"]["total"] == 1


def test_concurrent_creates_make_one_trunk(cli, sandbox):  # noqa: F811
    """An onboarding script's `xargs -P`: three creates of one trunk at once, one host."""
    from sipkit.mihu.endpoints import TRUNK_CONNECTIONS
    from tests.integration.test_mihu import fault

    run, trunk_file, env = cli
    url, _ = sandbox
    # The create stalls before the sandbox stores it: unguarded, every process would have
    # listed "none" by then and created its own.
    fault(url, method="POST", path_prefix=TRUNK_CONNECTIONS, stall_seconds=2, times=3)
    f = trunk_file()
    procs = at_once(*[("trunk", "create", "-c", f, "--skip-checks", "--json")] * 3, env=env)
    assert [p.returncode for p in procs] == [0, 0, 0], [p.stderr for p in procs]
    actions = sorted(json.loads(p.stdout)["action"] for p in procs)
    assert actions == ["created", "exists", "exists"]
    assert json.loads(run("trunk", "list", "--json").stdout)["pagination"]["total"] == 1
    text = "".join(p.stdout + p.stderr for p in procs)
    assert TRUNK_PW not in text and TOKEN not in text


def test_a_held_lock_is_waited_for_then_named(cli, sandbox, monkeypatch):  # noqa: F811
    from sipkit.mihu.client import MihuClient
    from sipkit.mihu.trunk_provision import lock
    from sipkit.settings import load_site

    run, trunk_file, _ = cli
    url, _ = sandbox
    f = trunk_file()
    monkeypatch.setenv("TRUNK_PASSWORD", TRUNK_PW)
    with MihuClient(url, TOKEN) as client, lock(client, load_site(f)):
        start = time.monotonic()
        proc = run("trunk", "create", "-c", f, "--skip-checks", "--timeout", "0.5")
        waited = time.monotonic() - start
    assert proc.returncode == 4 and "Traceback" not in proc.stderr, proc.stderr
    assert f"sipkit process {os.getpid()}" in proc.stderr and "Fix:" in proc.stderr
    assert "phone_number +12084439178" in proc.stderr
    assert 2 <= waited < 15  # four request timeouts, then the error
    assert json.loads(run("trunk", "list", "--json").stdout)["pagination"]["total"] == 0


def test_an_unusable_state_dir_creates_nothing(cli, tmp_path):
    run, trunk_file, _ = cli
    (tmp_path / "a-file").write_text("")
    proc = run("trunk", "create", "-c", trunk_file(), "--skip-checks",
               extra_env={"SIPKIT_STATE_DIR": str(tmp_path / "a-file" / "state")})
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert "SIPKIT_STATE_DIR" in proc.stderr and "create lock" in proc.stderr
    assert json.loads(run("trunk", "list", "--json").stdout)["pagination"]["total"] == 0


@pytest.mark.parametrize("body, field", [
    (TRUNK_FILE.format(api="mihu").replace("gateway: sip.telnyx.com\n", ""), "gateway"),
    (TRUNK_FILE.format(api="carrier"), "api"),
    (TRUNK_FILE.format(api="mihu").replace('"+12084439178"', '"12345"'), "phone_number"),
    (TRUNK_FILE.format(api="mihu").replace("sip.telnyx.com", "sip:sip.telnyx.com"), "gateway"),
    (TRUNK_FILE.format(api="mihu").replace("kind: sip_trunk", "kind: pbx_extension"), "kind"),
    (TRUNK_FILE.format(api="mihu_byo").replace("agent_uuid:", "#"), "agent_uuid"),
    (TRUNK_FILE.format(api="mihu") + "port: 99999\n", "port"),
    (TRUNK_FILE.format(api="mihu") + "bogus: 1\n", "bogus"),
    ("kind: sip_trunk\n\tname: x\n", "(file)"),
])
def test_bad_trunk_file_exits_2_naming_the_field(cli, body, field):
    run, trunk_file, _ = cli
    proc = run("trunk", "create", "--config", trunk_file(text=body), "--skip-checks")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert f"  - {field}" in proc.stderr and "Fix:" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr


def test_pbx_site_file_is_refused_by_trunk_and_trunk_file_by_connector(cli, tmp_path):
    run, trunk_file, _ = cli
    site = tmp_path / "site.yaml"
    site.write_text((ROOT / "examples/site.yaml").read_text())
    proc = run("trunk", "create", "-c", str(site), "--skip-checks",
               extra_env={"PBX_PASSWORD": "Pbx-pw-123"})
    assert proc.returncode == 2 and "kind" in proc.stderr and "sip_trunk" in proc.stderr
    proc = run("connector", "create", "-c", trunk_file(), "--skip-checks")
    assert proc.returncode == 2 and "kind" in proc.stderr and "Traceback" not in proc.stderr


def test_api_errors_say_the_field_and_exit_2(cli):
    run, trunk_file, _ = cli
    # The documented /sip-trunks API requires a username: its 422 names the file's field.
    text = TRUNK_FILE.format(api="sip_trunks").replace("username: trunk-user\n", "").replace(
        "password: ${TRUNK_PASSWORD}\n", "")
    proc = run("trunk", "create", "-c", trunk_file(text=text), "--skip-checks")
    assert proc.returncode == 2 and "422" in proc.stderr and "`username`" in proc.stderr
    proc = run("trunk", "assign", "-c", trunk_file("sip_trunks"))
    assert proc.returncode == 2 and "no assignment" in proc.stderr


def test_token_rules(cli, tmp_path):
    run, _, _ = cli
    # the token from the environment works; a wrong one is exit 2 and never echoed
    proc = run("trunk", "list", "--json", extra_env={"SIPKIT_API_TOKEN_FILE": "",
                                                     "SIPKIT_API_TOKEN": TOKEN})
    assert proc.returncode == 0, proc.stderr
    proc = run("trunk", "list", extra_env={"SIPKIT_API_TOKEN_FILE": "",
                                           "SIPKIT_API_TOKEN": "wrong-tok-987"})
    assert proc.returncode == 2 and "INVALID_AUTH_TOKEN" in proc.stderr
    assert "wrong-tok-987" not in proc.stdout + proc.stderr
    proc = run("trunk", "list", "--token", TOKEN)  # no such flag: a token never is one
    assert proc.returncode == 2 and "No such option" in proc.stderr
    proc = run("trunk", "list", extra_env={"SIPKIT_API_URL": "http://127.0.0.1:1"})
    assert proc.returncode == 4 and "cannot reach" in proc.stderr


# -- with the lab carrier -------------------------------------------------------------------

@pytest.mark.lab
def test_check_create_provisions_the_trunk(lab, cli):
    run, _, env = cli
    args = ("check", "-c", str(lab.trunk_file), "--create", "--api-url", env["SIPKIT_API_URL"],
            "--token-file", env["SIPKIT_API_TOKEN_FILE"])
    proc = run(*args, "--json")
    report = json.loads(proc.stdout)
    assert proc.returncode == 0, proc.stdout[-2000:]
    prov = report["provisioning"]
    assert prov["action"] == "created" and prov["api"] == "mihu"
    assert prov["trunk"]["gateway"] == lab.carrier_ip
    proc = run(*args)  # human report: the trunk line, "already existed"
    assert proc.returncode == 0 and "SIP trunk already existed" in proc.stdout, proc.stdout
    password = lab.carrier_password()
    assert password not in proc.stdout + proc.stderr
    assert run("trunk", "delete", "-c", str(lab.trunk_file)).returncode == 0


@pytest.mark.lab
def test_readme_trunk_commands_work_as_pasted(lab, tmp_path):
    text = (ROOT / "README.md").read_text()
    section = text.split("## SIP trunks")[1].split("\n## ")[0]
    block = re.findall(r"```sh\n(.*?)```", section, re.DOTALL)[0]
    assert ".venv/bin/sipkit trunk create" in block
    # The lab of this test session stands in for the default one; the venv is this Python.
    script = block.replace("~/.local/state/sipkit/lab", str(lab.directory)).replace(
        ".venv/bin/sipkit", f"{sys.executable} -m sipkit")
    env = {**os.environ, "SIPKIT_LAB_DIR": str(lab.directory), "SIPKIT_LAB_PREFIX": lab.prefix,
           "NO_COLOR": "1", "SIPKIT_API_TOKEN": ""}
    proc = subprocess.run(["bash", "-ex", "-c", script], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=240, check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    assert "already exists" in out and "SIP trunk created" in out
    assert lab.carrier_password() not in out


@pytest.mark.lab
def test_create_refused_when_a_check_fails(lab, cli, tmp_path):
    from tests.conftest import yaml_variant

    run, _, _ = cli
    wrong = yaml_variant(lab.trunk_file, tmp_path, password="Wrong-trunk-Pass-43")
    proc = run("trunk", "create", "-c", str(wrong))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "not creating the trunk" in proc.stderr and "credentials" in proc.stderr
    assert "Wrong-trunk-Pass-43" not in proc.stdout + proc.stderr
    assert json.loads(run("trunk", "list", "--json").stdout)["items"] == []  # nothing made


def test_byo_assign_get_and_delete_by_number(cli):
    run, trunk_file, _ = cli
    f = trunk_file("mihu_byo")
    assert run("trunk", "create", "-c", f, "--skip-checks").returncode == 0
    proc = run("trunk", "assign", "-c", f, "--agent-uuid", AGENT2, "--json")
    assert proc.returncode == 0, proc.stderr
    moved = json.loads(proc.stdout)["trunk"]["channels"]["call"]
    assert moved["agent_uuid"] == AGENT2 and moved["bound"] is True
    got = json.loads(run("trunk", "get", "+12084439178", "--api", "mihu_byo", "--json").stdout)
    assert got["id"] == "+12084439178"
    listed = json.loads(run("trunk", "list", "--api", "mihu_byo", "--all", "--json").stdout)
    assert [t["number"] for t in listed["items"]] == ["+12084439178"]
    proc = run("trunk", "get", "-c", f, "--api", "mihu")  # contradicts the file
    assert proc.returncode == 2 and "contradicts" in proc.stderr
    assert run("trunk", "delete", "+12084439178", "--api", "mihu_byo").returncode == 0
    proc = run("trunk", "get", "-c", f)
    assert proc.returncode == 1 and "404" in proc.stderr
