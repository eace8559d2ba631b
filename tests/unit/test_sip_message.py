"""The sans-IO SIP parser: well-formed input parses; anything else is SipParseError only."""

from __future__ import annotations

import pytest

from sipkit.sip.errors import SipParseError
from sipkit.sip.headers import COMPACT, Headers, split_list
from sipkit.sip.message import Request, Response, StreamParser, parse
from sipkit.sip.uri import parse_name_addr
from tests.sip_samples import INVITE_HEAD

INVITE = (INVITE_HEAD
          + b"l: 4\r\n\r\nv=0\r\nEXTRA")


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
        StreamParser().feed(b"SIP/2.0 200 OK\r\nVia: SIP/2.0/TCP h\r\nCall-ID: 1\r\n"
                            b"CSeq: 1 A\r\n\r\n")
    with pytest.raises(SipParseError):
        StreamParser(max_size=1000).feed(_resp(1, b"x" * 2000))
    with pytest.raises(SipParseError):
        StreamParser(max_size=100).feed(b"A" * 200)


def test_peek_response_agrees_with_parse():
    from sipkit.sip.message import peek_response

    for data in (_resp(5), b"SIP/2.0 404 Not Found\r\nv: SIP/2.0/UDP h:5;rport;branch=z9hG4bKab\r\n"
                 b"Call-ID: c\r\nCSeq: 1 OPTIONS\r\n\r\n"):
        msg = parse(data)
        assert peek_response(data) == (msg.status, msg.reason, msg.top_via.branch)
    assert peek_response(INVITE) is None  # a request
    assert peek_response(b"SIP/2.0 200 OK\r\nCall-ID: x\r\n\r\n") is None  # no Via branch
    assert peek_response(b"garbage") is None


# -- headers ------------------------------------------------------------------------------------

def test_every_compact_form_expands():
    expected = {"v": "Via", "f": "From", "t": "To", "i": "Call-ID", "m": "Contact",
                "l": "Content-Length", "c": "Content-Type", "k": "Supported", "s": "Subject",
                "e": "Content-Encoding", "o": "Event", "u": "Allow-Events", "r": "Refer-To",
                "b": "Referred-By", "x": "Session-Expires"}
    assert COMPACT == expected
    h = Headers([(k.upper() if n % 2 else k, f"value-{k}") for n, k in enumerate(expected)])
    assert [name for name, _ in h.items()] == list(expected.values())
    for short, full in expected.items():
        assert h.get(full) == h.get(short) == h.get(full.upper()) == f"value-{short}"


def test_headers_multidict_operations():
    h = Headers()
    h.add("route", "<sip:p1;lr>, <sip:p2;lr>")
    h.add("Route", "<sip:p3;lr>")
    h.add("X-Custom", " spaced ")
    assert "ROUTE" in h and "x-custom" in h and "Contact" not in h and 5 not in h
    assert h.get("Route") == "<sip:p1;lr>, <sip:p2;lr>"  # get: the first header, unsplit
    assert h.get_all("route") == ["<sip:p1;lr>", "<sip:p2;lr>", "<sip:p3;lr>"]
    assert h.get("X-Custom") == "spaced" and h.get("Missing", "dflt") == "dflt"
    h.set("route", "<sip:only>")
    assert h.get_all("Route") == ["<sip:only>"] and h.items()[-1] == ("Route", "<sip:only>")
    h.remove("x-CUSTOM")
    assert h.get("X-Custom") is None and len(h) == 1
    assert h.get_all("Nothing") == []


@pytest.mark.parametrize("name,value,count", [
    ("Via", "SIP/2.0/UDP a;branch=1, SIP/2.0/TCP b;branch=2", 2),
    ("Contact", '"Doe, John" <sip:j@h>;expires=5, <sip:k@h;p="a,b">', 2),
    ("Allow", "INVITE, ACK,OPTIONS", 3),
    ("Date", "Sat, 13 Nov 2010 23:29:00 GMT", 1),
    ("WWW-Authenticate", 'Digest realm="r", nonce="n", qop="auth,auth-int"', 1),
    ("Authorization", 'Digest username="u", realm="r", nonce="n", uri="sip:x", response="y"', 1),
    ("Proxy-Authenticate", 'Digest realm="r", nonce="n"', 1),
    ("Subject", "hello, world", 1),
])
def test_get_all_splits_only_list_headers(name, value, count):
    assert len(Headers([(name, value)]).get_all(name)) == count


