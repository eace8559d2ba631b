"""--html FILE: one self-contained page to attach to a support ticket.

The verdict table with causes and fixes, each check's SIP exchange drawn as a sequence diagram
(inline SVG, one arrow per message), the test calls' media per direction over the call, MOS,
and the settings without secrets. No external assets (no fonts, scripts or images to fetch):
the page must open the same in a ticketing system, offline, years later.

Secrets: the report is redacted as data first (before HTML escaping changes how a secret
looks), and the finished page once more.
"""

from __future__ import annotations

from html import escape
from typing import Any

from ..redact import MASK, Redactor
from ..report import Report, target_line

COLOURS = {"pass": "#1a7f37", "warn": "#9a6700", "fail": "#cf222e", "skip": "#6e7781",
           "error": "#8250df"}
LANE_GAP, ROW_H, TOP = 230, 26, 46  # sequence diagram geometry (px)
MAX_DIALOGS = 200  # what analyze keeps anyway

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px;color:#1f2328}
h1{font-size:20px;margin:0 0 4px} h2{font-size:16px;margin:28px 0 8px}
h3{font-size:14px;margin:18px 0 6px}
table{border-collapse:collapse;width:100%} td,th{padding:5px 8px;border-bottom:1px solid #d0d7de;
text-align:left;vertical-align:top} th{background:#f6f8fa}
.badge{display:inline-block;padding:1px 8px;border-radius:10px;color:#fff;font-weight:600;
font-size:12px;white-space:nowrap} .fix{color:#57606a} .fix b{color:#1f2328}
.muted{color:#57606a} code,pre{font:12px ui-monospace,SFMono-Regular,Menlo,monospace}
pre{background:#f6f8fa;padding:8px;overflow-x:auto;white-space:pre-wrap}
svg text{font:11px ui-monospace,SFMono-Regular,Menlo,monospace}
.kv td:first-child{width:260px;color:#57606a}
"""


def _badge(status: str) -> str:
    return (f'<span class="badge" style="background:{COLOURS.get(status, "#6e7781")}">'
            f"{escape(status.upper())}</span>")


def _ms(value: float) -> str:
    return f"{value / 1000:.2f} s" if value >= 1000 else f"{value:.0f} ms"


def _label(summary: str) -> str:
    parts = summary.split(" ")
    if summary.startswith("SIP/2.0") and len(parts) >= 2:
        return " ".join(parts[1:])
    return parts[0]


def _host(address: str) -> str:
    return address.rsplit(":", 1)[0] if address.count(":") == 1 or "]:" in address else address


def sequence_svg(evidence: list[dict], merge_local_ports: bool = True) -> str:
    """The SIP rows of ``evidence`` as a sequence diagram: a lifeline per party, one arrow
    (class "msg") per message from its sender to its receiver. Our own ephemeral ports are one
    party (``merge_local_ports``): a lifeline per flow would only widen the picture."""
    rows = [e for e in evidence if e.get("kind") == "sip"]
    if not rows:
        return ""
    lanes: list[str] = []

    def lane(address: str | None, ours: bool) -> int:
        key = (_host(address or "?") if ours and merge_local_ports else (address or "?"))
        if key not in lanes:
            lanes.append(key)
        return lanes.index(key)

    arrows = []
    for e in rows:
        ours = lane(e.get("local"), True)
        theirs = lane(e.get("peer"), False)
        src, dst = (ours, theirs) if e.get("direction") != "in" else (theirs, ours)
        arrows.append((src, dst, e))
    width = 120 + LANE_GAP * max(1, len(lanes) - 1) + 120
    height = TOP + ROW_H * len(arrows) + 20
    x = [120 + LANE_GAP * i for i in range(len(lanes))]
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" role="img" aria-label="SIP sequence diagram">',
           '<defs><marker id="head" markerWidth="8" markerHeight="8" refX="8" refY="4" '
           'orient="auto"><path d="M0,0 L8,4 L0,8 z" fill="#1f2328"/></marker></defs>']
    for i, name in enumerate(lanes):
        label = ("sipkit " if i == 0 and merge_local_ports else "") + name
        out.append(f'<text class="lane" x="{x[i]}" y="16" text-anchor="middle" '
                   f'font-weight="bold">{escape(label)}</text>')
        out.append(f'<line x1="{x[i]}" y1="24" x2="{x[i]}" y2="{height - 8}" stroke="#8c959f" '
                   'stroke-dasharray="4 3"/>')
    for n, (src, dst, e) in enumerate(arrows):
        y = TOP + ROW_H * n
        at = e.get("at_ms")
        colour = "#cf222e" if _label(e.get("summary", ""))[:1] in ("4", "5", "6") else "#1f2328"
        if src == dst:  # a message between two of our own sockets: a short loop
            out.append(f'<path class="msg" d="M{x[src]},{y} h40 v10 h-40" fill="none" '
                       f'stroke="{colour}" marker-end="url(#head)"/>')
        else:
            out.append(f'<line class="msg" x1="{x[src]}" y1="{y}" x2="{x[dst]}" y2="{y}" '
                       f'stroke="{colour}" marker-end="url(#head)"/>')
        mid = (x[src] + x[dst]) / 2
        tag = e.get("transport") if e.get("transport") not in (None, "udp") else ""
        out.append(f'<text x="{mid}" y="{y - 5}" text-anchor="middle" fill="{colour}">'
                   f'{escape(_label(e.get("summary", ""))[:40])}'
                   f'{escape(f" [{tag}]") if tag else ""}</text>')
        if at is not None:
            out.append(f'<text x="4" y="{y + 4}" fill="#57606a">{at:.1f} ms</text>')
    out.append("</svg>")
    return "\n".join(out)


def media_svg(call: dict) -> str:
    """Each direction of a test call along the call's time: the packets that flowed, their
    loss and jitter. Drawn from a per-interval ``timeline`` when the call recorded one, else
    as one span per direction over the media time (totals only)."""
    seconds = float(call.get("media_seconds") or 0) or 1.0
    width, lane_h, left = 640, 46, 150
    scale = (width - left - 110) / seconds  # room on the right for the rate label
    rows = (("tx", "sipkit → far end"), ("rx", "far end → sipkit"))
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{40 + lane_h * 2}" '
           'role="img" aria-label="media per direction">']
    timeline = call.get("timeline") or []
    for i, (key, name) in enumerate(rows):
        d = call.get(key) or {}
        y = 14 + lane_h * i
        packets = int(d.get("packets") or 0)
        colour = "#1a7f37" if packets else "#cf222e"
        out.append(f'<text x="4" y="{y + 16}">{escape(name)}</text>')
        # rates between samples only: packets sent before the first sample (the call was
        # answered a moment before the media clock started) would draw a false burst
        points = [(float(p.get("t_s", 0)), int((p.get(key) or {}).get("packets", 0)))
                  for p in timeline]
        rates = [(t, (p - q) / max(t - u, 1e-3)) for (t, p), (u, q) in zip(points[1:], points)]
        if len(rates) >= 2:  # packets per second in each interval: a gap shows as a dip
            top = max(1.0, max(r for _, r in rates))
            coords = " ".join(f"{left + t * scale:.1f},{y + 24 - 20 * r / top:.1f}"
                              for t, r in rates)
            out.append(f'<polyline class="media" points="{coords}" fill="none" '
                       f'stroke="{colour}" stroke-width="2"/>')
            out.append(f'<text x="{left + seconds * scale + 8}" y="{y + 8}" fill="#57606a">'
                       f"max {top:.0f} pkt/s</text>")
        else:
            out.append(f'<rect class="media" x="{left}" y="{y + 4}" width="{seconds * scale:.1f}" '
                       f'height="18" fill="{colour}" opacity="{0.75 if packets else 0.25}"/>')
        loss = d.get("loss_pct")
        jitter = d.get("jitter_ms_mean")
        text = (f"{packets} packets · loss {'unknown' if loss is None else f'{loss:g} %'} · "
                f"jitter {'unknown' if jitter is None else f'{jitter:g} ms'}")
        out.append(f'<text x="{left + 6}" y="{y + 38}" fill="#57606a">{escape(text)}</text>')
    axis_y = 14 + lane_h * 2 + 14
    out.append(f'<text x="{left}" y="{axis_y}" fill="#57606a">0 s</text>')
    out.append(f'<text x="{left + seconds * scale}" y="{axis_y}" text-anchor="end" '
               'fill="#57606a">'
               f'{seconds:g} s</text></svg>')
    return "\n".join(out)


def _call_section(call: dict) -> str:
    facts = [("status", f"{call.get('status')} {call.get('code') or ''} "
                        f"{call.get('reason') or ''}"),
             ("codec", call.get("codec")), ("MOS (E-model, what we hear)", call.get("mos")),
             ("RTT from RTCP", f"{call['rtt_ms']} ms" if call.get("rtt_ms") is not None
              else "unknown (no RTCP reports)"),
             ("setup: first 1xx / answer", f"{call.get('provisional_ms')} ms / "
                                           f"{call.get('answer_ms')} ms"),
             ("media addresses (ours / theirs / RTP came from)",
              f"{call.get('local_media')} / {call.get('remote_media')} / "
              f"{call.get('rtp_source')}"),
             ("verdicts", ", ".join(call.get("verdicts") or []) or "none")]
    if not call.get("timeline"):
        facts.append(("over time", "totals for the whole call (no per-interval samples "
                                   "recorded)"))
    return (media_svg(call) + '<table class="kv">'
            + "".join(f"<tr><td>{escape(k)}</td><td>{escape(str(v))}</td></tr>"
                      for k, v in facts) + "</table>")


def _dialogs(rows: list[dict]) -> str:
    """analyze: the dialogs, problems first, as the terminal table shows them."""
    head = ("Call-ID", "method", "from → to", "final", "packets", "RTP →/←", "problem")
    out = ['<h2>Dialogs</h2><table id="dialogs"><tr>'
           + "".join(f"<th>{escape(h)}</th>" for h in head) + "</tr>"]
    for r in rows[:MAX_DIALOGS]:
        invite = r.get("kind") == "INVITE"
        rtp = f"{r.get('rtp_to_callee')}/{r.get('rtp_to_caller')}" if invite else ""
        problem = r.get("problem") or (f"({r['media']})" if r.get("media") else "")
        cells = (r.get("call_id", "")[:24], r.get("kind"), f"{r.get('from') or '?'} → "
                 f"{r.get('to') or '?'}", r.get("final") or "-", r.get("packets"), rtp, problem)
        out.append("<tr>" + "".join(f"<td>{escape(str(v))}</td>" for v in cells) + "</tr>")
    return "".join(out) + "</table>"


def _message(e: dict) -> str:
    arrow = "→ " if e.get("direction") == "out" else "← "
    return f"<pre>{escape(arrow + (e.get('peer') or ''))}\n{escape(e['text'])}</pre>"


def _kv(data: dict[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    rows = []
    for key, value in data.items():
        if isinstance(value, dict):
            rows += _kv(value, f"{prefix}{key}.")
        else:
            rows.append((f"{prefix}{key}", "" if value is None else str(value)))
    return rows


def render(report: Report, redactor: Redactor, settings: dict[str, Any] | None = None) -> str:
    """The page. ``settings``: the site's public view (no secrets) to show with the report."""
    data = redactor.walk(report.model_dump(mode="json"))
    settings = redactor.walk(settings or {})
    t = data.get("target") or {}
    capture = "capture" in t
    title = "sipkit " + ("" if capture else "check · ") + target_line(t)
    parts = [f"<!doctype html><html lang=en><head><meta charset=utf-8>"
             f'<meta name="viewport" content="width=device-width">'
             f"<title>{escape(title)}</title><style>{_CSS}</style></head><body>",
             f"<h1>{escape(title)} {_badge(data['status'])}</h1>",
             f'<div class="muted">sipkit {escape(data["sipkit_version"])} · started '
             f'{escape(str(data["started_at"]))} · {_ms(data["duration_ms"])}</div>']
    if data.get("options", {}).get("interrupted"):
        parts.append('<p style="color:#9a6700">Interrupted (Ctrl-C): only the checks that '
                     "finished are listed.</p>")
    if data.get("options", {}).get("insecure"):
        parts.append('<p style="color:#9a6700">TLS verification was OFF (--insecure).</p>')
    parts.append('<h2>Verdicts</h2><table id="verdicts"><tr><th>check</th><th>verdict</th>'
                 "<th>cause</th><th>fix</th><th>time</th></tr>")
    for c in data["checks"]:
        parts.append(f'<tr class="check {escape(c["status"])}"><td><a href="#c-{escape(c["id"])}">'
                     f'{escape(c["id"])}</a></td><td>{_badge(c["status"])}</td>'
                     f'<td>{escape(c["summary"])}</td><td class="fix">'
                     f'{escape(c.get("hint") or "")}</td><td>{_ms(c["duration_ms"])}</td></tr>')
    parts.append("</table>")
    if data.get("provisioning"):
        p = data["provisioning"]
        what = p.get("reason") or (p.get("connector") or {}).get("pbx_extension_connector_uuid")
        parts.append(f"<h2>Mihu connector</h2><p>{escape(str(p.get('action')))}: "
                     f"{escape(str(what or ''))}</p>")
    dialogs = next((c["details"].get("dialogs") for c in data["checks"]
                    if c["id"] == "capture" and capture), None)
    if dialogs:
        parts.append(_dialogs(dialogs))
    calls = [c for c in data["checks"] if isinstance((c.get("details") or {}).get("call"), dict)]
    if calls:
        parts.append("<h2>Test calls: media per direction</h2>")
        for c in calls:
            parts.append(f'<h3>{escape(c["id"])} {_badge(c["status"])}</h3><div class="call">'
                         f'{_call_section(c["details"]["call"])}</div>')
    parts.append("<h2>Evidence</h2>")
    quiet = []
    for c in data["checks"]:
        evidence = c.get("evidence") or []
        if not evidence:
            quiet.append(c["id"])
            continue
        parts.append(f'<h3 id="c-{escape(c["id"])}">{escape(c["id"])} {_badge(c["status"])}</h3>')
        svg = sequence_svg(evidence, merge_local_ports=not capture)
        if svg:
            parts.append(f'<div class="ladder" data-check="{escape(c["id"])}">{svg}</div>')
        notes = [e for e in evidence if e.get("kind") != "sip"]
        if notes:
            parts.append("<ul>" + "".join(f"<li>{escape(e['summary'])}</li>" for e in notes)
                         + "</ul>")
        messages = [e for e in evidence if e.get("kind") == "sip" and e.get("text")]
        if messages:
            parts.append(f"<details><summary>{len(messages)} SIP message(s), redacted"
                         "</summary>" + "".join(_message(e) for e in messages) + "</details>")
    if quiet:
        parts.append(f'<p class="muted">no evidence recorded: {escape(", ".join(quiet))}</p>')
    parts.append("<h2>Settings</h2><table class=\"kv\" id=\"settings\">")
    shown = {"target": t, "options": data.get("options") or {}}
    if settings:
        shown["site"] = settings
    for key, value in _kv(shown):
        parts.append(f"<tr><td>{escape(key)}</td><td>{escape(value)}</td></tr>")
    parts.append("</table><p class=muted>Passwords, digest responses and API tokens are "
                 "never written to this page.</p></body></html>")
    return _net(redactor, "\n".join(parts))


def _net(redactor: Redactor, page: str) -> str:
    """The last net: this run's literal secrets, raw or as escaped, replaced by an escaped
    mask. (Redactor's own text pass would write a raw "<redacted>" tag into the page, and
    the digest parameters were masked in the data already.)"""
    for secret in sorted(redactor.secrets, key=len, reverse=True):
        if len(secret) >= 3:
            page = page.replace(secret, escape(MASK)).replace(escape(secret), escape(MASK))
    return page
