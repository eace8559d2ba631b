"""A compact SIP ladder: who sent what to whom, when — the picture drawn first in support.

      0.5 ms  127.0.0.1:41234  ── REGISTER ──────────────────▶  127.0.0.1:5060  a84b4c76
      0.9 ms  127.0.0.1:41234  ◀─────────── 401 Unauthorized ──  127.0.0.1:5060  a84b4c76
     12.0 ms  127.0.0.1:40102  ── OPTIONS ───────────────────▶  127.0.0.1:5061  77f0c1d2  [tls]

Columns: time since the check started, our address, the arrow with the method or the status
and reason, the peer, the first characters of the Call-ID (to tell transactions apart), and
the transport when it is not UDP. Pure function of evidence rows; non-SIP evidence is ignored.
"""

from __future__ import annotations

import re

from ..report import Evidence

WIDTH = 30  # arrow width, label included
CALL_ID_CHARS = 8
_CALL_ID = re.compile(r"(?im)^(?:call-id|i)[ \t]*:[ \t]*(\S+)")


def _label(summary: str) -> str:
    parts = summary.split(" ")
    if summary.startswith("SIP/2.0") and len(parts) >= 2:
        return " ".join(parts[1:])  # "401 Unauthorized"
    return parts[0]  # the method


def _call_id(e: Evidence) -> str:
    m = _CALL_ID.search(e.text or "")
    return m.group(1)[:CALL_ID_CHARS] if m else ""


def ladder(evidence: list[Evidence]) -> list[str]:
    rows = [e for e in evidence if e.kind == "sip"]
    if not rows:
        return []
    left = max(len(e.local or "") for e in rows)
    right = max(len(e.peer or "") for e in rows)
    out = []
    for e in rows:
        label = _label(e.summary)[:WIDTH - 6]
        at = f"{e.at_ms:7.1f} ms" if e.at_ms is not None else " " * 10
        fill = "─" * max(1, WIDTH - len(label) - 5)
        if e.direction == "in":
            arrow = f"◀{fill} {label} ──"
        elif e.direction == "out":
            arrow = f"── {label} {fill}▶"
        else:
            arrow = f"·· {label} " + "·" * max(1, WIDTH - len(label) - 4)
        tail = "  ".join(x for x in (_call_id(e),
                                     f"[{e.transport}]" if e.transport not in (None, "udp")
                                     else "") if x)
        line = f"{at}  {(e.local or ''):>{left}}  {arrow}  {(e.peer or ''):<{right}}"
        out.append(f"{line}  {tail}".rstrip() if tail else line.rstrip())
    return out
