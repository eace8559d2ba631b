"""Just enough SDP: read an answer, build an offer."""

from __future__ import annotations

import pytest

from sipkit.sip.errors import SipParseError
from sipkit.sip.sdp import audio_offer, parse_sdp

ANSWER = (b"v=0\r\no=pbx 1 2 IN IP4 198.51.100.7\r\ns=-\r\nc=IN IP4 198.51.100.7\r\nt=0 0\r\n"
          b"a=sendonly\r\n"
          b"m=audio 31000 RTP/AVP 8 101\r\na=rtpmap:101 telephone-event/8000\r\n"
          b"m=video 0 RTP/AVP 96\r\nc=IN IP4 198.51.100.8\r\na=inactive\r\n")


def test_parse_answer():
    sdp = parse_sdp(ANSWER)
    audio = sdp.audio()
    assert sdp.connection == "198.51.100.7" and len(sdp.media) == 2
    assert (audio.port, audio.proto, audio.formats) == (31000, "RTP/AVP", ["8", "101"])
    assert audio.connection == "198.51.100.7" and audio.direction == "sendonly"  # session-level
    assert audio.codecs == ["PCMA/8000", "telephone-event/8000"]
    video = sdp.media[1]
    assert (video.kind, video.port, video.connection, video.direction) == (
        "video", 0, "198.51.100.8", "inactive")


def test_offer_roundtrip_ipv4_and_ipv6():
    for ip, family in (("192.0.2.1", "IP4"), ("2001:db8::5", "IP6")):
        offer = audio_offer(ip, 40000, session_id=7)
        assert f"c=IN {family} {ip}\r\n".encode() in offer and offer.endswith(b"\r\n")
        audio = parse_sdp(offer).audio()
        assert (audio.connection, audio.port, audio.direction) == (ip, 40000, "sendrecv")
        assert audio.codecs[:2] == ["PCMU/8000", "PCMA/8000"]


def test_no_audio():
    assert parse_sdp(b"v=0\r\n").audio() is None


@pytest.mark.parametrize("bad", [b"m=audio x RTP/AVP 0\r\n", b"m=audio 70000 RTP/AVP 0\r\n",
                                 b"m=audio \xc2\xb2 RTP/AVP 0\r\n", b"m=audio 5\r\n",
                                 b"c=IN IP4\r\n", b"\xff\xfe"])
def test_bad_sdp(bad):
    with pytest.raises(SipParseError):
        parse_sdp(bad)
