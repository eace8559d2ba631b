"""How fast sipkit may talk to one PBX, and how many requests a check run sends.

The strictest documented automatic defence we know of is Yeastar's IP Auto Defense example
rule, "block the IP that sends more than 90 IP packets in 60 seconds" (help.yeastar.com,
S-Series "IP Auto Defense"; the older MyPBX guide adds 40 packets in 2 s on UDP 5060). A SIP
request over UDP is one packet, plus retransmissions when unanswered (RFC 3261 §17.1.2.2: up to
~11 within Timer F), so the budget is counted in packets, not requests.

Recommendation for periodic probes (``sipkit probe``): at most PROBE_MAX_PACKETS_PER_MINUTE
packets per minute to one PBX address, i.e. one probe every PROBE_MIN_INTERVAL_S seconds at
most — a third of Yeastar's threshold, so that retransmissions of an unanswered probe, a
phone registered from the same NAT address and a concurrent `sipkit check` still fit. Burst:
no more than BURST_PACKETS in BURST_WINDOW_S (under MyPBX's 40 in 2 s).
"""

from __future__ import annotations

# The documented threshold: Yeastar IP Auto Defense example rule.
YEASTAR_PACKETS = 90
YEASTAR_WINDOW_S = 60.0

PROBE_MAX_PACKETS_PER_MINUTE = 30  # a third of 90/60 s
PROBE_MIN_INTERVAL_S = 60.0 / PROBE_MAX_PACKETS_PER_MINUTE  # 2 s between packets at most
# for `sipkit probe run --per-target-rate` (probes/s to one target): 0.5, i.e. 30 per minute
RECOMMENDED_PER_TARGET_RATE = PROBE_MAX_PACKETS_PER_MINUTE / 60.0
BURST_PACKETS = 10
BURST_WINDOW_S = 2.0

# What one `sipkit check` of a PBX extension sends to the PBX, counted from the run's request
# log (Report.pbx.requests_sent). Measured in the lab: 15 for a full UDP check with a test call
# (transport 3 OPTIONS + 2 padded OPTIONS; register: REGISTER, authenticated REGISTER, removal
# of the binding with its challenge; call_outbound: INVITE, challenged INVITE, BYE, and the
# rest). The budget leaves room for a stale-nonce or 423 retry; tests assert a full check stays
# under it (tests/integration/test_pbx_brands.py::test_request_budget_of_a_full_check).
CHECK_REQUEST_BUDGET = 20


def within_budget(packets: int, seconds: float) -> bool:
    """Whether ``packets`` sent to one PBX over ``seconds`` stay under the recommendation."""
    if seconds <= 0:
        return packets <= BURST_PACKETS
    return packets <= max(BURST_PACKETS, PROBE_MAX_PACKETS_PER_MINUTE * seconds / 60.0)
