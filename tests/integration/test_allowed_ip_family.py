"""allowed_ip across address families: the lab's IPv6 site (registrar and source_ip ::1) with
a SIP connector server at an IPv4 address is a verdict, not `error` ("ValueError: can not get
address information")."""

from __future__ import annotations

import asyncio
import json

import pytest

from sipkit.checks import allowed_ip
from sipkit.checks.base import CheckContext, RunOptions
from sipkit.lab.manager import ipv6_loopback
from sipkit.settings import Site
from tests.conftest import _prefix
from tests.fuzzing import site_data
from tests.peers import UdpPeer, reply

IP = f"{_prefix()}.80"
needs_v6 = pytest.mark.skipif(not ipv6_loopback(), reason="IPv6 is disabled here (::1 cannot "
                              "be bound)")


def _run(server_port: int, allowed: str) -> object:
    data = site_data("::1", 5060)
    data["allowed_ip"] = allowed
    data["check"].update(source_ip="::1", connector_server=f"{IP}:{server_port}")
    site = Site.model_validate(data)
    ctx = CheckContext.for_site(site, RunOptions(timeout=1.5, t1=0.05, source_ip="::1"))
    return asyncio.run(allowed_ip.run(ctx))


@needs_v6
def test_ipv6_site_and_ipv4_connector_server_is_a_verdict():
    with UdpPeer(IP, 0, lambda d: [reply(d, "200 OK")]) as server:
        result = _run(server.address[1], "::1")
    assert server.received, "no probe reached the IPv4 connector server"
    assert result.status == "fail", result.summary
    assert "allowed_ip ::1 is IPv6" in result.summary and "never sees" in result.summary
    assert "source_ip ::1 is IPv6" in result.details["source_family"]
    assert all("ip" in p for p in result.details["probes"])


@needs_v6
def test_the_measurement_from_another_family_is_never_a_plain_pass():
    with UdpPeer(IP, 0, lambda d: [reply(d, "200 OK")]) as server:
        seen = _run(server.address[1], "::1").details["seen_ips"][0]
        result = _run(server.address[1], seen)
    assert result.status == "warn", result.summary
    assert "= allowed_ip" in result.summary and "source_ip ::1 is IPv6" in result.summary


@pytest.mark.parametrize("source,server,picked", [
    ("::1", "192.0.2.1", None), ("192.0.2.7", "2001:db8::1", None),
    ("::ffff:192.0.2.7", "192.0.2.1", "::ffff:192.0.2.7"), ("::1", "::1", "::1"),
    (None, "192.0.2.1", None)])
def test_a_source_of_the_servers_family(source, server, picked):
    site = Site.model_validate(site_data("192.0.2.1", 5060))
    ctx = CheckContext.for_site(site, RunOptions(source_ip=source))
    probe_ctx, note = allowed_ip._source_for(ctx, server)
    assert probe_ctx.options.source_ip == picked
    assert (note is None) == (source == picked)


@pytest.mark.lab
@needs_v6
def test_the_labs_ipv6_site_with_its_ipv4_connector_server(lab, run_sipkit):
    """Issue 11 as reported: `site-ipv6.yaml` with the sandbox's server allocated (IPv4)."""
    env = lab.env()
    assert run_sipkit("server", "allocate", env=env).returncode == 0
    try:
        proc = run_sipkit("check", "-c", str(lab.ipv6_site_file), "--only", "allowed_ip",
                          "--json", env=env)
    finally:
        run_sipkit("server", "release", env=env)
    assert proc.returncode == 1, (proc.returncode, proc.stdout[-1500:], proc.stderr[-500:])
    a = {c["id"]: c for c in json.loads(proc.stdout)["checks"]}["allowed_ip"]
    assert a["status"] == "fail", a
    assert "allowed_ip ::1 is IPv6" in a["summary"] and a["details"]["source_family"]
