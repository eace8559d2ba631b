"""The sip/ layer's ASCII-digit rule, Via's rport, and peek_response agreeing with parse."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sipkit.sip.errors import SipParseError
from sipkit.sip.headers import Headers, leading_number, number
from sipkit.sip.message import Response, parse, peek_response
from sipkit.sip.via import Via


@pytest.mark.parametrize("value,expected", [
    ("60", 60), (" 60\t", 60), ("0", 0), ("0060", 60), ("4294967295", 4294967295),
    ("4294967296", None), ("99999999999", None), ("²", None), ("⁶⁰", None), ("５", None),
    ("٣", None), ("-1", None), ("+1", None), ("1e3", None), ("0x10", None), ("", None),
    ("6 0", None), (None, None), (60, None)])
def test_number_takes_ascii_digits_only(value, expected):
    assert number(value) == expected


@pytest.mark.parametrize("value,expected", [
    ("120", 120), ("120 (busy)", 120), ("120;duration=60", 120), ("120 (x);duration=1", 120),
    ("²", None), ("abc", None), ("", None), (None, None)])
def test_leading_number_reads_retry_after(value, expected):
    assert leading_number(value) == expected


def test_headers_get_int():
    h = Headers([("Expires", "⁶⁰"), ("Min-Expires", "3600"), ("Content-Length", "٣")])
    assert h.get_int("Expires") is None and h.get_int("Min-Expires") == 3600
    assert h.get_int("Min-Expires", maximum=60) is None and h.get_int("Retry-After") is None


@pytest.mark.parametrize("value", ["٣", "²", "9" * 11])
def test_content_length_in_unicode_digits_is_a_parse_error(value):
    with pytest.raises(SipParseError):
        parse(b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h;branch=z9\r\nCall-ID: c\r\n"
              b"CSeq: 1 OPTIONS\r\nContent-Length: " + value.encode() + b"\r\n\r\n")


@pytest.mark.parametrize("params,rport,port", [
    (";rport", True, None), (";rport=", True, None), (";rport=5060", 5060, 5060),
    (";rport=abc", None, None), (";rport=⁵⁰⁶⁰", None, None), (";rport=99999", 99999, None),
    (";rport=0", 0, None), ("", None, None)])
def test_rport_port_is_only_a_real_port(params, rport, port):
    via = Via.parse("SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK1" + params)
    assert via.rport == rport and via.rport_port == port


# -- peek_response ----------------------------------------------------------------------

def _msg(status: bytes, vias: list[bytes], extra: bytes = b"") -> bytes:
    return (status + b"\r\n" + b"".join(vias) + b"Call-ID: c\r\nCSeq: 1 OPTIONS\r\n" + extra
            + b"Content-Length: 0\r\n\r\n")


@pytest.mark.parametrize("data", [
    _msg(b"SIP/2.0 2001 OK", [b"Via: SIP/2.0/UDP h;branch=z9a\r\n"]),
    _msg(b"SIP/2.0 200OK", [b"Via: SIP/2.0/UDP h;branch=z9a\r\n"]),
    _msg(b"SIP/2.0 200 OK", [b"Via: SIP/2.0/UDP h\r\n", b"Via: SIP/2.0/UDP g;branch=z9b\r\n"]),
    _msg(b"SIP/2.0 200 OK", [b"Via: SIP/2.0/UDP h, SIP/2.0/UDP g;branch=z9b\r\n"]),
    _msg(b"SIP/2.0 200 OK", [b"Via: garbage;branch=z9b\r\n"]),
    _msg(b"SIP/2.0 200 OK", [b"Via: SIP/2.0/UDP h;\r\n branch=z9b\r\n"]),
    _msg(b"SIP/2.0 200 OK", [b"X-Via: SIP/2.0/UDP h;branch=z9b\r\n"]),
    b"SIP/2.0 200 OK\r\nCall-ID: c\r\n\r\nVia: SIP/2.0/UDP h;branch=z9b\r\n",  # in the body
])
def test_peek_response_refuses_what_parse_reads_otherwise(data):
    assert peek_response(data) is None


def test_peek_response_reads_the_plain_cases():
    assert peek_response(_msg(b"SIP/2.0 200 OK", [b"Via: SIP/2.0/UDP h;branch=z9a\r\n",
                                                  b"Via: SIP/2.0/UDP g;branch=z9b\r\n"])) == (
        200, "OK", "z9a")
    assert peek_response(_msg(b"SIP/2.0 486", [b"v: SIP/2.0/TCP h;branch=z9c;rport\r\n"])) == (
        486, "", "z9c")
    assert peek_response(_msg(b"SIP/2.0 200 OK", [b"VIA : SIP/2.0/UDP h;BRANCH=z9d\r\n"])) == (
        200, "OK", "z9d")


STATUS = st.sampled_from([b"SIP/2.0 200 OK", b"SIP/2.0 2001 OK", b"SIP/2.0 200", b"SIP/2.0 200 ",
                          b"SIP/2.0 180 Ringing", b"SIP/2.0 20 OK", b"SIP/2.0 200\tOK",
                          b"SIP/2.0 700 X", "SIP/2.0 ２００ OK".encode(), b"SIP/2.0 404 \xc3\xa9t\xc3\xa9",
                          b"SIP/2.0 200 O\xff", b"SIP/2.1 200 OK", b"OPTIONS sip:a SIP/2.0"])
VIA_NAME = st.sampled_from([b"Via", b"v", b"VIA", b"via ", b"X-Via", b"Vias"])
VIA_VALUE = st.sampled_from([b"SIP/2.0/UDP h;branch=z9a", b"SIP/2.0/UDP h", b"garbage",
                             b"SIP/2.0/UDP h;branch=z9a, SIP/2.0/UDP g;branch=z9b",
                             b"SIP/2.0/UDP g, SIP/2.0/UDP h;branch=z9b", b"SIP/2.0/UDP [::1",
                             b"SIP/2.0/UDP h;branch=", b"SIP/2.0/TCP h:99999;branch=z9c",
                             b"SIP/2.0/UDP h;branch=z9a\r\n ;rport", b"SIP/2.0/UDP h ;branch=z9e",
                             b'SIP/2.0/UDP h;x="a,b";branch=z9f', b"SIP/2.0/UDP h;rport;branch=Z"])
OTHER = st.sampled_from([b"", b"X-A: 1\r\n", b"Content-Length: 5\r\n", b"Bad Header\r\n",
                         b"Call-ID: d\r\n", b"X-B: \xff\r\n"])


@settings(max_examples=3000, deadline=None, suppress_health_check=list(HealthCheck))
@given(STATUS, st.lists(st.tuples(VIA_NAME, VIA_VALUE), max_size=3), OTHER,
       st.sampled_from([b"\r\n", b"\n"]))
def test_peek_response_agrees_with_parse(status, vias, other, eol):
    def message(extra: bytes) -> bytes:
        return (status + eol + b"".join(n + b": " + v + eol for n, v in vias) + extra
                + b"Call-ID: c" + eol + b"CSeq: 1 OPTIONS" + eol + eol)

    data, core = message(other), message(b"")
    peeked = peek_response(data)
    # Other headers are not the fast path's business (the full parser may still refuse a
    # bad Content-Length): they change nothing it reads.
    assert peeked == peek_response(core), data
    try:
        msg = parse(core)
        top = msg.top_via if isinstance(msg, Response) else None
    except SipParseError:
        msg = top = None
    if peeked is None:
        return  # the caller falls back to parse: nothing to agree on
    # What the fast path says, the full parser says too: never a 200 it does not see, never a
    # branch other than the top Via's.
    assert isinstance(msg, Response) and top is not None, data
    assert peeked == (msg.status, msg.reason, top.branch), data


# -- OwnResponsePeek: the fleet's reader of answers to its own requests ------------------

OWN_VIA = b"Via: SIP/2.0/UDP 192.0.2.1:40000;branch="
OWN_BRANCH = st.sampled_from([b"z9hG4bKab12", b"z9hG4bK", b"", b"z9hG4bK-x", b"Z9HG4BK1"])
OWN_TAIL = st.sampled_from([b"", b";rport=40000", b";rport=40000;received=198.51.100.7",
                            b";rport", b";branch=z9other", b";BRANCH=z9other", b";branch",
                            b";branchy=1", b";received=[2001:db8::1]", b';x="a,b"',
                            b", SIP/2.0/UDP 10.0.0.1;branch=z9next", b" ;rport", b";rport= 1",
                            b";\xff=1", b"\r\n ;folded=1", b"\r", b";rport=40000\r"])
OWN_HEAD = st.sampled_from([OWN_VIA, OWN_VIA.lower(), b"Via: SIP/2.0/UDP 192.0.2.1:40001;branch=",
                            b"v: SIP/2.0/UDP 192.0.2.1:40000;branch=", b"Via:SIP/2.0/UDP x;branch=",
                            b"X-" + OWN_VIA])
OWN_END = st.sampled_from([b"Call-ID: c\r\n\r\n", b"\r\n", b"Call-ID: c\r\n\n",
                           b"Call-ID: c\r\n", b"Content-Length: 2\r\n\r\nab", b" folded\r\n\r\n"])


@settings(max_examples=2000, deadline=None, suppress_health_check=list(HealthCheck))
@given(STATUS, st.sampled_from([b"\r\n", b"\n", b"\r"]), OWN_HEAD, OWN_BRANCH, OWN_TAIL,
       st.sampled_from([b"\r\n", b"\n"]), OWN_END,
       st.sampled_from([b"", b"Via: SIP/2.0/UDP 10.9.9.9;branch=z9hG4bKlower\r\n"]))
def test_own_response_peek_agrees_with_peek_response(status, eol, head, branch, tail, line_end,
                                                     end, lower_via):
    """Whatever the fast reader of the fleet says, the general one says too (as bytes); it
    is allowed to hand over, never to read differently."""
    from sipkit.sip.message import OwnResponsePeek

    data = status + eol + head + branch + tail + line_end + lower_via + end
    general = peek_response(data)
    expected = general and (general[0], general[1], general[2].encode())
    assert OwnResponsePeek(OWN_VIA)(data) == expected, data


def test_own_response_peek_reads_the_plain_answer_itself(monkeypatch):
    """The case the fleet sees thousands of times a second does not fall back."""
    from sipkit.sip import message
    from sipkit.sip.message import OwnResponsePeek

    monkeypatch.setattr(message, "peek_response", lambda data: pytest.fail("fell back"))
    peek = OwnResponsePeek(OWN_VIA)
    for tail in (b"", b";rport=40000;received=198.51.100.7"):
        data = (b"SIP/2.0 200 OK\r\n" + OWN_VIA + b"z9hG4bKab12" + tail + b"\r\nFrom: <sip:a@b>"
                b";tag=1\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n")
        assert peek(data) == (200, "OK", b"z9hG4bKab12")
    assert peek(b"SIP/2.0 486\r\n" + OWN_VIA + b"z9hG4bKab13\r\n\r\n") == (486, "", b"z9hG4bKab13")
