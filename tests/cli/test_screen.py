"""Reports that fit: the final table follows the terminal's width, keeps colour on a terminal,
and honours NO_COLOR; piped output follows $COLUMNS."""

from __future__ import annotations

from pathlib import Path

import pytest

from sipkit.settings import load_site
from tests.terminal import ANSI, run_pty, visible

SITE = """agent_uuid: 3c90c3cc-0d44-4b50-8888-8dd25736052a
phone_number: "+12084439178"
registrar_server: 192.0.2.10
username_extension: "100"
pbx_password: not-a-real-one
allowed_ip: 192.0.2.10
connection_type: tls
port: 5060
"""


def site(tmp_path: Path) -> str:
    path = tmp_path / "site.yaml"
    path.write_text(SITE)
    return str(path)


def long_lines(text: str, width: int) -> list[str]:
    return [line for line in visible(text).splitlines() if len(line) > width]


def test_terminal_of_80_columns_gets_colour_and_fits(tmp_path):
    run = run_pty("check", "-c", site(tmp_path), "--only", "config", cols=80)
    assert run.returncode in (0, 1), visible(run.output)
    assert ANSI.search(run.output), "no colour on a terminal"
    text = visible(run.output)
    assert "Result:" in text and "config" in text
    assert not long_lines(text, 80), long_lines(text, 80)
    wide = run_pty("check", "-c", site(tmp_path), "--only", "config", cols=160)
    # a wider terminal is used: the summary is folded on fewer lines
    assert len(visible(wide.output).splitlines()) < len(text.splitlines())


def test_no_color_is_honoured_on_a_terminal(tmp_path):
    run = run_pty("check", "-c", site(tmp_path), "--only", "config", env={"NO_COLOR": "1"})
    assert "Result:" in run.output
    assert not ANSI.search(run.output.split("Result:")[-1])
    assert not ANSI.search(visible(run.output))
    # the final report carries no colour codes (the live view is cleared before it)
    final = run.output[run.output.find("sipkit "):]
    assert "\x1b[3" not in final and "\x1b[1m" not in final


def test_piped_output_follows_columns(tmp_path, run_sipkit):
    proc = run_sipkit("check", "-c", site(tmp_path), "--only", "config", env={"COLUMNS": "80"})
    assert "Result:" in proc.stdout and not ANSI.search(proc.stdout)
    assert not long_lines(proc.stdout, 80)
    forced = run_sipkit("check", "-c", site(tmp_path), "--only", "config", "--color")
    assert ANSI.search(forced.stdout)


@pytest.mark.lab
def test_connector_list_on_80_columns_never_cuts_a_phone_number(lab, run_sipkit):
    env = lab.env()
    made = run_sipkit("connector", "create", "--config", str(lab.site_file), "--skip-checks",
                      env=env)
    assert made.returncode == 0, made.stdout + made.stderr
    number = load_site(lab.site_file).phone_number
    run = run_pty("connector", "list", env=env, cols=80)
    text = visible(run.output)
    assert run.returncode == 0, text
    assert number in text  # whole, on one line
    assert "…" not in text and not long_lines(text, 80)
