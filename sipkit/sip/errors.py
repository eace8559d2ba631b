"""Errors of the sans-IO SIP layer. Parsing raises SipParseError and nothing else."""


class SipError(Exception):
    """Base of the SIP layer's errors."""


class SipParseError(SipError, ValueError):
    """Bytes that are not a well-formed SIP message."""


class DigestError(SipError):
    """A challenge sipkit cannot answer (unknown scheme or algorithm, missing fields)."""


class SipBuildError(SipError, ValueError):
    """A message sipkit was asked to serialize that would not be one (a line break inside a
    header value would smuggle in headers of its own)."""
