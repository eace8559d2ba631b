"""Digest against the RFC examples and independently computed hashes; choosing a challenge."""

from __future__ import annotations

import hashlib
import re

import pytest

from sipkit.sip.digest import (
    Challenge,
    DigestError,
    authorization,
    digest_response,
    parse_challenge,
    parse_challenges,
    pick_strongest,
)
from sipkit.sip.headers import Headers
from sipkit.sip.message import Response


def _params(value: str) -> dict[str, str]:
    """The Authorization value's parameters, read by a regex of the test's own."""
    assert value.startswith("Digest ")
    return {m.group(1): m.group(2) if m.group(2) is not None else m.group(3)
            for m in re.finditer(r'(\w+)=(?:"([^"]*)"|([^,\s]+))', value)}


def _h(alg: str, data: str | bytes) -> str:
    return hashlib.new(alg, data.encode() if isinstance(data, str) else data).hexdigest()


# -- RFC 2617 §3.5 -------------------------------------------------------------------------

RFC2617 = ('Digest realm="testrealm@host.com", qop="auth,auth-int", '
           'nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", '
           'opaque="5ccc069c403ebaf9f0171e9517f40e41"')


def test_rfc2617_section_3_5():
    ch = parse_challenge(RFC2617)
    assert (ch.realm, ch.qop, ch.opaque) == ("testrealm@host.com", ["auth", "auth-int"],
                                             "5ccc069c403ebaf9f0171e9517f40e41")
    name, value = authorization(ch, method="GET", uri="/dir/index.html", username="Mufasa",
                                password="Circle Of Life", cnonce="0a4f113b", nc=1)
    p = _params(value)
    assert name == "Authorization"
    # auth preferred over auth-int when both are offered
    assert (p["qop"], p["nc"], p["cnonce"]) == ("auth", "00000001", "0a4f113b")
    assert p["response"] == "6629fae49393a05397450978507c4ef1"
    assert p["opaque"] == "5ccc069c403ebaf9f0171e9517f40e41" and p["uri"] == "/dir/index.html"
    assert "algorithm" not in p  # not offered, so not echoed


# -- RFC 7616 §3.9.1 -----------------------------------------------------------------------

RFC7616_NONCE = "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v"
RFC7616_CNONCE = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ"
RFC7616_OPAQUE = "FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"


@pytest.mark.parametrize("algorithm,expected", [
    ("MD5", "8ca523f5e9506fed4657c9700eebdbec"),
    ("SHA-256", "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"),
])
def test_rfc7616_section_3_9_1(algorithm, expected):
    header = (f'Digest realm="http-auth@example.org", qop="auth, auth-int", '
              f'algorithm={algorithm}, nonce="{RFC7616_NONCE}", opaque="{RFC7616_OPAQUE}"')
    resp = Response(401, "Unauthorized", Headers([("WWW-Authenticate", header)]))
    (ch,) = parse_challenges(resp)
    name, value = authorization(ch, method="GET", uri="/dir/index.html", username="Mufasa",
                                password="Circle of Life", cnonce=RFC7616_CNONCE, nc=1)
    p = _params(value)
    assert name == "Authorization" and p["response"] == expected
    assert (p["algorithm"], p["qop"], p["nc"], p["opaque"]) == (algorithm, "auth", "00000001",
                                                                RFC7616_OPAQUE)


def test_challenge_keyword_shape():
    ch = Challenge("Digest", "r", "n", "opq", "SHA-256", ["auth"], True, "sip:d",
                   "Proxy-Authenticate")
    assert (ch.opaque, ch.algorithm, ch.qop, ch.stale, ch.domain) == (
        "opq", "SHA-256", ["auth"], True, "sip:d")
    assert authorization(ch, method="REGISTER", uri="sip:d", username="u",
                         password="p")[0] == "Proxy-Authorization"


# -- algorithms and qop, computed here with hashlib ---------------------------------------

