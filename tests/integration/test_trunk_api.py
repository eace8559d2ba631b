"""The three trunk APIs: client, ensure_trunk and `sipkit trunk` against the sandbox over real
HTTP on loopback (faults injected by the sandbox, never mocked)."""

from __future__ import annotations

import json

import pytest

from sipkit.mihu import errors
from sipkit.mihu.trunk_provision import ensure_trunk, provision_trunk, site_fields
from sipkit.settings import TrunkSite
from tests.integration.test_mihu import TOKEN, client, fault, sandbox  # noqa: F401

TRUNK_PW = "Trunk-Pa55-word-xyz"
AGENT = "3c90c3cc-0d44-4b50-8888-8dd25736052a"
AGENT2 = "5b1e2c3d-4e5f-4a6b-9c7d-8e9f0a1b2c3d"
POST_PATHS = {"mihu": "/api/v1/channels/sip-trunk/connections",
              "mihu_byo": "/api/v1/phone-numbers/trunks", "sip_trunks": "/api/v1/sip-trunks"}


def trunk(api: str = "mihu", **kw) -> TrunkSite:
    data = {"kind": "sip_trunk", "api": api, "name": "telnyx-main",
            "phone_number": "+12084439178", "gateway": "sip.telnyx.com",
            "username": "trunk-user", "password": TRUNK_PW, "agent_uuid": AGENT}
    data.update(kw)
    return TrunkSite(**{k: v for k, v in data.items() if v is not None})


def listed(c, api: str) -> list:
    if api == "mihu":
        return list(c.iter_trunk_connections())
    if api == "mihu_byo":
        return list(c.iter_byo_trunks())
    return c.list_sip_trunks()


def stored(server, table: str) -> str:
    """The sandbox's own rows, as text: what it keeps (passwords included)."""
    return json.dumps(server.sandbox.db.execute(f"select * from {table}").fetchall())


@pytest.mark.parametrize("api", ["mihu", "mihu_byo", "sip_trunks"])
def test_create_twice_makes_one_trunk(sandbox, api):  # noqa: F811
    url, _ = sandbox
    with client(url) as c:
        first, action1, _ = ensure_trunk(c, trunk(api))
        again, action2, notes = ensure_trunk(c, trunk(api))
        assert type(again) is type(first)
        assert (action1, action2) == ("created", "exists")
        assert len(listed(c, api)) == 1
        assert any("not compared" in n and "password" in n for n in notes)


@pytest.mark.parametrize("api", ["mihu", "mihu_byo", "sip_trunks"])
def test_lost_response_create_makes_one_trunk(sandbox, api):  # noqa: F811
    url, _ = sandbox
    # The sandbox commits the trunk, then closes the connection without an answer.
    fault(url, method="POST", path_prefix=POST_PATHS[api], drop_after_commit=True)
    with client(url) as c:
        _, action, _ = ensure_trunk(c, trunk(api))
        assert action == "created"
        assert len(listed(c, api)) == 1  # found by its key, not POSTed again
        assert ensure_trunk(c, trunk(api))[1] == "exists"
        assert len(listed(c, api)) == 1


@pytest.mark.parametrize("api", ["mihu", "sip_trunks"])
def test_post_5xx_is_not_retried_blindly(sandbox, api):  # noqa: F811
    url, _ = sandbox
    fault(url, method="POST", path_prefix=POST_PATHS[api], status=503, times=1)
    with client(url) as c:
        with pytest.raises(errors.ServerError) as exc:
            ensure_trunk(c, trunk(api))
        assert exc.value.exit_code == 4
        # One POST (the 503); a blind retry would have created the trunk with the next one.
        assert listed(c, api) == []


def test_list_is_retried_on_429_with_retry_after(sandbox):  # noqa: F811
    url, _ = sandbox
    fault(url, method="GET", path_prefix=POST_PATHS["mihu"], status=429, retry_after=1)
    with client(url) as c:
        assert c.list_trunk_connections().items == []


