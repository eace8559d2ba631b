"""Sans-IO SIP: bytes in, messages out; no sockets, no asyncio, nothing else of sipkit.

    message      Request, Response, parse (a datagram), StreamParser (TCP/TLS framing)
    headers      Headers: ordered, case-insensitive multi-dict; compact forms expanded
    uri, via     SipUri, NameAddr / parse_name_addr, Via (branch, received, rport)
    digest       challenges of a 401/407 and the Authorization answering them
    builder      out-of-dialog requests (Via with rport, Max-Forwards, tags, Call-ID)
    transaction  the RFC 3261 §17.1.2 non-INVITE client transaction timers
    sdp          enough SDP to read an answer and build an audio offer

Malformed input raises SipParseError, and nothing else; digest problems raise DigestError.
"""

from .errors import DigestError, SipError, SipParseError
from .headers import Headers
from .message import Message, Request, Response, StreamParser, parse
from .uri import NameAddr, SipUri, parse_name_addr
from .via import Via

__all__ = ["DigestError", "Headers", "Message", "NameAddr", "Request", "Response", "SipError",
           "SipParseError", "SipUri", "StreamParser", "Via", "parse", "parse_name_addr"]
