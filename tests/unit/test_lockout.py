"""The register probe's lockout guard: one attempt in flight, one per interval, backoff."""

from __future__ import annotations

from sipkit.probe.lockout import Lockout


def test_one_attempt_in_flight_the_others_wait_for_it():
    lk = Lockout()
    assert lk.claim("t") is None  # the first caller attempts
    held = lk.claim("t")
    assert held is not None and held.in_flight is not None and not held.in_flight.is_set()
    lk.record("t", 60, True, 200, {"reason": "registered"})
    lk.release("t")
    assert held.in_flight.is_set()  # waiters wake up...
    again = lk.claim("t")  # ...and get the fresh answer, cached for the interval
    assert again.in_flight is None and again.last == {"reason": "registered"}
    assert 59 < again.wait <= 60


def test_no_attempt_made_leaves_the_slot_free():
    lk = Lockout()
    assert lk.claim("t") is None
    lk.release("t")  # e.g. DNS failed: nothing reached the server, nothing recorded
    assert lk.claim("t") is None


def test_ban_signs_back_off_exponentially_and_success_resets():
    lk = Lockout()
    assert lk.claim("t") is None
    delays = [lk.record("t", 30, False, 403, {"reason": "403"}) for _ in range(3)]
    lk.release("t")
    assert lk.claim("t").wait > 200  # held back, not retried
    assert delays == [60.0, 120.0, 240.0]  # at least a minute after a ban sign, doubling
    assert lk.record("t", 30, True, 200, {}) == 30
    assert lk.record("t", 30, False, 404, {}) == 30  # 404 is not a ban sign
