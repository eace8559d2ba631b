"""register's reading of the registrar's Contacts: sipkit's own binding, the connector
server's (the cloud registers the extension once the connector exists) and other devices';
and the connector server lookup the checks share."""

from __future__ import annotations

import asyncio

from sipkit.checks.base import CheckContext, RunOptions, Target
from sipkit.checks.cloud import ServerLookup, connector_server
from sipkit.checks.register import bindings
from sipkit.settings import Site
from sipkit.sip.message import parse

TOKEN = "a1b2c3d4"
OURS = f"<sip:100@192.0.2.9:5062;transport=udp;sipkit={TOKEN}>;expires=60"
CLOUD = "<sip:100@203.0.113.5:40123;ob>;expires=118"
PHONE = "<sip:100@198.51.100.23:5060>;expires=3600"


def _ok(*contacts: str, expires: str | None = None):
    lines = ["SIP/2.0 200 OK", "Via: SIP/2.0/UDP 192.0.2.9:5062;branch=z9hG4bK1",
             "From: <sip:100@pbx>;tag=a", "To: <sip:100@pbx>;tag=b", "Call-ID: c1",
             "CSeq: 2 REGISTER", *(f"Contact: {c}" for c in contacts)]
    if expires is not None:
        lines.append(f"Expires: {expires}")
    return parse(("\r\n".join([*lines, "Content-Length: 0"]) + "\r\n\r\n").encode())


def _names(host: str, *addresses: str) -> frozenset[str]:
    target = Target(host=host, ip=(addresses or (host,))[0], port=5060, transport="udp")
    return ServerLookup(target, "api", addresses=addresses).names


def test_ours_the_connectors_and_another_device():
    found = bindings(_ok(OURS, CLOUD, PHONE), TOKEN, _names("203.0.113.5"))
    assert found.ours == f"sip:100@192.0.2.9:5062;transport=udp;sipkit={TOKEN}"
    assert found.ours_expires == 60
    assert found.connector == ["sip:100@203.0.113.5:40123;ob"]
    assert found.others == ["sip:100@198.51.100.23:5060"]


def test_without_the_connector_server_every_other_binding_is_a_device():
    found = bindings(_ok(OURS, CLOUD, PHONE), TOKEN)
    assert found.connector == []
    assert found.others == ["sip:100@203.0.113.5:40123;ob", "sip:100@198.51.100.23:5060"]


def test_a_server_name_matches_its_addresses_and_its_name_in_any_case():
    names = _names("SIP.connector.example", "203.0.113.5", "2001:db8::5")
    found = bindings(_ok(CLOUD, "<sip:100@[2001:DB8:0::5]:5060>", "<sip:100@sip.Connector.example>",
                         PHONE), TOKEN, names)
    assert found.connector == ["sip:100@203.0.113.5:40123;ob", "sip:100@[2001:DB8:0::5]:5060",
                               "sip:100@sip.Connector.example"]
    assert found.others == ["sip:100@198.51.100.23:5060"]


def test_the_registrars_received_parameter_names_the_source():
    # Kamailio's registrar (received_avp) adds where the REGISTER came from: a cloud behind NAT
    natted = '<sip:100@10.0.0.7:5060>;expires=118;received="sip:203.0.113.5:5060"'
    found = bindings(_ok(natted, PHONE), TOKEN, _names("203.0.113.5"))
    assert found.connector == ["sip:100@10.0.0.7:5060"]
    assert found.others == ["sip:100@198.51.100.23:5060"]


def test_a_device_on_another_port_of_another_host_is_not_the_connector():
    found = bindings(_ok("<sip:100@203.0.113.50:5060>", "<sip:203.0.113.5@198.51.100.1>"),
                     TOKEN, _names("203.0.113.5"))
    assert found.connector == [] and len(found.others) == 2


def test_an_unreadable_contact_stays_another_device_and_expires_defaults():
    found = bindings(_ok(f"<sip:100@192.0.2.9:5062;sipkit={TOKEN}>", "<sip:broken", expires="90"),
                     TOKEN, _names("203.0.113.5"))
    assert found.ours_expires == 90
    assert found.others == ["<sip:broken"]


def test_an_unknown_server_names_nothing():
    assert ServerLookup(None, "api", "no server yet").names == frozenset()


def test_the_lookup_is_shared_by_the_checks_of_a_run():
    site = Site(agent_uuid="3c90c3cc-0d44-4b50-8888-8dd25736052a", phone_number="+12084439178",
                registrar_server="pbx.example.com", username_extension="100",
                pbx_password="Sup3r-secret", allowed_ip="198.51.100.7",
                check={"connector_server": "203.0.113.5:5070"})

    async def twice():
        ctx = CheckContext.for_site(site, RunOptions())
        other = CheckContext.for_site(site, RunOptions(), facts=ctx.facts)
        return await connector_server(ctx), await connector_server(other)

    first, second = asyncio.run(twice())
    assert first is second
    assert first.target.hostport == "203.0.113.5:5070" and first.source == "site file"
    assert first.names == {"203.0.113.5"}
