"""Human output: a table of verdicts, then cause and fix for each warn/fail, evidence with -v."""

from __future__ import annotations

import os
import shutil
import textwrap
from io import StringIO

from rich.console import Console
from rich.table import Table
from rich.text import Text

from ..net.addresses import hostport
from ..redact import Redactor
from ..report import CheckResult, Report, target_line

STYLE = {"pass": "green", "warn": "yellow", "fail": "bold red", "skip": "dim", "error": "magenta"}
MARK = {"pass": "✔", "warn": "!", "fail": "✖", "skip": "-", "error": "?"}


PIPED_WIDTH = 110  # piped output: wide enough for logs, not squeezed to a guessed 80


def screen(stream, color: bool | None = None) -> tuple[bool, int]:
    """Colour and width for output going to ``stream``: colour on a terminal unless NO_COLOR
    is set (https://no-color.org; an explicit --color/--no-color wins); the terminal's width,
    or $COLUMNS, or PIPED_WIDTH when piped."""
    tty = stream.isatty()
    if color is None:
        color = tty and not os.environ.get("NO_COLOR")
    if tty:
        width = shutil.get_terminal_size((PIPED_WIDTH, 24)).columns
    else:
        cols = os.environ.get("COLUMNS", "")
        width = int(cols) if cols.isdigit() and int(cols) >= 40 else PIPED_WIDTH
    return color, width


def _ms(value: float) -> str:
    return f"{value / 1000:.2f} s" if value >= 1000 else f"{value:.0f} ms"


def status_cell(status: str) -> Text:
    return Text(f"{MARK[status]} {status.upper()}", style=STYLE[status])


def _evidence(console: Console, result: CheckResult, full: bool) -> None:
    """SIP as a ladder; other evidence one line each; whole messages when ``full``."""
    from .ladder import ladder

    for line in ladder(result.evidence):
        console.print(Text(f"    {line}", style="cyan"))
    for ev in result.evidence:
        if ev.kind != "sip":
            at = f"{ev.at_ms:7.1f} ms " if ev.at_ms is not None else ""
            console.print(Text(f"    {at}· {ev.summary}", style="cyan"))
    if full:
        for ev in result.evidence:
            if ev.text:
                arrow = {"out": "→", "in": "←"}.get(ev.direction or "", "·")
                console.print(Text(f"    {arrow} {ev.peer or ''}", style="bold"))
                for line in ev.text.rstrip().splitlines():
                    console.print(Text(f"        {line}", style="dim"))


def _paragraph(console: Console, prefix: str, style: str, body: str, indent: int) -> None:
    """``prefix`` in ``style``, then ``body`` wrapped to the console with a hanging indent, so a
    cause or a fix stays one block on a narrow terminal."""
    lines = textwrap.wrap(prefix + body, width=console.width, subsequent_indent=" " * indent,
                          break_on_hyphens=False, break_long_words=False) or [prefix]
    text = "\n".join(lines)
    console.print(Text.assemble((text[:len(prefix)], style), text[len(prefix):]))


def _provisioning(console: Console, prov: dict, kind: str | None = None) -> None:
    console.print()
    action = prov.get("action")
    if action in ("none", "error"):
        what = "SIP trunk: " if kind == "sip_trunk" else "Mihu connector: "
        console.print(Text.assemble((what, "bold"),
                                    (prov.get("reason", ""), "red" if action == "error" else "")))
        return
    if "trunk" in prov:  # a SIP trunk (sipkit.mihu.trunk_provision)
        words = {"created": "created", "exists": "already existed with these settings",
                 "replaced": "replaced", "updated": "updated"}[action]
        console.print(Text.assemble(("SIP trunk ", "bold"), (words, "green"),
                                    f": {prov['id']} · {prov['key']} · api {prov['api']}"))
        for note in prov.get("notes", ()):
            console.print(Text(f"  note: {note}", style="dim"))
        return
    c = prov["connector"]
    words = {"created": "created", "exists": "already existed with these settings",
             "replaced": "replaced"}[action]
    console.print(Text.assemble(("Mihu connector ", "bold"), (words, "green"),
                                f": {c['pbx_extension_connector_uuid']} · {c['phone_number']} → "
                                f"ext {c['pbx']['username_extension']} on "
                                f"{hostport(c['pbx']['registrar_server'], c['pbx']['port'])} · "
                                f"SIP connector server {prov.get('sip_connector_server')} "
                                f"({prov.get('server_action')}) · status {c['status']}"))


def render(report: Report, redactor: Redactor, verbose: int = 0, color: bool | None = None,
           width: int | None = None) -> str:
    buf = StringIO()
    console = Console(file=buf, force_terminal=color, no_color=color is False,
                      color_system="standard" if color else None,
                      width=width or PIPED_WIDTH, highlight=False, soft_wrap=False)
    head = f"sipkit {report.sipkit_version} · {target_line(report.target)}"
    console.print(Text(head, style="bold"))
    if report.options.get("interrupted"):
        console.print(Text("interrupted (Ctrl-C): only the checks that finished are listed",
                           style="yellow"))
    if report.pbx:  # the fingerprint (sipkit.pbx), one line
        console.print(Text(f"PBX: {report.pbx.get('label')} (confidence "
                           f"{report.pbx.get('confidence', 0):.2f}; "
                           f"{report.pbx.get('requests_sent', 0)} requests sent)", style="dim"))
    if report.options.get("insecure"):
        console.print(Text("TLS verification is OFF (--insecure): certificate problems are "
                           "reported but do not fail", style="yellow"))
    table = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
    table.add_column("check", no_wrap=True)
    table.add_column("verdict", no_wrap=True)
    table.add_column("summary", overflow="fold")
    table.add_column("time", justify="right", no_wrap=True)
    for c in report.checks:
        table.add_row(c.id, status_cell(c.status), c.summary, _ms(c.duration_ms))
    console.print(table)

    problems = [c for c in report.checks if c.status in ("warn", "fail", "error")]
    for c in problems:
        console.print()
        _paragraph(console, f"{MARK[c.status]} {c.id}: ", STYLE[c.status], c.summary, 2)
        if c.hint:
            _paragraph(console, "  fix: ", "bold", c.hint, 7)
    if verbose:  # -v: one line per message, whole messages for problems; -vv: all whole
        for c in report.checks:
            if c.evidence:
                console.print()
                console.print(Text(f"evidence · {c.id}", style="bold"))
                _evidence(console, c, full=verbose > 1 or c.status not in ("pass", "skip"))
    if report.provisioning is not None:
        _provisioning(console, report.provisioning, report.target.get("kind"))
    counts = {s: sum(1 for c in report.checks if c.status == s)
              for s in ("fail", "warn", "error", "skip", "pass")}
    parts = [f"{n} {s}" for s, n in counts.items() if n]
    console.print()
    console.print(Text.assemble(("Result: ", "bold"), status_cell(report.status),
                                f"  ({', '.join(parts)}) in {_ms(report.duration_ms)}"))
    # rich pads table cells to the width: trailing blanks only get in the way of a paste
    return redactor("\n".join(line.rstrip() for line in buf.getvalue().split("\n")))
