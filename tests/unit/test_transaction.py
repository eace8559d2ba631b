"""RFC 3261 §17.1.2 timers: the exact retransmission schedule, driven by a fake clock."""

from __future__ import annotations

import pytest

from sipkit.sip.headers import Headers
from sipkit.sip.message import Response
from sipkit.sip.transaction import (
    Deliver,
    NonInviteClientTransaction,
    Send,
    Terminated,
    Timeout,
)


def _resp(status: int) -> Response:
    return Response(status, "x", Headers())


def _drive(tx, responses: dict[float, int] | None = None, until: float = 1e9):
    """Run ``tx`` on a fake clock, delivering ``responses`` {time: status}. Returns the log
    [(time, action name)] and the end state."""
    pending = sorted((responses or {}).items())
    log = [(0.0, type(a).__name__) for a in tx.start(0.0)]
    while True:
        due = tx.next_deadline()
        if pending and (due is None or pending[0][0] < due):
            t, status = pending.pop(0)
            log += [(t, type(a).__name__) for a in tx.receive(_resp(status), t)]
            continue
        if due is None or due > until:
            return log, tx.state
        log += [(due, type(a).__name__) for a in tx.timeout(due)]


def _sends(log):
    return [round(t, 6) for t, name in log if name == "Send"]


def test_udp_timer_e_doubles_to_t2_and_f_is_64_t1():
    log, state = _drive(NonInviteClientTransaction(b"x", reliable=False))
    # E: T1, 2T1, 4T1, then T2 (4 s) until F = 64*T1 = 32 s
    assert _sends(log) == [0.0, 0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    assert log[-2:] == [(32.0, "Timeout"), (32.0, "Terminated")] and state == "terminated"


def test_custom_t1_t2():
    log, _ = _drive(NonInviteClientTransaction(b"x", reliable=False, t1=0.1, t2=0.3))
    assert _sends(log) == [0.0, 0.1, 0.3, 0.6, 0.9, 1.2, 1.5, 1.8, 2.1, 2.4, 2.7, 3.0, 3.3,
                           3.6, 3.9, 4.2, 4.5, 4.8, 5.1, 5.4, 5.7, 6.0, 6.3]
    assert log[-2][0] == pytest.approx(6.4)


def test_timer_f_override():
    log, _ = _drive(NonInviteClientTransaction(b"x", reliable=False, timer_f=2.0))
    assert _sends(log) == [0.0, 0.5, 1.5] and log[-2] == (2.0, "Timeout")


def test_reliable_sends_once_and_times_out_at_f():
    log, _ = _drive(NonInviteClientTransaction(b"x", reliable=True, t1=0.1))
    assert _sends(log) == [0.0] and log[-2][1] == "Timeout"
    assert log[-2][0] == pytest.approx(6.4)


def test_provisional_then_retransmits_every_t2():
    tx = NonInviteClientTransaction(b"x", reliable=False, t1=0.5, t2=4.0)
    log, state = _drive(tx, {0.2: 100}, until=14)
    assert (0.2, "Deliver") in log and state == "proceeding"
    # E was armed for 0.5 before the 100; from then on it is reset to T2 each time
    assert _sends(log) == [0.0, 0.5, 4.5, 8.5, 12.5]


def test_provisional_after_doubling_started():
    log, _ = _drive(NonInviteClientTransaction(b"x", reliable=False), {1.0: 180}, until=20)
    assert _sends(log) == [0.0, 0.5, 1.5, 5.5, 9.5, 13.5, 17.5]


def test_proceeding_still_times_out_at_f():
    log, state = _drive(NonInviteClientTransaction(b"x", reliable=False), {0.1: 100})
    assert log[-2:] == [(32.0, "Timeout"), (32.0, "Terminated")] and state == "terminated"


def test_final_completes_and_timer_k_is_t4_on_udp():
    tx = NonInviteClientTransaction(b"x", reliable=False, t4=5.0)
    tx.start(0.0)
    actions = tx.receive(_resp(200), 0.3)
    assert actions == [Deliver(_resp(200))] and tx.state == "completed"
    assert tx.next_deadline() == pytest.approx(5.3)  # no more E, no F: only K
    assert tx.receive(_resp(200), 0.4) == []  # retransmitted final absorbed
    assert tx.timeout(5.0) == []  # not due yet
    assert tx.timeout(5.3) == [Terminated()] and tx.state == "terminated"
    assert tx.next_deadline() is None


def test_final_on_reliable_terminates_at_once():
    tx = NonInviteClientTransaction(b"x", reliable=True)
    tx.start(0.0)
    assert tx.receive(_resp(404), 1.0) == [Deliver(_resp(404)), Terminated()]
    assert tx.state == "terminated" and tx.next_deadline() is None


def test_final_after_provisional_and_nothing_after_terminated():
    tx = NonInviteClientTransaction(b"x", reliable=False)
    assert tx.start(0.0) == [Send(b"x")] and tx.start(0.1) == []
    assert tx.receive(_resp(100), 0.1) == [Deliver(_resp(100))]
    assert tx.receive(_resp(401), 0.2)[0] == Deliver(_resp(401))
    tx.timeout(100.0)
    assert tx.state == "terminated" and tx.receive(_resp(200), 101) == []
    assert tx.timeout(200.0) == []


def test_timeout_action_once():
    tx = NonInviteClientTransaction(b"x", reliable=True, t1=0.01)
    tx.start(0.0)
    assert tx.timeout(0.64) == [Timeout(), Terminated()] and tx.timeout(1.0) == []


def test_bad_timers():
    with pytest.raises(ValueError):
        NonInviteClientTransaction(b"x", reliable=False, t1=0)
    with pytest.raises(ValueError):
        NonInviteClientTransaction(b"x", reliable=False, t1=1, t2=0.5)


def test_next_interval_is_the_one_timer_e_rule():
    from sipkit.sip.transaction import next_interval

    # §17.1.2.2: doubling up to T2 while Trying, T2 at once when Proceeding
    assert [next_interval(i, proceeding=False, t2=4.0) for i in (0.5, 1, 2, 4)] == [1, 2, 4, 4]
    assert next_interval(0.5, proceeding=True, t2=4.0) == 4.0
