"""Digest against the RFC examples, and the choice of challenge."""

from __future__ import annotations

import hashlib

import pytest

from sipkit.sip.digest import (Challenge, DigestError, authorization, digest_response,
                               parse_challenge, parse_challenges, pick_strongest)
from sipkit.sip.headers import Headers
from sipkit.sip.message import Response


def test_rfc2617_section_3_5():
    ch = parse_challenge('Digest realm="testrealm@host.com", qop="auth,auth-int", '
                         'nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", '
                         'opaque="5ccc069c403ebaf9f0171e9517f40e41"')
    assert digest_response(ch, method="GET", uri="/dir/index.html", username="Mufasa",
                           password="Circle Of Life", cnonce="0a4f113b", nc=1,
                           qop="auth") == "6629fae49393a05397450978507c4ef1"


RFC7616_NONCE = "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v"
RFC7616_CNONCE = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ"


@pytest.mark.parametrize("algorithm,expected", [
    ("MD5", "8ca523f5e9506fed4657c9700eebdbec"),
    ("SHA-256", "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"),
])
def test_rfc7616_section_3_9_1(algorithm, expected):
    ch = Challenge("Digest", "http-auth@example.org", RFC7616_NONCE, algorithm, ["auth"],
                   "FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS")
    name, value = authorization(ch, method="GET", uri="/dir/index.html", username="Mufasa",
                                password="Circle of Life", cnonce=RFC7616_CNONCE, nc=1)
    assert name == "Authorization"
    assert f'response="{expected}"' in value and "nc=00000001" in value and "qop=auth" in value


def _h(alg, data: str) -> str:
    return hashlib.new(alg, data.encode()).hexdigest()


def test_sha512_256_sess_auth_int_computed_independently():
    ch = Challenge("Digest", "r", "N", "SHA-512-256-sess", ["auth-int"])
    body = b"v=0\r\n"
    got = digest_response(ch, method="INVITE", uri="sip:x@y", username="u", password="p",
                          body=body, cnonce="C", nc=2, qop="auth-int")
    ha1 = _h("sha512_256", f"{_h('sha512_256', 'u:r:p')}:N:C")
    ha2 = _h("sha512_256", f"INVITE:sip:x@y:{hashlib.new('sha512_256', body).hexdigest()}")
    assert got == _h("sha512_256", f"{ha1}:N:00000002:C:auth-int:{ha2}")


def test_no_qop_md5_and_proxy_header():
    ch = parse_challenge('Digest realm="r", nonce="n"', "Proxy-Authenticate")
    name, value = authorization(ch, method="INVITE", uri="sip:a@b", username="u", password="p")
    ha1, ha2 = _h("md5", "u:r:p"), _h("md5", "INVITE:sip:a@b")
    assert name == "Proxy-Authorization" and f'response="{_h("md5", f"{ha1}:n:{ha2}")}"' in value
    assert "qop" not in value and "cnonce" not in value


def test_pick_strongest_and_unsupported():
    resp = Response(401, "Unauthorized", Headers([
        ("WWW-Authenticate", 'Digest realm="r", nonce="1", algorithm=MD5'),
        ("WWW-Authenticate", 'Digest realm="r", nonce="2", algorithm=SHA-256'),
        ("WWW-Authenticate", 'Digest realm="r", nonce="3", algorithm=AKAv1-MD5'),
        ("Via", "SIP/2.0/UDP h;branch=z9hG4bK1"), ("Call-ID", "c"), ("CSeq", "1 REGISTER")]))
    assert pick_strongest(parse_challenges(resp)).nonce == "2"
    with pytest.raises(DigestError, match="AKAv1-MD5"):
        pick_strongest([Challenge("Digest", "r", "n", "AKAv1-MD5")])


def test_stale_and_malformed():
    assert parse_challenge('Digest realm="r", nonce="n", stale=TRUE').stale
    with pytest.raises(DigestError):
        parse_challenge('Digest nonce="n"')
    with pytest.raises(DigestError):
        parse_challenge('Digest realm="r", nonce="n", =broken')
