"""The sandbox's calls endpoint and the client's call methods, over real HTTP."""

from __future__ import annotations

import pytest


def test_sandbox_calls_endpoint_refuses_clearly(tmp_path):
    """The calls endpoint over real HTTP, without a cloud behind: validation, 404, 503."""
    import threading

    from sipkit.lab.sandbox import make_server
    from sipkit.mihu.client import MihuClient
    from sipkit.mihu.errors import ApiError

    server = make_server(tmp_path / "api.db", "127.0.0.1", 0, {"tok-1"}, "192.0.2.2")
    threading.Thread(target=server.serve_forever, daemon=True).start()
    agent = "3c90c3cc-0d44-4b50-8888-8dd25736052a"
    try:
        with MihuClient(f"http://127.0.0.1:{server.server_address[1]}", "tok-1") as c:
            with pytest.raises(ApiError) as bad:
                c.place_call(agent, "12ab")
            assert bad.value.status == 422 and bad.value.field == "participant.number"
            with pytest.raises(ApiError) as none:
                c.place_call(agent, "200")
            assert none.value.status == 404  # no connector places calls for this agent
            c.allocate_server()
            c.create_connector({"agent_uuid": agent, "phone_number": "+12084439178",
                                "registrar_server": "192.0.2.1", "username_extension": "100",
                                "pbx_password": "pw-x", "allowed_ip": "192.0.2.1"})
            with pytest.raises(ApiError) as no_cloud:
                c.place_call(agent, "200")
            assert no_cloud.value.status == 503
            with pytest.raises(ApiError) as unknown:
                c.get_call("nope")
            assert unknown.value.status == 404
    finally:
        server.shutdown()
        server.server_close()
