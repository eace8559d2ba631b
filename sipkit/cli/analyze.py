"""`sipkit analyze CAPTURE`: a dialog table and ranked problems, or the Report as JSON."""

from __future__ import annotations

from pathlib import Path

import click


@click.command()
@click.argument("capture", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the Report as JSON (same shape as "
              "`sipkit check --json`).")
@click.option("--dialogs", type=click.IntRange(0), default=30, show_default=True,
              help="How many dialogs to list (problems first).")
@click.option("--html", "html_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write a self-contained HTML page: verdicts, example ladders as "
                   "sequence diagrams.")
@click.option("-v", "--verbose", count=True, help="Show a SIP ladder of an example dialog for "
              "each problem.")
def analyze(capture, as_json, dialogs, verbose, html_file):
    """Diagnose a SIP capture (pcap/pcapng): registrations, auth loops, calls and their
    answers, retransmissions, SDP addresses, NAT, RTP each way.

    Exit 0: nothing failed; 1: a problem was found; 2: the file cannot be read."""
    from ..analyze import analyze_file
    from ..errors import UsageError
    from ..redact import Redactor

    if not capture.exists():
        raise UsageError(f"{capture}: no such file")
    if not capture.is_file():
        raise UsageError(f"{capture}: not a regular file")
    try:
        report = analyze_file(str(capture))
    except PermissionError:
        raise UsageError(f"{capture}: permission denied (captures made as root are often "
                         "0600: sudo chown or chmod it)") from None
    except (ValueError, OSError) as exc:
        raise UsageError(f"{capture}: {exc}") from None
    redactor = Redactor()
    if html_file is not None:
        from ..render.html import render as render_html

        html_file.write_text(render_html(report, redactor), encoding="utf-8")
    if as_json:
        from ..render.json import render

        click.echo(render(report, redactor))
    else:
        import sys

        from ..render.human import render, screen

        color, width = screen(sys.stdout)
        cap = report.get("capture")
        rows = (cap.details.get("dialogs", []) if cap else [])[:dialogs]
        if rows:
            click.echo(dialog_table(rows, width), nl=False)
        click.echo(render(report, redactor, verbose=verbose, color=color, width=width), nl=False,
                   color=color)
    click.get_current_context().exit(1 if report.status in ("fail", "error") else 0)


def dialog_table(rows: list[dict], width: int | None = None) -> str:
    """The dialogs as a text table: Call-ID, method, from → to, final answer, SIP packets,
    RTP each way (caller→callee / callee→caller), and the problem if any."""
    from io import StringIO

    from rich.console import Console
    from rich.table import Table

    t = Table(title=f"dialogs (first {len(rows)}, problems first)", title_justify="left",
              header_style="bold")
    for name, kw in (("Call-ID", {"no_wrap": True}), ("method", {}), ("from → to", {}),
                     ("final", {}), ("pkts", {"justify": "right"}),
                     ("RTP →/←", {"justify": "right", "no_wrap": True}), ("problem", {})):
        t.add_column(name, **kw)
    for r in rows:
        rtp = f"{r['rtp_to_callee']}/{r['rtp_to_caller']}" if r["kind"] == "INVITE" else ""
        t.add_row(r["call_id"][:20], r["kind"], f"{r['from'] or '?'} → {r['to'] or '?'}",
                  r["final"] or "-", str(r["packets"]), rtp,
                  r["problem"] or (f"({r['media']})" if r.get("media") else ""))
    buf = StringIO()
    Console(file=buf, highlight=False, width=width or 120, soft_wrap=False).print(t)
    return buf.getvalue()
