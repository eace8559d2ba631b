"""Network errors are mapped once (sipkit.net.outcome): every exception a socket or TLS raises
becomes one outcome; anything else is a bug and is not swallowed."""

from __future__ import annotations

import ssl
from types import SimpleNamespace

import pytest

from sipkit.net.outcome import Outcome, of_exception, of_exchange


@pytest.mark.parametrize("exc, connecting, outcome", [
    (ConnectionRefusedError(), False, Outcome.REFUSED),
    (TimeoutError(), False, Outcome.NO_ANSWER),
    (TimeoutError(), True, Outcome.CONNECT_TIMEOUT),
    (OSError(101, "Network is unreachable"), False, Outcome.NETWORK_ERROR),
    (ssl.SSLError(1, "[SSL] wrong version number"), True, Outcome.TLS_FAILURE),
])
def test_exceptions(exc, connecting, outcome):
    assert of_exception(exc, connecting=connecting).outcome is outcome


def test_tls_verify_message_is_the_detail():
    exc = ssl.SSLCertVerificationError(1, "certificate verify failed")
    exc.verify_message = "certificate has expired"
    f = of_exception(exc)
    assert f.outcome is Outcome.TLS_FAILURE and f.detail == "certificate has expired"
    assert str(f) == "tls_handshake_failed: certificate has expired"
    assert of_exception(OSError(101, "Network is unreachable")).detail == "Network is unreachable"


def test_a_bug_is_not_a_network_outcome():
    with pytest.raises(KeyError):
        of_exception(KeyError("x"))


@pytest.mark.parametrize("ex, outcome", [
    (dict(refused=True, final=None, provisionals=[], garbage=0), Outcome.REFUSED),
    (dict(refused=False, final=object(), provisionals=[], garbage=3), Outcome.ANSWERED),
    (dict(refused=False, final=None, provisionals=[1], garbage=0), Outcome.PROVISIONAL_ONLY),
    (dict(refused=False, final=None, provisionals=[], garbage=2), Outcome.GARBAGE),
    (dict(refused=False, final=None, provisionals=[], garbage=0), Outcome.NO_ANSWER),
])
def test_exchanges(ex, outcome):
    assert of_exchange(SimpleNamespace(**ex)) is outcome
