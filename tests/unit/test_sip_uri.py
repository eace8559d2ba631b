"""SIP URIs, name-addr values (From/To/Contact) and Via headers."""

from __future__ import annotations

import pytest

from sipkit.sip.errors import SipParseError
from sipkit.sip.uri import NameAddr, SipUri, parse_name_addr
from sipkit.sip.via import Via


def test_uri_all_parts():
    u = SipUri.parse("sips:alice:pw@pbx.example.com:5081;transport=tls;LR?subject=x&priority")
    assert (u.scheme, u.user, u.password, u.host, u.port) == (
        "sips", "alice", "pw", "pbx.example.com", 5081)
    assert u.params == {"transport": "tls", "lr": None}
    assert u.headers == {"subject": "x", "priority": None}
    assert SipUri.parse(str(u)) == u


def test_uri_positional_shape_and_keywords():
    assert SipUri("sip", "100", None, "h", 5060) == SipUri.parse("sip:100@h:5060")
    assert str(SipUri(host="2001:db8::1", port=5060)) == "sip:[2001:db8::1]:5060"


@pytest.mark.parametrize("text,host,port,user", [
    ("sip:pbx.example.com", "pbx.example.com", None, None),
    ("SIP:100@192.0.2.1:5060", "192.0.2.1", 5060, "100"),
    ("sip:[2001:db8::1]:5061;transport=tls", "2001:db8::1", 5061, None),
    ("sip:+4930123;phone-context=example.com@gw.example.com;user=phone", "gw.example.com", None,
     "+4930123;phone-context=example.com"),
    ("sip:u%40x@h_1.example", "h_1.example", None, "u%40x"),
])
def test_uri_forms(text, host, port, user):
    u = SipUri.parse(text)
    assert (u.host, u.port, u.user) == (host, port, user)
    assert SipUri.parse(str(u)) == u


def test_tel_uri():
    u = SipUri.parse("tel:+12084439178;phone-context=+1")
    assert (u.scheme, u.host, u.params) == ("tel", "+12084439178", {"phone-context": "+1"})


@pytest.mark.parametrize("bad", ["", "pbx.example.com", "http://x", "sip:", "sip:@h",
                                 "sip:h:0", "sip:h:70000", "sip:h:port", "sip:a b@h",
                                 "sip:u@[zz::1]", "sip:u@h:5060:1", "tel:"])
def test_bad_uris(bad):
    with pytest.raises(SipParseError):
        SipUri.parse(bad)


def test_name_addr_forms():
    na = parse_name_addr('"Alice \\"A\\" <boss>" <sip:alice@a.example;transport=tcp>'
                         ";tag=1928;expires=60")
    assert na.display == 'Alice "A" <boss>' and na.uri.params == {"transport": "tcp"}
    assert (na.tag, na.expires) == ("1928", 60)
    assert parse_name_addr(str(na)) == na
    plain = parse_name_addr("Bob <sip:bob@b.example>")
    assert plain.display == "Bob" and plain.tag is None and plain.expires is None
    bare = parse_name_addr("sip:100@h;tag=abc")  # bare form: the tag is a header param
    assert bare.tag == "abc" and "tag" not in bare.uri.params and bare.display is None
    assert isinstance(bare, NameAddr)
    assert parse_name_addr("<sip:h>;expires=soon").expires is None


@pytest.mark.parametrize("bad", ["*", '"unclosed <sip:a@b>', "<sip:a@b", '"x" sip:a@b',
                                 "<sip:a@b> junk", "<http://x>", ""])
def test_bad_name_addr(bad):
    with pytest.raises(SipParseError):
        parse_name_addr(bad)


def test_via_rport_received_branch_and_roundtrip():
    v = Via.parse("SIP/2.0/UDP [2001:db8::1]:5060;branch=z9hG4bKabc;rport=4321;"
                  "received=203.0.113.5")
    assert (v.transport, v.host, v.port, v.rport, v.received, v.branch) == (
        "UDP", "2001:db8::1", 5060, 4321, "203.0.113.5", "z9hG4bKabc")
    assert Via.parse(str(v)) == v
    flag = Via.parse("SIP/2.0/tls host.example ; branch=z9hG4bK1 ;rport")
    assert (flag.transport, flag.port, flag.rport, flag.received) == ("TLS", None, True, None)
    assert Via.parse("SIP / 2.0 / TCP h:5;branch=b").rport is None
    assert Via.parse("SIP/2.0/UDP h;rport=²").rport is None  # not an ASCII number


@pytest.mark.parametrize("bad", ["", "SIP/2.0 h", "SIP/3.0/UDP h", "SIP/2.0/UDP h:99999",
                                 "SIP/2.0/UDP h junk", "HTTP/1.1/UDP h"])
def test_bad_via(bad):
    with pytest.raises(SipParseError):
        Via.parse(bad)


def test_uri_errors_do_not_show_a_password():
    with pytest.raises(SipParseError) as err:
        SipUri.parse("sip:alice:hunter2@bad host:5060")
    assert "hunter2" not in str(err.value) and "alice:***@" in str(err.value)
