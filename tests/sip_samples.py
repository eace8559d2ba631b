"""Sample SIP text shared by the unit tests: RFC 3261 §25-style, compact forms, folding."""

# An INVITE head up to (not including) its Content-Length: each test adds its own body.
INVITE_HEAD = (
    b"INVITE sip:bob@biloxi.example.com SIP/2.0\r\n"
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
)
