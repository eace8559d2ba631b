"""What the call checks decide before any call: which address to call."""

from __future__ import annotations

from sipkit.checks.calls import call_target
from sipkit.net.target import Target


def test_calls_go_to_an_ipv4_address_of_a_dual_stack_pbx():
    v6 = Target(host="pbx.example.com", ip="2001:db8::5", port=5060, transport="udp")
    v4 = Target(host="pbx.example.com", ip="192.0.2.5", port=5060, transport="udp")
    assert call_target([v6, v4]) is v4 and call_target([v4, v6]) is v4
    assert call_target([v6]) is v6  # IPv6 only: the check then skips with the reason
