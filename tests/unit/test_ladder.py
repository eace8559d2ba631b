"""The compact SIP ladder of the human report."""

from __future__ import annotations

from sipkit.render.ladder import ladder
from sipkit.report import Evidence


def _ev(summary, direction, at, transport="udp", call_id="a84b4c76e66710", peer="10.0.0.9:5060"):
    return Evidence(kind="sip", summary=summary, at_ms=at, direction=direction, peer=peer,
                    local="10.0.0.5:5062", transport=transport,
                    text=f"{summary}\r\nVia: x\r\nCall-ID: {call_id}\r\n\r\n")


def test_ladder_rows():
    lines = ladder([_ev("REGISTER sip:pbx SIP/2.0", "out", 0.5),
                    _ev("SIP/2.0 401 Unauthorized", "in", 0.9),
                    Evidence(kind="note", summary="not sip"),
                    _ev("OPTIONS sip:pbx SIP/2.0", "out", 12.0, "tls", "77f0c1d2ffff",
                        "10.0.0.9:5061")])
    assert len(lines) == 3
    reg, chal, opt = lines
    assert reg.startswith("    0.5 ms  10.0.0.5:5062  ── REGISTER ─")
    assert "▶  10.0.0.9:5060" in reg and reg.endswith("a84b4c76")
    assert "◀" in chal and "401 Unauthorized ──  10.0.0.9:5060" in chal
    assert opt.endswith("77f0c1d2  [tls]")
    # the arrows line up: every row has the same width up to the Call-ID
    assert len({line.index("a84b4c76" if "a84" in line else "77f0") for line in lines}) == 1


def test_ladder_compact_call_id_forms_and_missing_fields():
    e = Evidence(kind="sip", summary="SIP/2.0 200 OK", direction="in", peer="p:1", local="l:2",
                 text="SIP/2.0 200 OK\r\ni: short-form-id\r\n")
    (line,) = ladder([e])
    assert line.startswith(" " * 10) and "200 OK" in line and line.endswith("short-fo")
    (line,) = ladder([Evidence(kind="sip", summary="INVITE sip:x SIP/2.0")])
    assert "INVITE" in line
    assert ladder([]) == [] and ladder([Evidence(kind="dns", summary="A 1.2.3.4")]) == []
