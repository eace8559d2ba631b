"""Requests built for the checks: the fields RFC 3261 §8.1.1 requires, and RFC 3581 rport."""

from __future__ import annotations

from sipkit.sip.builder import build_request, new_branch, new_call_id, new_tag
from sipkit.sip.message import Request, parse
from sipkit.sip.uri import parse_name_addr


def test_register_has_everything_and_parses_back():
    req = build_request("REGISTER", "sip:pbx.example.com", from_uri="sip:100@pbx.example.com",
                        to_uri="sip:100@pbx.example.com", call_id="c1@192.0.2.1", cseq=3,
                        via_host="192.0.2.1", via_port=5062, transport="udp",
                        contact="<sip:100@192.0.2.1:5062>", expires=60,
                        extra=[("Supported", "path")], user_agent="sipkit/9.9")
    again = parse(req.to_bytes())
    assert isinstance(again, Request) and (again.method, again.uri) == ("REGISTER",
                                                                        "sip:pbx.example.com")
    via = again.top_via
    assert (via.transport, via.host, via.port, via.rport) == ("UDP", "192.0.2.1", 5062, True)
    assert via.branch.startswith("z9hG4bK") and len(via.branch) > 12
    h = again.headers
    assert (h.get("Max-Forwards"), h.get("Expires"), h.get("User-Agent"), h.get("Supported")) == (
        "70", "60", "sipkit/9.9", "path")
    assert again.cseq == (3, "REGISTER") and again.call_id == "c1@192.0.2.1"
    frm, to = parse_name_addr(h.get("From")), parse_name_addr(h.get("To"))
    assert frm.tag and to.tag is None and str(frm.uri) == "sip:100@pbx.example.com"
    assert parse_name_addr(h.get("Contact")).uri.port == 5062


def test_ipv6_via_body_and_given_ids():
    req = build_request("MESSAGE", "sip:[2001:db8::9]", from_uri="sip:a@[2001:db8::1]",
                        to_uri="sip:b@[2001:db8::9]", call_id="x", cseq=1,
                        via_host="2001:db8::1", via_port=5060, transport="TCP",
                        branch="z9hG4bKfixed", from_tag="t1", body=b"hello",
                        content_type="text/plain", user_agent=None)
    wire = req.to_bytes()
    assert b"Via: SIP/2.0/TCP [2001:db8::1]:5060;branch=z9hG4bKfixed;rport\r\n" in wire
    assert b"Content-Type: text/plain" in wire and b"Content-Length: 5\r\n" in wire
    assert b"User-Agent" not in wire and wire.endswith(b"\r\n\r\nhello")
    assert parse_name_addr(parse(wire).headers.get("From")).tag == "t1"


def test_ids_are_random():
    assert len({new_branch() for _ in range(50)}) == 50
    assert len({new_tag() for _ in range(50)}) == 50
    cid = new_call_id("192.0.2.1")
    assert cid.endswith("@192.0.2.1") and cid != new_call_id("192.0.2.1")