def test_sha512_256_auth():
    ch = Challenge("Digest", "r", "N", algorithm="SHA-512-256", qop=["auth"])
    _, value = authorization(ch, method="REGISTER", uri="sip:pbx", username="100",
                             password="pw", cnonce="C", nc=3)
    ha1 = _h("sha512_256", "100:r:pw")
    ha2 = _h("sha512_256", "REGISTER:sip:pbx")
    assert _params(value)["response"] == _h("sha512_256", f"{ha1}:N:00000003:C:auth:{ha2}")
    # SHA-512/256 has its own IVs: not the first half of SHA-512
    assert ha1 != _h("sha512", "100:r:pw")[:64]


@pytest.mark.parametrize("alg,hname", [("MD5-sess", "md5"), ("SHA-256-sess", "sha256"),
                                       ("SHA-512-256-sess", "sha512_256")])
def test_sess_variants(alg, hname):
    ch = Challenge("Digest", "r", "N", algorithm=alg, qop=["auth"])
    _, value = authorization(ch, method="REGISTER", uri="sip:pbx", username="u", password="p",
                             cnonce="C")
    ha1 = _h(hname, f"{_h(hname, 'u:r:p')}:N:C")
    ha2 = _h(hname, "REGISTER:sip:pbx")
    p = _params(value)
    assert p["response"] == _h(hname, f"{ha1}:N:00000001:C:auth:{ha2}")
    assert p["algorithm"] == alg and p["cnonce"] == "C"


def test_auth_int_hashes_the_body_when_it_is_all_that_is_offered():
    ch = Challenge("Digest", "r", "N", algorithm="SHA-256", qop=["auth-int"])
    body = b"v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\n"
    _, value = authorization(ch, method="INVITE", uri="sip:x@y", username="u", password="p",
                             body=body, cnonce="C", nc=2)
    ha1 = _h("sha256", "u:r:p")
    ha2 = _h("sha256", f"INVITE:sip:x@y:{_h('sha256', body)}")
    p = _params(value)
    assert p["qop"] == "auth-int"
    assert p["response"] == _h("sha256", f"{ha1}:N:00000002:C:auth-int:{ha2}")
    # a different body gives a different response
    _, other = authorization(ch, method="INVITE", uri="sip:x@y", username="u", password="p",
                             body=b"", cnonce="C", nc=2)
    assert _params(other)["response"] != p["response"]


def test_sha512_256_sess_auth_int():
    ch = Challenge("Digest", "r", "N", algorithm="SHA-512-256-sess", qop=["auth-int"])
    body = b"v=0\r\n"
    got = digest_response(ch, method="INVITE", uri="sip:x@y", username="u", password="p",
                          body=body, cnonce="C", nc=2, qop="auth-int")
    ha1 = _h("sha512_256", f"{_h('sha512_256', 'u:r:p')}:N:C")
    ha2 = _h("sha512_256", f"INVITE:sip:x@y:{_h('sha512_256', body)}")
    assert got == _h("sha512_256", f"{ha1}:N:00000002:C:auth-int:{ha2}")


def test_no_qop_md5_and_proxy_header():
    ch = parse_challenge('Digest realm="r", nonce="n"', "Proxy-Authenticate")
    name, value = authorization(ch, method="INVITE", uri="sip:a@b", username="u", password="p")
    ha1, ha2 = _h("md5", "u:r:p"), _h("md5", "INVITE:sip:a@b")
    assert name == "Proxy-Authorization"
    assert _params(value)["response"] == _h("md5", f"{ha1}:n:{ha2}")
    assert "qop" not in value and "cnonce" not in value and "nc=" not in value


def test_random_cnonce_when_not_given():
    ch = Challenge("Digest", "r", "n", qop=["auth"])
    a = _params(authorization(ch, method="R", uri="u", username="u", password="p")[1])
    b = _params(authorization(ch, method="R", uri="u", username="u", password="p")[1])
    assert a["cnonce"] != b["cnonce"] and len(a["cnonce"]) >= 16