def test_split_list_respects_quotes_and_brackets_and_escapes():
    assert split_list('"a, b" <sip:x@y>, <sip:z@w;p=1,2>') == ['"a, b" <sip:x@y>',
                                                              "<sip:z@w;p=1,2>"]
    assert split_list('"a \\" , b" <sip:x>, <sip:y>') == ['"a \\" , b" <sip:x>', "<sip:y>"]
    assert split_list(" , a ,, b , ") == ["a", "b"]


# -- messages ----------------------------------------------------------------------------------

def test_lf_only_line_endings_and_tab_folding():
    data = (b"OPTIONS sip:h SIP/2.0\nVia: SIP/2.0/UDP a;branch=z9hG4bK1\nCall-ID: x\n"
            b"CSeq: 7 options\nSubject: one\n\ttwo\n   three\n\n")
    msg = parse(data)
    assert msg.cseq == (7, "OPTIONS") and msg.headers.get("Subject") == "one two three"
    assert msg.body == b""


def test_body_without_content_length_is_the_rest_of_the_datagram():
    msg = parse(b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nCall-ID: 1\r\n"
                b"CSeq: 1 OPTIONS\r\n\r\nv=0\r\n")
    assert msg.body == b"v=0\r\n" and msg.reason == "OK"


def test_response_without_reason_and_request_to_bytes():
    r = parse(b"SIP/2.0 503\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nCall-ID: 1\r\n"
              b"CSeq: 1 OPTIONS\r\n\r\n")
    assert (r.status, r.reason) == (503, "")
    req = Request("MESSAGE", "sip:bob@h", Headers([("Via", "SIP/2.0/TCP a;branch=z9hG4bKq"),
                                                   ("Call-ID", "c"), ("CSeq", "3 MESSAGE"),
                                                   ("Content-Length", "999")]), b"hi there")
    wire = req.to_bytes()
    assert wire.startswith(b"MESSAGE sip:bob@h SIP/2.0\r\n") and wire.endswith(b"\r\n\r\nhi there")
    assert wire.count(b"Content-Length") == 1 and b"Content-Length: 8\r\n" in wire
    again = parse(wire)
    assert (again.method, again.uri, again.body, again.cseq) == ("MESSAGE", "sip:bob@h",
                                                                 b"hi there", (3, "MESSAGE"))
    assert again.top_via.branch == "z9hG4bKq" and again.call_id == "c"


@pytest.mark.parametrize("data", [
    # Unicode digits pass str.isdigit() but not int(): must still be the typed error
    "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h;branch=1\r\nCall-ID: 1\r\nCSeq: \u00b2 X\r\n\r\n",
    "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h;branch=1\r\nCall-ID: 1\r\nCSeq: 1 X\r\nl: \u0663\r\n\r\n",
    "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h;branch=1\r\nCall-ID: 1\r\nCSeq: 1 X\r\nl: 0\r\n"
    "l: 1\r\n\r\nx",
    "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h;branch=1\r\nCall-ID: 1\r\nCSeq: 1\r\n\r\n",
    "OPTIONS  sip:h SIP/2.0\r\nVia: SIP/2.0/UDP h\r\nCall-ID: 1\r\nCSeq: 1 OPTIONS\r\n\r\n",
    "OPTIONS sip:h SIP/1.0\r\nVia: SIP/2.0/UDP h\r\nCall-ID: 1\r\nCSeq: 1 OPTIONS\r\n\r\n",
    "SIP/2.0 200 OK\r\nBad Name: x\r\nVia: SIP/2.0/UDP h\r\nCall-ID: 1\r\nCSeq: 1 A\r\n\r\n",
])
def test_more_malformed(data):
    with pytest.raises(SipParseError):
        parse(data.encode())


