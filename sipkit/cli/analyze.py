"""`sipkit analyze CAPTURE`: a dialog table and ranked problems, or the Report as JSON."""

from __future__ import annotations

from pathlib import Path

import click


@click.command()
@click.argument("capture", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the Report as JSON.")
@click.option("--dialogs", type=click.IntRange(0), default=30, show_default=True,
              help="How many dialogs to list.")
def analyze(capture, as_json, dialogs):
    """Diagnose a SIP capture (pcap/pcapng): registrations, calls, retransmissions, SDP, RTP.

    Exit 0: nothing failed; 1: a problem was found; 2: the file cannot be read."""
    from ..analyze import analyze_file
    from ..errors import UsageError
    from ..redact import Redactor

    if not capture.is_file():
        raise UsageError(f"{capture}: no such file")
    try:
        report = analyze_file(str(capture))
    except ValueError as exc:
        raise UsageError(f"{capture}: {exc}") from None
    if as_json:
        from ..render.json import render

        click.echo(render(report, Redactor()))
    else:
        import sys

        from rich.console import Console
        from rich.table import Table

        from ..render.human import render

        rows = report.get("capture").details.get("dialogs", [])[:dialogs]
        if rows:
            t = Table("call-id", "kind", "from → to", "final", "auth", "sent", "RTP ←/→",
                      title=f"dialogs (first {len(rows)})", title_justify="left")
            for r in rows:
                t.add_row(r["call_id"][:20], r["kind"], f"{r['from']} → {r['to']}",
                          r["final"] or "-", f"{r['authenticated_requests']}/{r['challenges']}",
                          str(r["max_sends"]), f"{r['rtp_to_caller']}/{r['rtp_to_callee']}")
            Console(highlight=False, width=None if sys.stdout.isatty() else 120).print(t)
        click.echo(render(report, Redactor()), nl=False)
    click.get_current_context().exit(1 if report.status in ("fail", "error") else 0)
