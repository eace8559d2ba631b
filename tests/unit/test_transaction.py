"""RFC 3261 §17.1.2 timers: the exact retransmission schedule."""

from __future__ import annotations

from sipkit.sip.headers import Headers
from sipkit.sip.message import Response
from sipkit.sip.transaction import Deliver, NonInviteClientTransaction, Send, Terminated, Timeout


def _run_until_timeout(tx):
    sends = [0.0] if any(isinstance(a, Send) for a in tx.start(0.0)) else []
    while True:
        now = tx.next_deadline()
        actions = tx.timeout(now)
        if any(isinstance(a, Timeout) for a in actions):
            return sends, now
        sends += [now for a in actions if isinstance(a, Send)]


def test_udp_timer_e_doubles_to_t2_and_f_is_64_t1():
    sends, end = _run_until_timeout(NonInviteClientTransaction(b"x", reliable=False))
    assert sends[:7] == [0.0, 0.5, 1.5, 3.5, 7.5, 11.5, 15.5]
    assert end == 32.0 and all(b - a <= 4.0 for a, b in zip(sends, sends[1:]))


def test_reliable_sends_once():
    sends, end = _run_until_timeout(NonInviteClientTransaction(b"x", reliable=True, t1=0.1))
    assert sends == [0.0] and abs(end - 6.4) < 1e-9


def _resp(status):
    return Response(status, "x", Headers())


def test_provisional_moves_to_proceeding_and_retransmits_every_t2():
    tx = NonInviteClientTransaction(b"x", reliable=False, t1=0.5, t2=4.0)
    tx.start(0.0)
    assert tx.receive(_resp(100), 0.2) == [Deliver(_resp(100))] and tx.state == "proceeding"
    tx.timeout(0.5)  # E fires: next interval is T2 in proceeding
    assert tx.next_deadline() == 4.5


def test_final_completes_and_k_terminates():
    tx = NonInviteClientTransaction(b"x", reliable=False, t4=5.0)
    tx.start(0.0)
    actions = tx.receive(_resp(200), 0.3)
    assert isinstance(actions[0], Deliver) and tx.state == "completed"
    assert tx.receive(_resp(200), 0.4) == []  # retransmitted final absorbed
    assert tx.timeout(5.3) == [Terminated()] and tx.state == "terminated"
