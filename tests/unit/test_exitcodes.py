"""The README's exit-code tables are the one table in sipkit/cli/exitcodes.py."""

from __future__ import annotations

import re
from pathlib import Path

from sipkit.cli import exitcodes
from sipkit.cli.main import COMMANDS

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def test_readme_lists_every_code_of_every_command():
    block = README.split("<!-- exit-codes -->")[1].split("<!-- /exit-codes -->")[0]
    rows = dict(re.findall(r"^\| `(\w[\w-]*)` \| ([\d, ]+) \|$", block, re.M))
    listed = {cmd: tuple(int(c) for c in codes.split(",")) for cmd, codes in rows.items()}
    assert listed == exitcodes.BY_COMMAND


def test_every_code_has_a_meaning_in_the_readme():
    for code, meaning in exitcodes.MEANING.items():
        row = re.search(rf"^\| {code} \| (.+) \|$", README, re.M)
        assert row and row.group(1).replace("`", "") == meaning, code


def test_commands_with_codes_exist():
    assert set(exitcodes.BY_COMMAND) <= set(COMMANDS)