def test_quotes_in_username_are_escaped_and_password_absent():
    ch = Challenge("Digest", 'r"x', "n")
    _, value = authorization(ch, method="R", uri="sip:a", username='a"b', password="s3cret!")
    assert 'username="a\\"b"' in value and 'realm="r\\"x"' in value
    assert "s3cret" not in value


# -- choosing -------------------------------------------------------------------------------

def _resp(*challenges: tuple[str, str]) -> Response:
    return Response(401, "Unauthorized", Headers([
        *challenges, ("Via", "SIP/2.0/UDP h;branch=z9hG4bK1"), ("Call-ID", "c"),
        ("CSeq", "1 REGISTER")]))


def test_pick_strongest_order():
    resp = _resp(("WWW-Authenticate", 'Digest realm="r", nonce="1", algorithm=MD5'),
                 ("WWW-Authenticate", 'Digest realm="r", nonce="2", algorithm=SHA-256'),
                 ("WWW-Authenticate", 'Digest realm="r", nonce="3", algorithm=AKAv1-MD5'))
    assert pick_strongest(parse_challenges(resp)).nonce == "2"
    resp = _resp(("WWW-Authenticate", 'Digest realm="r", nonce="1", algorithm=SHA-256'),
                 ("WWW-Authenticate", 'Digest realm="r", nonce="4", algorithm=SHA-512-256-sess'),
                 ("WWW-Authenticate", 'Digest realm="r", nonce="2", algorithm=MD5'))
    assert pick_strongest(parse_challenges(resp)).nonce == "4"


def test_pick_strongest_skips_unusable():
    with pytest.raises(DigestError, match="AKAv1-MD5"):
        pick_strongest([Challenge("Digest", "r", "n", algorithm="AKAv1-MD5")])
    with pytest.raises(DigestError):
        pick_strongest([Challenge("Digest", "r", "n", qop=["auth-conf"])])
    with pytest.raises(DigestError):
        pick_strongest([])
    only_md5 = Challenge("Digest", "r", "m")
    assert pick_strongest([Challenge("Digest", "r", "s", algorithm="SHA-1"), only_md5]) is only_md5


def test_proxy_and_www_challenges_and_other_schemes():
    resp = _resp(("Proxy-Authenticate", 'Digest realm="p", nonce="1"'),
                 ("WWW-Authenticate", 'Basic realm="b"'),
                 ("WWW-Authenticate", 'Digest realm="w", nonce="2", algorithm=SHA-256'))
    chs = parse_challenges(resp)
    assert [(c.header, c.realm) for c in chs] == [("WWW-Authenticate", "w"),
                                                  ("Proxy-Authenticate", "p")]


def test_malformed_challenge_is_skipped_when_another_parses():
    resp = _resp(("WWW-Authenticate", 'Digest nonce="only"'),
                 ("WWW-Authenticate", 'Digest realm="r", nonce="ok"'))
    assert [c.nonce for c in parse_challenges(resp)] == ["ok"]
    with pytest.raises(DigestError):
        parse_challenges(_resp(("WWW-Authenticate", 'Digest nonce="only"')))
    with pytest.raises(DigestError):
        parse_challenges(_resp())


def test_parse_details():
    ch = parse_challenge('Digest  realm="a\\"b, c", nonce=abc, stale=TRUE, algorithm=sha-256, '
                         'qop="auth-int,auth", domain="sip:x sip:y", ,')
    assert (ch.realm, ch.nonce, ch.stale, ch.qop, ch.domain) == (
        'a"b, c', "abc", True, ["auth-int", "auth"], "sip:x sip:y")
    assert ch.base_algorithm == "SHA-256" and ch.supported
    for bad in ('Digest nonce="n"', 'Digest realm="r", nonce="n", =broken', "",
                'Digest realm="r, nonce="n"'):
        with pytest.raises(DigestError):
            parse_challenge(bad)
