"""The sans-IO SIP parser: well-formed input parses; anything else is SipParseError only."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sipkit.sip.headers import Headers, split_list
from sipkit.sip.message import Request, Response, StreamParser, parse
from sipkit.sip.errors import SipParseError
from sipkit.sip.uri import SipUri, parse_name_addr
from sipkit.sip.via import Via

INVITE = (b"INVITE sip:bob@biloxi.example.com SIP/2.0\r\n"
          b"v: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bKnashds8;rport,\r\n"
          b" SIP/2.0/TCP proxy.example.com:5061;branch=z9hG4bK77;received=192.0.2.4\r\n"
          b"Max-Forwards: 70\r\n"
          b"t: Bob <sip:bob@biloxi.example.com>\r\n"
          b'f: "Alice, A." <sip:alice@atlanta.example.com>;tag=1928301774\r\n'
          b"i: a84b4c76e66710@pc33.atlanta.example.com\r\n"
          b"CSeq: 314159 INVITE\r\n"
          b"m: <sip:alice@pc33.atlanta.example.com>, <sip:a2@192.0.2.9:5070;transport=tcp>\r\n"
          b"Subject: folded\r\n  across lines\r\n"
          b"c: application/sdp\r\n"
          b"l: 4\r\n\r\nv=0\r\nEXTRA")


def test_request_with_compact_folded_multi_headers():
    msg = parse(INVITE)
    assert isinstance(msg, Request) and msg.method == "INVITE"
    assert msg.call_id == "a84b4c76e66710@pc33.atlanta.example.com"
    assert msg.cseq == (314159, "INVITE")
    vias = msg.vias
    assert [v.transport for v in vias] == ["UDP", "TCP"]
    assert vias[0].rport is True and vias[1].received == "192.0.2.4" and vias[1].port == 5061
    assert msg.headers.get("Subject") == "folded across lines"
    contacts = msg.headers.get_all("Contact")
    assert len(contacts) == 2 and "transport=tcp" in contacts[1]
    assert parse_name_addr(msg.headers.get("From")).display == "Alice, A."
    assert msg.body == b"v=0\r"  # Content-Length bounds the body


def test_roundtrip_response():
    r = Response(401, "Unauthorized", Headers([("Via", "SIP/2.0/UDP h:5060;branch=z9hG4bK1"),
                                               ("Call-ID", "x"), ("CSeq", "2 REGISTER")]), b"")
    again = parse(r.to_bytes())
    assert isinstance(again, Response) and again.status == 401 and again.reason == "Unauthorized"
    assert again.headers.get("Content-Length") == "0"


def test_via_rport_value_and_ipv6():
    v = Via.parse("SIP/2.0/UDP [2001:db8::1]:5060;branch=z9hG4bKabc;rport=4321;received=203.0.113.5")
    assert (v.host, v.port, v.rport, v.received, v.branch) == ("2001:db8::1", 5060, 4321,
                                                              "203.0.113.5", "z9hG4bKabc")
    assert str(Via.parse(str(v))) == str(v)


def test_uri_parsing():
    u = SipUri.parse("sip:100@pbx.example.com:5080;transport=tls;sipkit=ab?subject=x")
    assert (u.user, u.host, u.port, u.params["transport"], u.params["sipkit"]) == (
        "100", "pbx.example.com", 5080, "tls", "ab")
    assert SipUri.parse(str(u)) == u
    na = parse_name_addr("sip:100@h;tag=abc")  # bare form: the tag is a header param
    assert na.tag == "abc" and "tag" not in na.uri.params


def test_split_list_respects_quotes_and_brackets():
    assert split_list('"a, b" <sip:x@y>, <sip:z@w;p=1,2>') == ['"a, b" <sip:x@y>', "<sip:z@w;p=1,2>"]


def test_auth_headers_are_not_split():
    h = Headers([("WWW-Authenticate", 'Digest realm="r", nonce="n", qop="auth,auth-int"')])
    assert len(h.get_all("WWW-Authenticate")) == 1


@pytest.mark.parametrize("data", [
    b"",
    b"garbage",
    b"INVITE sip:x SIP/2.0\r\n\r\n",  # no Via, Call-ID, CSeq
    b"SIP/2.0 99 Low\r\nVia: SIP/2.0/UDP h;branch=1\r\nCall-ID: 1\r\nCSeq: 1 X\r\n\r\n",
    b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h;branch=1\r\nCall-ID: 1\r\nCSeq: x X\r\n\r\n",
    b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h;branch=1\r\nCall-ID: 1\r\nCSeq: 1 X\r\nl: 9\r\n\r\nab",
    b"SIP/2.0 200 OK\r\n bad continuation\r\n\r\n",
    b"SIP/2.0 200 OK\r\nNoColonHere\r\n\r\n",
    b"\xff\xfe\xfd SIP/2.0\r\n\r\n",
    b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h;branch=1\r\nCall-ID: 1\r\nCSeq: 1 X\r\nl: -1\r\n\r\n",
])
def test_malformed_is_typed_error(data):
    with pytest.raises(SipParseError):
        parse(data)


def _resp(n: int, body: bytes = b"") -> bytes:
    return (f"SIP/2.0 200 OK\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK{n}\r\nCall-ID: c{n}\r\n"
            f"CSeq: {n} OPTIONS\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body


def test_stream_framing_many_per_segment_and_split():
    p = StreamParser()
    stream = b"\r\n\r\n" + _resp(1) + _resp(2, b"hello") + _resp(3)
    out = p.feed(stream[:30])
    out += p.feed(stream[30:77])
    out += p.feed(stream[77:])
    assert [m.cseq[0] for m in out] == [1, 2, 3] and out[1].body == b"hello"


def test_stream_requires_content_length_and_bounds_size():
    with pytest.raises(SipParseError):
        StreamParser().feed(b"SIP/2.0 200 OK\r\nVia: SIP/2.0/TCP h\r\nCall-ID: 1\r\nCSeq: 1 A\r\n\r\n")
    with pytest.raises(SipParseError):
        StreamParser(max_size=1000).feed(_resp(1, b"x" * 2000))
    with pytest.raises(SipParseError):
        StreamParser(max_size=100).feed(b"A" * 200)


# -- fuzz: random, truncated and mutated input only ever raises SipParseError -------------

VALID = [INVITE, _resp(7, b"body"), parse(INVITE).to_bytes()]


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=600))
def test_fuzz_random_bytes(data):
    try:
        parse(data)
    except SipParseError:
        pass
    try:
        StreamParser().feed(data)
    except SipParseError:
        pass


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(VALID), st.integers(0, 700), st.lists(
    st.tuples(st.integers(0, 700), st.binary(min_size=1, max_size=3)), max_size=4))
def test_fuzz_truncated_and_mutated(base, cut, mutations):
    data = bytearray(base[:cut] if cut < len(base) else base)
    for pos, chunk in mutations:
        if data:
            p = pos % len(data)
            data[p:p + len(chunk)] = chunk
    for fn in (parse, lambda d: StreamParser().feed(d)):
        try:
            msg = fn(bytes(data))
            # whatever parsed must also expose its fields without raising anything untyped
            for m in (msg if isinstance(msg, list) else [msg]):
                m.cseq, m.call_id  # noqa: B018
                try:
                    m.vias
                except SipParseError:
                    pass
        except SipParseError:
            pass


def test_peek_response_agrees_with_parse():
    from sipkit.sip.message import peek_response

    for data in (_resp(5), b"SIP/2.0 404 Not Found\r\nv: SIP/2.0/UDP h:5;rport;branch=z9hG4bKab\r\n"
                 b"Call-ID: c\r\nCSeq: 1 OPTIONS\r\n\r\n"):
        msg = parse(data)
        assert peek_response(data) == (msg.status, msg.reason, msg.top_via.branch)
    assert peek_response(INVITE) is None  # a request
    assert peek_response(b"SIP/2.0 200 OK\r\nCall-ID: x\r\n\r\n") is None  # no Via branch
    assert peek_response(b"garbage") is None
