"""render/html.py as a pure function: one arrow per SIP message, well-formed SVG, secrets
masked even when HTML escaping changes how they look."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from html import escape

from sipkit.redact import Redactor
from sipkit.render.html import render, sequence_svg
from sipkit.report import CheckResult, Evidence, Report

SECRET = 'p&ss<w>rd"42'


def ev(direction: str, summary: str, at: float, peer="192.0.2.10:5060",
       local="192.0.2.99:40000", text=None) -> Evidence:
    return Evidence(kind="sip", summary=summary, at_ms=at, direction=direction, peer=peer,
                    local=local, transport="udp", text=text)


def report() -> Report:
    ladder = [ev("out", "REGISTER sip:pbx SIP/2.0", 0.1, text=f"REGISTER\r\nX-Leak: {SECRET}"),
              ev("in", "SIP/2.0 401 Unauthorized", 1.0),
              ev("out", "REGISTER sip:pbx SIP/2.0", 1.5, local="192.0.2.99:40002"),
              ev("in", "SIP/2.0 200 OK", 2.0, local="192.0.2.99:40002"),
              ev("out", "OPTIONS sip:pbx SIP/2.0", 3.0, peer="192.0.2.10:5061")]
    checks = [CheckResult(id="register", status="fail", summary=f"bad {SECRET}",
                          hint="fix <it>", evidence=ladder),
              CheckResult(id="dns", status="pass", summary="ok")]
    return Report(target={"registrar_server": "pbx.example.com", "port": 5060,
                          "connection_type": "udp"}, checks=checks).finish(10)


def test_one_arrow_per_message_and_a_lane_per_party():
    svg = sequence_svg([e.model_dump() for e in report().checks[0].evidence])
    root = ET.fromstring(svg)  # well-formed XML
    ns = "{http://www.w3.org/2000/svg}"
    arrows = [el for el in root.iter() if el.get("class") == "msg"]
    assert len(arrows) == 5
    lanes = [el.text for el in root.iter(f"{ns}text") if el.get("class") == "lane"]
    # our two ephemeral ports are one party; the PBX's two ports are two
    assert lanes == ["sipkit 192.0.2.99", "192.0.2.10:5060", "192.0.2.10:5061"]
    assert sequence_svg([]) == ""


def test_secrets_are_masked_raw_and_escaped():
    page = render(report(), Redactor([SECRET]))
    assert SECRET not in page and escape(SECRET) not in page
    assert "&lt;redacted&gt;" in page and "<redacted>" not in page
    assert "fix &lt;it&gt;" in page  # text is escaped, never markup
    assert len(re.findall(r'class="msg"', page)) == 5
    assert '<tr class="check fail">' in page and '<tr class="check pass">' in page
