"""The Mihu client and CLI against the sandbox, over real HTTP on loopback."""

from __future__ import annotations

import json
import os
import threading
import time

import httpx
import pytest

from sipkit.lab.sandbox import make_server
from sipkit.mihu import errors
from sipkit.mihu.client import MihuClient
from sipkit.mihu.provision import ensure_connector, ensure_server, provision
from sipkit.settings import Site

TOKEN = "tok_sandbox_S3CRET_123456"
PBX_PW = "Pbx-Pa55-word-xyz"
AUTH_PW = "Auth-Pa55-word-xyz"
SERVER_IP = "198.51.100.9"


@pytest.fixture
def sandbox(tmp_path):
    ip = f"127.0.{70 + os.getpid() % 10}.1"
    server = make_server(tmp_path / "api.db", ip, 0, {TOKEN}, SERVER_IP)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://{ip}:{server.server_address[1]}"
    yield url, server
    server.shutdown()
    server.server_close()


def client(url, token=TOKEN, **kw) -> MihuClient:
    kw.setdefault("backoff", 0.05)
    return MihuClient(url, token, **kw)


def site(**kw) -> Site:
    data = dict(agent_uuid="3c90c3cc-0d44-4b50-8888-8dd25736052a", phone_number="+12084439178",
                registrar_server="pbx.example.com", username_extension="100",
                pbx_password=PBX_PW, allowed_ip="198.51.100.7")
    data.update(kw)
    return Site(**data)


def fault(url, **spec):
    httpx.post(f"{url}/__sandbox__/faults", json=spec,
               headers={"Authorization": f"Bearer {TOKEN}"}).raise_for_status()


def test_full_lifecycle(sandbox):
    url, _ = sandbox
    with client(url) as c:
        assert c.get_server().assigned is False
        first, action1 = ensure_server(c)
        second, action2 = ensure_server(c)
        assert (action1, action2) == ("allocated", "existing")
        assert first.sip_connector_server == second.sip_connector_server == SERVER_IP
        assert c.allocate_server().sip_connector_server == SERVER_IP  # POST again: same one

        conn, action = ensure_connector(c, site())
        assert action == "created" and conn.sip_connector_server == SERVER_IP
        again, action = ensure_connector(c, site())
        assert action == "exists" and again.uuid == conn.uuid
        assert c.list_connectors().pagination.total == 1  # no duplicate

        with pytest.raises(errors.ConnectorDiffers) as exc:
            ensure_connector(c, site(port=5080, allowed_ip="198.51.100.8"))
        assert set(exc.value.differences) == {"port", "allowed_ip"}
        assert exc.value.exit_code == 1 and "--replace" in str(exc.value)
        replaced, action = ensure_connector(c, site(port=5080), replace=True)
        assert action == "replaced" and replaced.uuid != conn.uuid and replaced.pbx.port == 5080
        assert c.get_connector(replaced.uuid).pbx.port == 5080

        for i in range(4):  # more connectors, for filters and pages
            c.create_connector(site(phone_number=f"+1208443900{i}",
                                    agent_uuid="11111111-2222-3333-4444-55555555555" + str(i % 2)
                                    ).api_body())
        page = c.list_connectors(per_page=2, page=2)
        assert page.pagination.total == 5 and page.pagination.last_page == 3
        assert len(page.items) == 2 and page.pagination.has_more
        assert len(list(c.iter_connectors())) == 5
        assert [x.phone_number for x in c.list_connectors(phone_number="+12084439001").items] == [
            "+12084439001"]
        assert c.list_connectors(agent_uuid="11111111-2222-3333-4444-555555555551"
                                 ).pagination.total == 2
        assert c.list_connectors(status="active").pagination.total == 5
        assert c.list_connectors(status="inactive").pagination.total == 0

        with pytest.raises(errors.ConflictError) as exc:
            c.release_server()
        assert exc.value.status == 409 and "still use" in str(exc.value)
        for x in list(c.iter_connectors()):
            c.delete_connector(x.uuid)
        with pytest.raises(errors.NotFoundError):
            c.get_connector(replaced.uuid)
        assert c.release_server() is True
        assert c.release_server() is False  # nothing left: idempotent for scripts


@pytest.mark.parametrize("token,code", [("", "MISSING_AUTH_TOKEN"), ("nope", "INVALID_AUTH_TOKEN")])
def test_auth_errors(sandbox, token, code):
    url, _ = sandbox
    c = MihuClient(url, token)
    if not token:
        c._http.headers.pop("Authorization")
    with pytest.raises(errors.AuthError) as exc:
        c.get_server()
    assert exc.value.code == code and exc.value.exit_code == 2
    assert "SIPKIT_API_TOKEN" in str(exc.value)


