"""A compact SIP ladder: who sent what to whom, when — the picture drawn first in support.

      0.5 ms  127.0.0.1:41234  ── REGISTER ───────────────▶  127.0.0.1:5060
      0.9 ms  127.0.0.1:41234  ◀──────── 401 Unauthorized ──  127.0.0.1:5060
"""

from __future__ import annotations

from ..report import Evidence

WIDTH = 30


def _label(summary: str) -> str:
    parts = summary.split(" ")
    if summary.startswith("SIP/2.0") and len(parts) >= 2:
        return " ".join(parts[1:])  # "401 Unauthorized"
    return parts[0]  # the method


def ladder(evidence: list[Evidence]) -> list[str]:
    rows = [e for e in evidence if e.kind == "sip"]
    if not rows:
        return []
    left = max(len(e.local or "") for e in rows)
    out = []
    for e in rows:
        label = _label(e.summary)[:WIDTH - 6]
        at = f"{e.at_ms:7.1f} ms" if e.at_ms is not None else " " * 10
        if e.direction == "out":
            arrow = f"── {label} " + "─" * (WIDTH - len(label) - 5) + "▶"
        else:
            arrow = "◀" + "─" * (WIDTH - len(label) - 5) + f" {label} ──"
        out.append(f"{at}  {(e.local or ''):>{left}}  {arrow}  {e.peer or ''}"
                   + (f"  [{e.transport}]" if e.transport and e.transport != "udp" else ""))
    return out
