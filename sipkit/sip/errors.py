"""Errors of the sans-IO SIP layer. Parsing raises SipParseError and nothing else."""


class SipError(Exception):
    """Base of the SIP layer's errors."""


class SipParseError(SipError, ValueError):
    """Bytes that are not a well-formed SIP message."""


class DigestError(SipError):
    """A challenge sipkit cannot answer (unknown scheme or algorithm, missing fields)."""