def test_validation_and_state_errors(sandbox):
    url, _ = sandbox
    with client(url) as c:
        with pytest.raises(errors.ConflictError) as exc:  # no server allocated yet
            c.create_connector(site().api_body())
        assert exc.value.code == "NO_SIP_CONNECTOR_SERVER"
        c.allocate_server()
        body = site().api_body() | {"port": 70000}
        with pytest.raises(errors.ValidationError) as exc:
            c.create_connector(body)
        assert exc.value.field == "port" and "`port`" in str(exc.value) and exc.value.exit_code == 2
        with pytest.raises(errors.NotFoundError) as exc:
            c.get_connector("00000000-0000-0000-0000-000000000000")
        assert exc.value.exit_code == 1


def test_429_with_retry_after_is_waited_out(sandbox):
    url, _ = sandbox
    fault(url, method="GET", path_prefix="/api/v1/pbx_extension_connectors", status=429,
          retry_after=1, times=1)
    with client(url) as c:
        t0 = time.monotonic()
        assert c.get_server().assigned is False
        assert 0.9 < time.monotonic() - t0 < 5


def test_429_longer_than_budget_fails_fast(sandbox):
    url, _ = sandbox
    fault(url, method="GET", status=429, retry_after=600, times=1)
    with client(url, retry_budget=5) as c:
        t0 = time.monotonic()
        with pytest.raises(errors.RateLimitError) as exc:
            c.get_server()
    assert time.monotonic() - t0 < 2 and "600" in str(exc.value) and exc.value.exit_code == 4


def test_503_retried_then_ok(sandbox):
    url, _ = sandbox
    fault(url, method="GET", status=503, times=2)
    with client(url) as c:
        assert c.get_server().assigned is False


def test_stalled_server_times_out_cleanly(sandbox):
    url, _ = sandbox
    fault(url, method="GET", stall_seconds=3, times=5)
    with client(url, timeout=0.3, retries=1, retry_budget=1) as c:
        t0 = time.monotonic()
        with pytest.raises(errors.TransportError) as exc:
            c.get_server()
    assert time.monotonic() - t0 < 2.5 and "timed out" in str(exc.value)


def test_lost_create_response_is_not_duplicated(sandbox):
    url, _ = sandbox
    with client(url) as c:
        c.allocate_server()
        fault(url, method="POST", path_prefix="/api/v1/pbx_extension_connectors",
              drop_after_commit=True, times=1)
        conn = c.create_connector(site().api_body())  # the POST's answer never arrives
        assert conn.phone_number == "+12084439178"
        assert c.list_connectors().pagination.total == 1
        # and a re-run of the onboarding script finds it instead of creating another
        assert ensure_connector(c, site())[1] == "exists"
        assert c.list_connectors().pagination.total == 1


def test_post_5xx_is_not_retried(sandbox):
    url, server = sandbox
    with client(url) as c:
        c.allocate_server()
        fault(url, method="POST", path_prefix="/api/v1/pbx_extension_connectors/", status=500,
              times=0)  # placeholder that never matches the create path
        fault(url, method="POST", path_prefix="/api/v1/pbx_extension_connectors", status=500,
              times=1)
        with pytest.raises(errors.ServerError):
            c.create_connector(site().api_body())
        # one POST was answered 500; the next one goes through: no hidden retry consumed it
        assert c.create_connector(site().api_body()).phone_number == "+12084439178"


def test_passwords_never_returned(sandbox):
    url, server = sandbox
    h = {"Authorization": f"Bearer {TOKEN}"}
    with client(url) as c:
        c.allocate_server()
        conn = c.create_connector(site(auth_username="trunk", auth_password=AUTH_PW).api_body())
    raw = [httpx.get(f"{url}/api/v1/pbx_extension_connectors", headers=h).text,
           httpx.get(f"{url}/api/v1/pbx_extension_connectors/{conn.uuid}", headers=h).text]
    for text in raw:
        assert PBX_PW not in text and AUTH_PW not in text
    stored = server.sandbox.db.execute("select body from connectors").fetchone()[0]
    assert PBX_PW in stored  # stored, as the real API does, just never returned
    assert json.loads(raw[1])["data"]["auth"] == {"has_separate_credentials": True,
                                                  "username": "trunk"}


def test_provision_result_has_no_secret(sandbox):
    url, _ = sandbox
    with client(url) as c:
        out = json.dumps(provision(c, site(auth_username="u", auth_password=AUTH_PW)))
    assert PBX_PW not in out and AUTH_PW not in out and TOKEN not in out
    assert TOKEN not in repr(client(url))


# -- the CLI, as scripts use it ----------------------------------------------------------

@pytest.fixture
def cli_env(sandbox, tmp_path):
    url, _ = sandbox
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN)
    site_file = tmp_path / "site.yaml"
    site_file.write_text("\n".join(f"{k}: {json.dumps(v)}" for k, v in site().api_body().items()))
    return {"SIPKIT_API_URL": url, "SIPKIT_API_TOKEN_FILE": str(token_file)}, site_file


