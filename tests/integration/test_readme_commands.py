"""The README's commands work as pasted: every fenced block after a `<!-- runnable -->` marker
runs against a real lab, as a newcomer would paste it — `sipkit` on the PATH, `~` as the home
of the default lab folder, no SIPKIT_* variables but those the block sets itself.

A ```sh block runs as one bash script (so `source lab.env` reaches the lines after it) and
must exit 0; in a ```console block each `$ command` must print exactly the lines under it.
The README's lab addresses are the default prefix (127.0.0.x); here they are the session
lab's."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.lab
README = (ROOT / "README.md").read_text()
BLOCK = re.compile(r"<!-- runnable[^>]*-->\s*\n```(sh|console)\n(.*?)```", re.S)
BLOCKS = BLOCK.findall(README)


def test_the_readme_marks_its_runnable_blocks():
    assert len(BLOCKS) >= 4
    assert README.count("<!-- runnable") == len(BLOCKS)  # no marker without its block


@pytest.fixture
def newcomer(lab, tmp_path):
    """A shell like a newcomer's: HOME with the lab in its default folder, sipkit on PATH."""
    home = tmp_path / "home"
    (home / ".local/state/sipkit").mkdir(parents=True)
    (home / ".local/state/sipkit/lab").symlink_to(lab.directory)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    shim = bin_dir / "sipkit"
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m sipkit "$@"\n')
    shim.chmod(0o755)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("SIPKIT_") and k not in ("XDG_STATE_HOME", "NO_COLOR")}
    path = os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
    env.update({"HOME": str(home), "PATH": f"{bin_dir}:{path}", "PYTHONPATH": str(ROOT),
                "COLUMNS": "100", "TERM": "dumb"})
    work = tmp_path / "work"
    work.mkdir()
    return lab, env, work


def _local(text: str, lab) -> str:
    return text.replace("127.0.0.", f"{lab.prefix}.")


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_block_runs_as_pasted(index, newcomer):
    lab, env, work = newcomer
    lang, body = BLOCKS[index]
    body = _local(body, lab)
    if lang == "sh":
        proc = subprocess.run(["bash", "-e", "-o", "pipefail", "-x", "-c", body], cwd=work,
                              env=env, capture_output=True, text=True, timeout=300)
        out = proc.stdout + proc.stderr
        assert proc.returncode == 0, f"block {index} failed:\n{out[-4000:]}"
        assert "Traceback" not in out and "internal error" not in out
        return
    # console: `$ command` lines, each followed by what it prints
    steps = re.split(r"^\$ ", body, flags=re.M)[1:]
    assert steps
    for step in steps:
        command, _, expected = step.partition("\n")
        proc = subprocess.run(["bash", "-c", command], cwd=work, env=env, capture_output=True,
                              text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.rstrip("\n") == expected.rstrip("\n"), command
