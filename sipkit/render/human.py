"""Human output: a table of verdicts, then cause and fix for each warn/fail, evidence with -v."""

from __future__ import annotations

from io import StringIO

from rich.console import Console
from rich.table import Table
from rich.text import Text

from ..net.addresses import hostport
from ..redact import Redactor
from ..report import CheckResult, Report, target_line

STYLE = {"pass": "green", "warn": "yellow", "fail": "bold red", "skip": "dim", "error": "magenta"}
MARK = {"pass": "✔", "warn": "!", "fail": "✖", "skip": "-", "error": "?"}


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
                      width=width or 110, highlight=False, soft_wrap=False)
    head = f"sipkit {report.sipkit_version} · {target_line(report.target)}"
    console.print(Text(head, style="bold"))
    if report.options.get("insecure"):
        console.print(Text("TLS verification is OFF (--insecure): certificate problems are "
                           "reported but do not fail", style="yellow"))
    table = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
    table.add_column("check")
    table.add_column("verdict", no_wrap=True)
    table.add_column("summary", overflow="fold")
    table.add_column("time", justify="right", no_wrap=True)
    for c in report.checks:
        table.add_row(c.id, status_cell(c.status), c.summary, _ms(c.duration_ms))
    console.print(table)

    problems = [c for c in report.checks if c.status in ("warn", "fail", "error")]
    for c in problems:
        console.print()
        console.print(Text.assemble((f"{MARK[c.status]} {c.id}: ", STYLE[c.status]), c.summary))
        if c.hint:
            console.print(Text.assemble(("  fix: ", "bold"), c.hint))
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
    return redactor(buf.getvalue())