def test_cli_lifecycle_and_exit_codes(cli_env, run_sipkit):
    env, site_file = cli_env
    outputs = []

    def run(*args):
        proc = run_sipkit(*args, env=env)
        outputs.append(proc.stdout + proc.stderr)
        return proc

    assert run("server", "allocate", "--json").returncode == 0
    proc = run("connector", "create", "-c", str(site_file), "--skip-checks", "--json")
    assert proc.returncode == 0, proc.stderr
    created = json.loads(proc.stdout)
    uuid = created["connector"]["pbx_extension_connector_uuid"]
    assert created["action"] == "created"
    proc = run("connector", "create", "-c", str(site_file), "--skip-checks")
    assert proc.returncode == 0 and "already exists" in proc.stdout
    proc = run("connector", "create", "-c", str(site_file), "--skip-checks", "--set", "port=5080")
    assert proc.returncode == 1 and "port" in proc.stderr and "--replace" in proc.stderr
    assert json.loads(run("connector", "list", "--json").stdout)["pagination"]["total"] == 1
    assert run("connector", "get", uuid).returncode == 0
    proc = run("server", "release")
    assert proc.returncode == 1 and "409" in proc.stderr
    assert run("connector", "delete", uuid).returncode == 0
    proc = run("connector", "delete", uuid)
    assert proc.returncode == 1 and "404" in proc.stderr and "Traceback" not in proc.stderr
    assert run("connector", "delete", uuid, "--missing-ok").returncode == 0
    assert run("server", "release").returncode == 0
    text = "\n".join(outputs)
    assert TOKEN not in text and PBX_PW not in text


def test_cli_concurrent_connector_creates_make_one(cli_env, sandbox):
    """Two `connector create` at once, one host: one creates, the other waits and sees it
    (unguarded, the second's POST is refused 409 PHONE_NUMBER_IN_USE: exit 1)."""
    from sipkit.mihu.endpoints import CONNECTORS
    from tests.conftest import at_once

    env, site_file = cli_env
    url, _ = sandbox
    with client(url) as c:
        c.allocate_server()  # so the stall below catches only the connector's POST
    fault(url, method="POST", path_prefix=CONNECTORS, stall_seconds=2, times=2)
    procs = at_once(*[("connector", "create", "-c", str(site_file), "--skip-checks",
                       "--json")] * 2, env=env)
    assert [p.returncode for p in procs] == [0, 0], [p.stderr for p in procs]
    assert sorted(json.loads(p.stdout)["action"] for p in procs) == ["created", "exists"]
    with client(url) as c:
        assert c.list_connectors().pagination.total == 1
    text = "".join(p.stdout + p.stderr for p in procs)
    assert TOKEN not in text and PBX_PW not in text


def test_cli_concurrent_connector_creates_from_two_hosts_make_one(cli_env, sandbox, tmp_path):
    """Two hosts (two state directories: no shared lock) create at once: both find nothing,
    the second's POST is refused 409, and it reads the first's connector as "exists"."""
    from sipkit.mihu.endpoints import CONNECTORS
    from tests.conftest import at_once

    env, site_file = cli_env
    url, _ = sandbox
    with client(url) as c:
        c.allocate_server()
    fault(url, method="POST", path_prefix=CONNECTORS, stall_seconds=2, times=2)
    cmd = ("connector", "create", "-c", str(site_file), "--skip-checks", "--json")
    procs = at_once(cmd, cmd, env=env,
                    envs=[{"SIPKIT_STATE_DIR": str(tmp_path / host)} for host in ("a", "b")])
    assert [p.returncode for p in procs] == [0, 0], [p.stderr for p in procs]
    assert sorted(json.loads(p.stdout)["action"] for p in procs) == ["created", "exists"]
    with client(url) as c:
        assert c.list_connectors().pagination.total == 1


def test_cli_without_url_or_with_bad_token(cli_env, run_sipkit, tmp_path):
    env, _ = cli_env
    proc = run_sipkit("server", "show", env={"SIPKIT_API_URL": "", "SIPKIT_API_TOKEN_FILE": ""})
    assert proc.returncode == 2 and "SIPKIT_API_URL" in proc.stderr
    bad = tmp_path / "bad"
    bad.write_text("wrong-token")
    proc = run_sipkit("server", "show", env={**env, "SIPKIT_API_TOKEN_FILE": str(bad)})
    assert proc.returncode == 2 and "INVALID_AUTH_TOKEN" in proc.stderr
    assert "wrong-token" not in proc.stderr
    proc = run_sipkit("server", "show", env={**env, "SIPKIT_API_URL": "http://127.0.0.1:1"})
    assert proc.returncode == 4 and "cannot reach" in proc.stderr