def test_mihu_connection_differs_replace_assign_delete(sandbox):  # noqa: F811
    url, server = sandbox
    with client(url) as c:
        conn, _, _ = ensure_trunk(c, trunk())
        with pytest.raises(errors.TrunkDiffers) as exc:
            ensure_trunk(c, trunk(gateway="sip2.telnyx.com", secondary_gateway="sip3.telnyx.com"))
        assert set(exc.value.differences) == {"gateway", "secondary_gateway"}
        assert exc.value.exit_code == 1 and "--replace" in str(exc.value)
        new, action, _ = ensure_trunk(c, trunk(gateway="sip2.telnyx.com"), replace=True)
        assert action == "replaced" and new.uuid != conn.uuid and new.gateway == "sip2.telnyx.com"
        assert [t.uuid for t in listed(c, "mihu")] == [new.uuid]
        assert c.get_trunk_connection(new.uuid).name == "telnyx-main"

        done = c.assign_trunk_connection(AGENT, new.uuid)
        assert (done.agent_uuid, done.phone_number) == (AGENT, "+12084439178")
        assert c.assign_trunk_connection(AGENT, new.uuid).connection_uuid == new.uuid  # again
        with pytest.raises(errors.ConflictError) as exc:  # another agent, same number
            c.assign_trunk_connection(AGENT2, new.uuid)
        assert exc.value.code == "phone_in_use" and exc.value.exit_code == 1
        assert "--force" in str(exc.value)
        assert c.assign_trunk_connection(AGENT2, new.uuid, force=True).agent_uuid == AGENT2

        c.delete_trunk_connection(new.uuid)
        assert listed(c, "mihu") == []
        assert "[]" == stored(server, "trunk_assignments")  # assignments went with it
        with pytest.raises(errors.NotFoundError) as exc:
            c.delete_trunk_connection(new.uuid)
        assert "sipkit trunk list" in str(exc.value)
        with pytest.raises(errors.ValidationError) as exc:
            c.assign_trunk_connection(AGENT, new.uuid)
        assert exc.value.field == "connection_uuid"


def test_byo_trunk_keyed_by_number_and_channel(sandbox):  # noqa: F811
    url, server = sandbox
    with client(url) as c:
        made, _, _ = ensure_trunk(c, trunk("mihu_byo"))
        assert made.binding("call").agent_uuid == AGENT
        with pytest.raises(errors.ConflictError):  # the API itself refuses a second binding
            c.create_byo_trunk({"phone_number": "+12084439178", "agent_uuid": AGENT2,
                                "channel": "call"})
        with pytest.raises(errors.TrunkDiffers) as exc:
            ensure_trunk(c, trunk("mihu_byo", agent_uuid=AGENT2))
        assert set(exc.value.differences) == {"agent_uuid"}
        # --replace updates in place: PATCH the SIP settings, PUT the agent; same number.
        moved, action, _ = ensure_trunk(
            c, trunk("mihu_byo", agent_uuid=AGENT2, gateway="sip9.telnyx.com:5080"),
            replace=True)
        assert action == "updated" and moved.binding("call").agent_uuid == AGENT2
        rows = stored(server, "byo_trunks")
        assert "sip9.telnyx.com" in rows and "5080" in rows and TRUNK_PW in rows  # kept
        for i in range(3):  # pagination over more numbers
            c.create_byo_trunk({"phone_number": f"+1208443900{i}", "agent_uuid":
                                f"00000000-0000-4000-8000-00000000000{i}", "channel": "call"})
        page = c.list_byo_trunks(per_page=2)
        assert page.pagination.total == 4 and page.pagination.has_more
        assert len(list(c.iter_byo_trunks())) == 4
        assert [t.number for t in c.iter_byo_trunks(phone_number="84439178")] == ["+12084439178"]
        c.delete_byo_trunk("12084439178", "call")  # the + is optional
        assert c.find_byo_trunk("+12084439178", "call") is None
        with pytest.raises(errors.NotFoundError):
            c.delete_byo_trunk("+12084439178", "call")


def test_sip_trunks_docs_shape(sandbox):  # noqa: F811
    url, server = sandbox
    assert server.sandbox.trunks.shape == "docs"
    with client(url) as c:
        made, _, _ = ensure_trunk(c, trunk("sip_trunks", gateway="sip.provider.com:5080"))
        raw = c._send("GET", f"/api/v1/sip-trunks/{made.id}", retry=True)
        assert set(raw) == {"sip_trunk"} and "host" in raw["sip_trunk"]
        got = c.get_sip_trunk(made.id)
        assert (got.host, got.port, got.username, got.transport) == (
            "sip.provider.com", 5080, "trunk-user", None)
        assert [t.id for t in c.list_sip_trunks()] == [made.id]


