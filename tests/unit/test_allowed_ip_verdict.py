"""allowed_ip verdicts as a pure function (the lab cannot show a public address)."""

from sipkit.checks.allowed_ip import verdict

S = "203.0.113.50:5060"


def test_match_passes():
    assert verdict("8.8.4.4", ["8.8.4.4"], True, {"8.8.4.4"}, S)[0] == "pass"


def test_private_allowed_ip_while_cloud_sees_public():
    status, summary, hint = verdict("192.168.1.10", ["8.8.4.4"], True, set(), S)
    assert status == "fail" and "192.168.1.10 is a private address" in summary
    assert "set allowed_ip: 8.8.4.4" in hint


def test_plain_mismatch():
    status, summary, hint = verdict("8.8.8.8", ["8.8.4.4"], True, set(), S)
    assert status == "fail" and "allowed_ip is 8.8.8.8, but" in summary and "8.8.4.4" in hint


def test_multi_wan():
    assert verdict("8.8.4.4", ["8.8.4.4", "9.9.9.9"], True, set(), S)[0] == "warn"
    assert verdict("1.1.1.1", ["8.8.4.4", "9.9.9.9"], True, set(), S)[0] == "fail"


def test_registrar_elsewhere_and_no_reflection_warn():
    status, summary, _ = verdict("8.8.4.4", ["8.8.4.4"], False, {"9.9.9.9"}, S)
    assert status == "warn" and "received/rport" in summary and "9.9.9.9" in summary
