"""The register probe's lockout guard: one attempt in flight, one per interval, backoff."""

from __future__ import annotations

from sipkit.probe.lockout import Lockout


def test_one_attempt_in_flight_the_others_wait_for_it():
    lk = Lockout(None)
    assert lk.claim("t", 60) is None  # the first caller attempts
    held = lk.claim("t", 60)
    assert held is not None and held.in_flight is not None and not held.in_flight.is_set()
    lk.record("t", 60, True, 200, {"reason": "registered"})
    lk.release("t")
    assert held.in_flight.is_set()  # waiters wake up...
    again = lk.claim("t", 60)  # ...and get the fresh answer, cached for the interval
    assert again.in_flight is None and again.last == {"reason": "registered"}
    assert 59 < again.wait <= 60


def test_no_attempt_made_leaves_the_slot_free():
    lk = Lockout(None)
    assert lk.claim("t", 60) is None
    lk.release("t")  # e.g. DNS failed: nothing reached the server, nothing recorded
    assert lk.claim("t", 60) is None


def test_ban_signs_back_off_exponentially_and_success_resets():
    lk = Lockout(None)
    assert lk.claim("t", 60) is None
    delays = [lk.record("t", 30, False, 403, {"reason": "403"}) for _ in range(3)]
    lk.release("t")
    assert lk.claim("t", 60).wait > 200  # held back, not retried
    assert delays == [60.0, 120.0, 240.0]  # at least a minute after a ban sign, doubling
    assert lk.record("t", 30, True, 200, {}) == 30
    assert lk.record("t", 30, False, 404, {}) == 30  # 404 is not a ban sign


def test_the_state_outlives_the_process(tmp_path):
    """A restart (a new Lockout on the same file) sees the slot the last process took, even
    one taken by an attempt that never recorded its end (killed in the middle)."""
    path = tmp_path / "state" / "lockout.json"
    first = Lockout(path)
    assert first.claim("reg|pbx", 300) is None  # ...and the process dies here: no record
    restarted = Lockout(path)
    held = restarted.claim("reg|pbx", 300)
    assert held is not None and held.in_flight is None and 299 < held.wait <= 300
    assert "restart" in held.last["reason"]
    assert restarted.claim("reg|other", 300) is None  # other targets are not held


def test_a_recorded_answer_is_served_after_a_restart(tmp_path):
    path = tmp_path / "lockout.json"
    lk = Lockout(path)
    assert lk.claim("k", 60) is None
    lk.record("k", 60, True, 200, {"reason": "registered", "success": True})
    lk.release("k")
    held = Lockout(path).claim("k", 60)
    assert held.last == {"reason": "registered", "success": True}
    assert not list(tmp_path.glob(".lockout-*"))  # no temporary file left behind


def test_an_unwritable_state_refuses_the_attempt(tmp_path):
    import pytest

    from sipkit.probe.lockout import LockoutStateError

    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(LockoutStateError):
        Lockout(blocker / "sub" / "lockout.json").claim("k", 60)


def test_a_torn_state_file_is_started_over(tmp_path):
    path = tmp_path / "lockout.json"
    path.write_text('{"k": {"next": 1')
    assert Lockout(path).claim("k", 60) is None
