"""The simplified G.107 E-model (sipkit.media.mos): known R -> MOS points, impairments."""

from __future__ import annotations

import pytest

from sipkit.media.mos import (
    delay_impairment,
    impairment,
    loss_impairment,
    mos,
    mos_from_r,
    one_way_delay,
    r_factor,
)


@pytest.mark.parametrize("r,expected", [
    (93.2, 4.41),  # the E-model's default: no delay, no loss, G.711
    (100, 4.5),
    (90, 4.34),
    (80, 4.02),
    (70, 3.60),
    (60, 3.10),
    (50, 2.58),
    (0, 1.0),
    (-5, 1.0),
    (120, 4.5),
])
def test_r_to_mos_reference_points(r, expected):
    assert mos_from_r(r) == pytest.approx(expected, abs=0.006)


def test_mos_is_monotonic_in_r():
    values = [mos_from_r(r / 2) for r in range(-20, 221)]
    assert all(a <= b + 1e-12 for a, b in zip(values, values[1:]))


def test_no_delay_no_loss_is_the_default_r():
    assert r_factor(0, 0, "PCMU") == pytest.approx(93.2)
    assert mos(0, 0, "PCMU") == 4.41


def test_delay_impairment_knee_at_177_3_ms():
    assert delay_impairment(0) == 0
    assert delay_impairment(100) == pytest.approx(2.4)
    assert delay_impairment(177.3) == pytest.approx(0.024 * 177.3)
    assert delay_impairment(300) == pytest.approx(0.024 * 300 + 0.11 * (300 - 177.3))
    assert delay_impairment(-10) == 0  # clock nonsense never improves R


def test_loss_impairment_g711_with_plc():
    assert loss_impairment(0, 0, 25.1) == 0
    # Ie,eff = 95 * 1 / (1 + 25.1)
    assert loss_impairment(1, 0, 25.1) == pytest.approx(95 / 26.1)
    assert loss_impairment(100, 0, 25.1) == pytest.approx(95 * 100 / 125.1)
    assert loss_impairment(250, 0, 25.1) == loss_impairment(100, 0, 25.1)  # clamped


@pytest.mark.parametrize("delay,loss,codec,lo,hi", [
    (40, 0, "PCMU/8000", 4.38, 4.41),  # a clean loopback call
    (40, 1, "PCMU", 4.2, 4.3),  # 1 % loss costs ~0.15 MOS with PLC
    (40, 5, "PCMA", 3.6, 3.9),
    (40, 20, "PCMU", 2.3, 2.8),
    (400, 0, "PCMU", 2.9, 3.5),  # long delay alone
    (40, 0, "G729", 4.0, 4.2),  # Ie 11
    (40, 0, "GSM", 3.5, 3.8),  # Ie 20
])
def test_mos_ranges(delay, loss, codec, lo, hi):
    assert lo <= mos(delay, loss, codec) <= hi


def test_loss_lowers_mos_more_for_less_robust_codecs():
    assert mos(40, 3, "G729") < mos(40, 3, "PCMU")


def test_codec_table():
    assert impairment("PCMU/8000")[0] == "PCMU" and impairment("pcma")[1].bpl == 25.1
    assert impairment("G722/16000")[0] == "G722"
    assert impairment("opus/48000/2")[0] == "OPUS"
    name, imp = impairment("AMR-WB/16000")
    assert name == "AMR-WB" and (imp.ie, imp.bpl) == (0.0, 25.1) and "unknown" in imp.source
    assert impairment(None)[0] == "PCMU"


def test_one_way_delay():
    assert one_way_delay(None, None) == 20
    assert one_way_delay(100, 40) == 50 + 20 + 40
    assert one_way_delay(0, 20, packet_ms=30) == 50
