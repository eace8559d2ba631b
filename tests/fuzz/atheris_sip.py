"""Coverage-guided fuzzing of the sans-IO SIP layer with atheris (libFuzzer), for `make fuzz`.

Whatever bytes arrive: ``parse``, ``StreamParser``, ``peek_response``, ``Via.parse``,
``parse_challenges`` and the number rule raise SipParseError / DigestError or nothing, and
``peek_response`` never says something ``parse`` does not (status, reason, top Via branch),
and the fleet's ``OwnResponsePeek`` says what ``peek_response`` says.
Any other exception or a failed assertion is a crash libFuzzer reports (and saves the input).

    .venv/bin/python tests/fuzz/atheris_sip.py -max_total_time=300 -rss_limit_mb=1024
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import atheris

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

with atheris.instrument_imports(include=["sipkit.sip"]):
    from sipkit.sip.digest import DigestError, parse_challenges, pick_strongest
    from sipkit.sip.errors import SipParseError
    from sipkit.sip.headers import leading_number, number
    from sipkit.sip.message import (OwnResponsePeek, Response, StreamParser, parse,
                                    peek_response)
    from sipkit.sip.via import Via

SEEDS = [
    b"SIP/2.0 401 Unauthorized\r\nVia: SIP/2.0/UDP 192.0.2.9:5060;branch=z9hG4bK1;rport=5060;"
    b"received=203.0.113.1\r\nFrom: <sip:100@pbx>;tag=a\r\nTo: <sip:100@pbx>;tag=b\r\n"
    b"Call-ID: x@y\r\nCSeq: 2 REGISTER\r\nWWW-Authenticate: Digest realm=\"pbx\", nonce=\"abc\","
    b" qop=\"auth,auth-int\", algorithm=SHA-256, stale=true\r\nContent-Length: 0\r\n\r\n",
    b"SIP/2.0 200 OK\r\nv: SIP/2.0/TCP h;branch=z9hG4bK7;rport, SIP/2.0/UDP g;branch=z9b\r\n"
    b"Via: garbage\r\nCall-ID: c7\r\nCSeq: 7 REGISTER\r\nContact: <sip:a@b;sipkit=1>;expires=60"
    b"\r\nExpires: 3600\r\nMin-Expires: 60\r\nRetry-After: 120 (x);duration=5\r\n"
    b"Content-Length: 4\r\n\r\nbody",
    b"REGISTER sip:pbx SIP/2.0\r\nVia: SIP/2.0/UDP h:5060;branch=z9hG4bKa\r\n"
    b"Call-ID: r\r\nCSeq: 1 REGISTER\r\nl: 0\r\n\r\n",
    b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 192.0.2.9:5060;branch=z9hG4bKf1;rport=5060;"
    b"received=203.0.113.1\r\nCall-ID: f1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
]
OWN = OwnResponsePeek(b"Via: SIP/2.0/UDP 192.0.2.9:5060;branch=")  # the fleet's reader


def one(data: bytes) -> None:
    try:
        msg = parse(data)
    except SipParseError:
        msg = None
    peeked = peek_response(data)
    if peeked is not None and isinstance(msg, Response):
        top = msg.top_via
        assert top is not None and peeked == (msg.status, msg.reason, top.branch), data
    own = OWN(data)
    assert own == (peeked and (peeked[0], peeked[1], peeked[2].encode())), data
    stream = StreamParser()
    try:
        stream.feed(data)
        stream.feed(data)
    except SipParseError:
        stream.discard()
    if msg is not None:
        for value in msg.headers.get_all("Via"):
            try:
                via = Via.parse(value)
                assert via.rport_port is None or 0 < via.rport_port < 65536
            except SipParseError:
                pass
        for name in ("Expires", "Min-Expires", "Content-Length", "Retry-After"):
            n = msg.headers.get_int(name)
            assert n is None or 0 <= n <= 2**32 - 1
            leading_number(msg.headers.get(name))
        if isinstance(msg, Response):
            try:
                pick_strongest(parse_challenges(msg))
            except DigestError:
                pass
    number(data.decode("latin-1")[:12])


def main() -> None:
    corpus = Path(tempfile.mkdtemp(prefix="sipkit-atheris-"))
    for i, seed in enumerate(SEEDS):
        (corpus / f"seed{i}").write_bytes(seed)
    args = [a for a in sys.argv if not a.startswith("--")] + [str(corpus)]
    atheris.Setup(args, one)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
