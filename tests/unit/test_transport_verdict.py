"""The transport verdict weighs every fact: which transports and ports answered instead."""

from __future__ import annotations

from sipkit.checks.transport import alternatives, explain


def row(transport: str, port: int, verdict: str, **extra) -> dict:
    return {"target": {"host": "pbx.example.com", "ip": "192.0.2.10", "port": port,
                       "transport": transport}, "reachable": False, "verdict": verdict, **extra}


def test_alternatives_are_the_usual_mistakes_without_the_configured_one():
    assert alternatives("udp", 5061) == [("tcp", 5061), ("tls", 5061), ("udp", 5060)]
    assert alternatives("tls", 5060) == [("tcp", 5060), ("udp", 5060), ("tls", 5061)]
    assert alternatives("udp", 5060) == [("tcp", 5060), ("tls", 5060), ("tls", 5061)]


def test_udp_on_the_tls_port_names_the_transport_not_the_alg():
    summary, hint = explain(row("udp", 5061, "refused", tcp_same_port="open"),
                            {"tcp:5061": "no_answer", "tls:5061": "answered",
                             "udp:5060": "answered"})
    assert "nothing listens on UDP 192.0.2.10:5061" in summary
    assert "TLS 5061" in summary and "UDP 5060" in summary
    assert hint.startswith("port 5061 speaks TLS, not UDP: set connection_type: tls")
    assert "port: 5060" in hint and "ALG" not in hint


def test_tls_on_the_udp_port_says_tls_listens_on_5061():
    summary, hint = explain(row("tls", 5060, "no_answer", tcp="open"),
                            {"tcp:5060": "answered", "udp:5060": "answered",
                             "tls:5061": "answered"})
    assert "silently dropped" not in summary  # TCP connected: nothing was dropped
    assert "TCP 5060 connects" in summary
    assert hint == "TLS listens on 5061: set port: 5061"


def test_tls_on_a_plain_port_without_any_tls_listener():
    _, hint = explain(row("tls", 5070, "tls_handshake_failed", tcp="open", error="wrong version"),
                      {"tcp:5070": "answered", "udp:5070": "answered", "udp:5060": "refused",
                       "tls:5061": "refused"})
    assert hint.startswith("port 5070 speaks plain SIP (TCP/UDP), not TLS")


def test_tls_failing_but_udp_5060_answers():
    _, hint = explain(row("tls", 5061, "tcp_refused", tcp="refused"),
                      {"tcp:5061": "refused", "udp:5061": "refused", "udp:5060": "answered"})
    assert "answers UDP on 5060 but not TLS" in hint


def test_udp_dropped_while_tcp_sip_answers_is_the_alg_signature():
    summary, hint = explain(row("udp", 5060, "no_answer", tcp_same_port="open"),
                            {"tcp:5060": "answered", "tls:5060": "garbage",
                             "tls:5061": "no_answer"})
    assert "TCP 5060" in summary
    assert "SIP ALG" in hint


def test_udp_refused_while_tcp_answers_speaks_tcp_not_udp():
    _, hint = explain(row("udp", 5080, "refused", tcp_same_port="open"),
                      {"tcp:5080": "answered", "tls:5080": "garbage", "udp:5060": "refused",
                       "tls:5061": "refused"})
    assert hint.startswith("this port speaks TCP, not UDP")


def test_udp_on_a_wrong_port_when_5060_answers():
    _, hint = explain(row("udp", 5999, "refused", tcp_same_port="refused"),
                      {"tcp:5999": "refused", "tls:5999": "refused", "udp:5060": "answered",
                       "tls:5061": "answered"})
    assert hint == "UDP SIP listens on 5060, not 5999: set port: 5060"


def test_nothing_answers_anywhere_keeps_the_firewall_fix():
    summary, hint = explain(row("udp", 5060, "no_answer", tcp_same_port="timeout"),
                            {"tcp:5060": "timeout", "tls:5060": "timeout", "tls:5061": "timeout"})
    assert "silently dropped" in summary
    assert hint.startswith("open UDP 5060 to the PBX in its firewall")