def test_sip_trunks_sdk_shape(sandbox):  # noqa: F811
    url, server = sandbox
    with client(url) as c:
        made, _, _ = ensure_trunk(c, trunk("sip_trunks", gateway="sip.provider.com:5080"))
        server.sandbox.trunks.shape = "sdk"  # the newer SDK's answers: address, auth_username
        raw = c._send("GET", f"/api/v1/sip-trunks/{made.id}", retry=True)
        assert set(raw) == {"trunk"} and raw["trunk"]["address"] == "sip.provider.com:5080"
        assert "host" not in raw["trunk"] and "username" not in raw["trunk"]
        got = c.get_sip_trunk(made.id)
        assert (got.host, got.port, got.username, got.transport, got.is_active) == (
            "sip.provider.com", 5080, "trunk-user", "udp", True)
        # Read in either shape, the same trunk is the same trunk ...
        assert ensure_trunk(c, trunk("sip_trunks", gateway="sip.provider.com:5080"))[1] == "exists"
        # ... and the SDK's transport is compared where the docs' shape cannot say.
        with pytest.raises(errors.TrunkDiffers) as exc:
            ensure_trunk(c, trunk("sip_trunks", gateway="sip.provider.com:5080", transport="tls"))
        assert set(exc.value.differences) == {"transport"}
        # An SDK-shaped create is accepted too, and read back.
        sdk = c.create_sip_trunk({"name": "sdk-made", "provider": "telnyx",
                                  "address": "[2001:db8::1]:5062", "auth_username": "u2",
                                  "auth_password": "pw-sdk-xyz"})
        assert (sdk.host, sdk.port, sdk.username) == ("2001:db8::1", 5062, "u2")
        c.delete_sip_trunk(sdk.id)  # SDK: 200 {"success": true}; docs: 204
        server.sandbox.trunks.shape = "docs"
        c.delete_sip_trunk(made.id)
        assert c.list_sip_trunks() == []


def test_422_names_the_field(sandbox):  # noqa: F811
    url, _ = sandbox
    with client(url) as c:
        with pytest.raises(errors.ValidationError) as exc:
            c.create_trunk_connection({"name": "x", "phone_number": "+12084439178",
                                       "gateway": "sip:sip.telnyx.com", "username": "u",
                                       "password": TRUNK_PW})
        assert exc.value.field == "gateway" and exc.value.exit_code == 2
        assert "`gateway`" in str(exc.value)
        # A BYO error names the API's field (sip.port); sipkit says the trunk file's one.
        with pytest.raises(errors.ValidationError) as exc:
            c.create_byo_trunk({"phone_number": "+12084439178", "agent_uuid": AGENT,
                                "channel": "call", "sip": {"gateway": "sip.x.com", "port": 0}})
        assert exc.value.field == "sip.port"
        mapped = site_fields(exc.value)
        assert mapped.field == "port" and "`port` in the trunk file" in str(mapped)
        # The /sip-trunks API has its own error envelope ({error: {code, message, param}}).
        with pytest.raises(errors.ValidationError) as exc:
            provision_trunk(c, trunk("sip_trunks", username=None, password=None))
        assert exc.value.field == "username" and "username" in str(exc.value)
        with pytest.raises(errors.NotFoundError) as exc:
            c.get_sip_trunk("no-such-trunk")
        assert exc.value.code == "not_found"


def test_results_carry_no_secret(sandbox):  # noqa: F811
    url, server = sandbox
    with client(url) as c:
        results = {api: json.dumps([provision_trunk(c, trunk(api)), provision_trunk(
            c, trunk(api)), [t.model_dump() for t in listed(c, api)]]) for api in POST_PATHS}
    for out in results.values():
        assert TRUNK_PW not in out and TOKEN not in out
    assert "trunk-user" not in results["mihu"]  # a Mihu connection never returns its username
    # ... but the sandbox did receive and keep them (they were sent, just never returned).
    assert TRUNK_PW in stored(server, "trunk_connections")
    assert TRUNK_PW in stored(server, "sip_trunks")


def test_stalled_create_then_rerun_finds_the_one_trunk(sandbox):  # noqa: F811
    import time

    url, _ = sandbox
    # The sandbox sleeps past the client's timeout, then commits: sipkit's look-up comes too
    # early, so it reports the API as failing (exit 4); the re-run a script makes finds it.
    fault(url, method="POST", path_prefix=POST_PATHS["mihu"], stall_seconds=5)
    with client(url, timeout=0.5) as c:
        with pytest.raises(errors.TransportError) as exc:
            ensure_trunk(c, trunk())
        assert exc.value.exit_code == 4
    with client(url) as c:
        deadline = time.monotonic() + 30
        while not listed(c, "mihu") and time.monotonic() < deadline:
            time.sleep(0.1)
        assert ensure_trunk(c, trunk())[1] == "exists"
        assert len(listed(c, "mihu")) == 1
