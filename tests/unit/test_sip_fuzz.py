"""Property/fuzz tests: whatever bytes arrive, the sans-IO layer raises SipParseError (or, for
challenges, DigestError) and nothing else, and it does so quickly."""

from __future__ import annotations

import os
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sipkit.sip.digest import DigestError, parse_challenges, pick_strongest
from sipkit.sip.errors import SipParseError
from sipkit.sip.message import Request, Response, StreamParser, parse
from sipkit.sip.sdp import parse_sdp
from sipkit.sip.uri import SipUri, parse_name_addr
from sipkit.sip.via import Via
from tests.sip_samples import INVITE_HEAD

INVITE = (INVITE_HEAD
          + b"l: 57\r\n\r\n"
          b"v=0\r\nc=IN IP4 192.0.2.9\r\nm=audio 4000 RTP/AVP 0\r\na=sendrecv\r\n\r\n")
CHALLENGE = (b"SIP/2.0 401 Unauthorized\r\n"
             b"Via: SIP/2.0/UDP 192.0.2.9:5060;branch=z9hG4bK1;rport=5060;received=203.0.113.1\r\n"
             b"From: <sip:100@pbx>;tag=a\r\nTo: <sip:100@pbx>;tag=b\r\nCall-ID: x@y\r\n"
             b"CSeq: 2 REGISTER\r\n"
             b'WWW-Authenticate: Digest realm="pbx", nonce="abc", qop="auth,auth-int", '
             b"algorithm=SHA-256\r\n"
             b'WWW-Authenticate: Digest realm="pbx", nonce="abd", algorithm=MD5\r\n'
             b"Content-Length: 0\r\n\r\n")
OK = (b"SIP/2.0 200 OK\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK7\r\nCall-ID: c7\r\n"
      b"CSeq: 7 OPTIONS\r\nContact: <sip:a@b>;expires=60\r\nContent-Length: 4\r\n\r\nbody")
VALID = [INVITE, CHALLENGE, OK]

# Characters that matter to SIP's grammar, to reach past the first check more often than
# uniformly random bytes do.
SIPISH = st.sampled_from([b"\r\n", b"\r\n\r\n", b" ", b"\t", b":", b";", b",", b"=", b'"',
                          b"<", b">", b"@", b"[", b"]", b"/", b"\\", b"?", b"&", b"0", b"9",
                          b"99999999999", b"\xc2\xb2", b"\xff", b"SIP/2.0", b"branch=",
                          b"rport", b"v:", b"l: 5", b"Content-Length: ", b"CSeq: 1 X",
                          b"sip:", b"Digest ", b"\x00"])


def _exercise(msg) -> None:
    """Touch everything a check would read from a parsed message; only typed errors."""
    msg.call_id  # noqa: B018
    msg.cseq  # noqa: B018
    for name, _ in msg.headers.items():
        msg.headers.get_all(name)
    for call in (lambda: msg.vias, lambda: [(v.branch, v.received, v.rport) for v in msg.vias],
                 lambda: [parse_name_addr(v) for v in msg.headers.get_all("Contact")],
                 lambda: parse_name_addr(msg.headers.get("From") or ""),
                 lambda: parse_name_addr(msg.headers.get("To") or ""),
                 lambda: SipUri.parse(msg.uri) if isinstance(msg, Request) else None,
                 lambda: parse_sdp(msg.body).audio()):
        try:
            call()
        except SipParseError:
            pass
    if isinstance(msg, Response):
        try:
            pick_strongest(parse_challenges(msg))
        except DigestError:
            pass
    # whatever parsed serializes into something that parses back to the same essentials
    again = parse(msg.to_bytes())
    assert (again.cseq, again.call_id, again.body) == (msg.cseq, msg.call_id, msg.body)


def _all_ways(data: bytes, splits: list[int] | None = None) -> None:
    try:
        _exercise(parse(data))
    except SipParseError:
        pass
    p = StreamParser()
    cuts = sorted({min(c, len(data)) for c in (splits or [])} | {0, len(data)})
    try:
        for a, b in zip(cuts, cuts[1:]):
            for msg in p.feed(data[a:b]):
                _exercise(msg)
    except SipParseError:
        p.discard()


# SIPKIT_FUZZ_EXAMPLES=20000 for a long run; the default keeps the suite fast.
FUZZ = settings(max_examples=int(os.environ.get("SIPKIT_FUZZ_EXAMPLES", "300")), deadline=1000,
                suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(st.binary(max_size=800), st.lists(st.integers(0, 800), max_size=5))
def test_random_bytes(data, splits):
    _all_ways(data, splits)


@FUZZ
@given(st.lists(st.one_of(SIPISH, st.binary(max_size=6)), max_size=60))
def test_sip_shaped_noise(parts):
    _all_ways(b"".join(parts))


@FUZZ
@given(st.sampled_from(VALID), st.integers(0, 1000))
def test_truncations(base, cut):
    data = base[:cut]
    _all_ways(data, [cut // 2])
    if cut < len(base) - 1 and base is not INVITE:
        # a cut message never parses whole on a stream: it waits, or is garbage
        try:
            assert StreamParser().feed(data) == []
        except SipParseError:
            pass


@FUZZ
@given(st.sampled_from(VALID), st.lists(st.tuples(
    st.integers(0, 1000), st.integers(0, 4), st.one_of(SIPISH, st.binary(max_size=3))),
    min_size=1, max_size=6), st.lists(st.integers(0, 1000), max_size=4))
def test_mutations(base, mutations, splits):
    data = bytearray(base)
    for pos, delete, insert in mutations:
        p = pos % (len(data) + 1)
        data[p:p + delete] = insert
    _all_ways(bytes(data), splits)


@FUZZ
@given(st.text(max_size=200))
def test_field_parsers_on_random_text(text):
    for fn in (SipUri.parse, parse_name_addr, Via.parse):
        try:
            fn(text)
        except SipParseError:
            pass


@pytest.mark.parametrize("data", [
    b"SIP/2.0 200 OK\r\n" + b"Via: SIP/2.0/UDP h;" + b";" * 60000 + b"\r\n\r\n",
    b"SIP/2.0 401 x\r\nVia: SIP/2.0/UDP h;branch=1\r\nCall-ID: 1\r\nCSeq: 1 R\r\n"
    b"WWW-Authenticate: Digest " + b'realm="' + b"\\" * 30000 + b"\r\n\r\n",
    b"SIP/2.0 401 x\r\nVia: SIP/2.0/UDP h;branch=1\r\nCall-ID: 1\r\nCSeq: 1 R\r\n"
    b"WWW-Authenticate: Digest " + b"a=b, " * 10000 + b"\r\n\r\n",
    b"OPTIONS sip:x SIP/2.0\r\n" + b"X: y\r\n" * 8000 + b"\r\n",
    b"SIP/2.0 200 OK\r\nContact: " + b'"<' * 20000 + b"\r\n\r\n",
    b"\r\n" * 30000,
])
def test_pathological_inputs_are_fast(data):
    t0 = time.perf_counter()
    _all_ways(data, [len(data) // 3])
    assert time.perf_counter() - t0 < 1.0


def test_stream_dribbled_byte_by_byte_is_linear():
    big = (b"SIP/2.0 200 OK\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK1\r\nCall-ID: 1\r\nCSeq: 1 A\r\n"
           + b"X-Pad: " + b"x" * 50000 + b"\r\nContent-Length: 0\r\n\r\n")
    p = StreamParser()
    t0 = time.perf_counter()
    out = []
    for i in range(len(big)):
        out += p.feed(big[i:i + 1])
    assert len(out) == 1 and time.perf_counter() - t0 < 2.0