def test_oversized_datagram():
    big = _resp(1, b"x" * (64 * 1024))
    with pytest.raises(SipParseError, match="over"):
        parse(big)


def test_stream_keepalives_byte_by_byte_and_raw_frames():
    stream = b"\r\n\r\n" + _resp(1) + b"\r\n" + _resp(2, b"hello") + b"\r\n\r\n" + _resp(3)
    p = StreamParser()
    out = []
    for i in range(len(stream)):
        out += p.feed(stream[i:i + 1])
    assert [m.cseq[0] for m in out] == [1, 2, 3] and p.buffered == 0
    p = StreamParser()
    p.add(stream)
    frames = []
    while (f := p.next_frame()) is not None:
        frames.append(f[0])
    assert frames == [_resp(1), _resp(2, b"hello"), _resp(3)]


def test_stream_partial_message_waits():
    p = StreamParser()
    data = _resp(9, b"0123456789")
    assert p.feed(data[:-1]) == [] and p.buffered == len(data) - 1
    assert [m.body for m in p.feed(data[-1:])] == [b"0123456789"]


@pytest.mark.parametrize("garbage", [
    b"\x16\x03\x01\x02\x00\x01",  # a TLS ClientHello on a TCP port
    b"HTTP/1.1 400 Bad Request\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\n",
    b"hello world\n",
])
def test_stream_garbage_is_caught_at_the_first_line(garbage):
    p = StreamParser()
    with pytest.raises(SipParseError):
        p.feed(garbage)
    assert p.discard() == garbage and p.buffered == 0
    assert [m.cseq[0] for m in p.feed(_resp(4))] == [4]  # framing restarts after discard


def test_stream_start_line_limit():
    p = StreamParser()
    with pytest.raises(SipParseError, match="start line"):
        p.feed(b"A" * 9000)
    assert StreamParser().feed(b"SIP/2.0 200 OK") == []  # a start line still coming


def test_stream_invalid_but_framed_message_is_dropped_alone():
    bad = b"SIP/2.0 200 OK\r\nCall-ID: 1\r\nContent-Length: 2\r\n\r\nab"  # no Via, no CSeq
    p = StreamParser()
    p.add(_resp(1) + bad + _resp(2))
    assert p.next_frame()[1].cseq[0] == 1
    with pytest.raises(SipParseError, match="Via"):
        p.next_frame()
    assert p.discard() == bad
    assert p.next_frame()[0] == _resp(2) and p.next_frame() is None


def test_sip_package_is_sans_io():
    """sip/ imports nothing of sipkit outside itself, and no I/O modules (DESIGN.md §4)."""
    import ast
    from pathlib import Path

    import sipkit.sip

    for path in Path(sipkit.sip.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                mods = [("." * node.level) + (node.module or "")]
            elif isinstance(node, ast.Import):
                mods = [a.name for a in node.names]
            else:
                continue
            for mod in mods:
                assert not mod.startswith(("..", "sipkit")), (path.name, mod)
                assert mod.split(".")[0] not in ("asyncio", "socket", "ssl", "selectors"), (
                    path.name, mod)


def test_line_breaks_cannot_be_smuggled():
    from sipkit.sip.errors import SipBuildError

    req = Request("OPTIONS", "sip:h", Headers([("Via", "SIP/2.0/UDP a;branch=z9hG4bK1"),
                                               ("Call-ID", "c"), ("CSeq", "1 OPTIONS"),
                                               ("From", "<sip:a@b>\r\nX-Evil: 1")]))
    with pytest.raises(SipBuildError):
        req.to_bytes()
    with pytest.raises(SipParseError, match="bare CR"):
        parse(b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h;branch=1\r\nCall-ID: 1\rX\r\n"
              b"CSeq: 1 A\r\n\r\n")
