"""Whether a lab component's PID is still ours: `is_ours` decides from /proc's cmdline and
stat alone; a process inside execve(2) shows an empty cmdline and is starting, not dead, but
an empty cmdline of anything else (a zombie, a recycled PID) is never ours."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from sipkit.lab.manager import Component, is_ours

ARGV = ["/usr/sbin/kamailio", "-DD", "-f", "/lab/pbx/kamailio.cfg"]
PID, PARENT = 4242, 1000


def stat(state: str = "R", ppid: int = PARENT, session: int = PID, comm: str = "kamailio"):
    # pid (comm) state ppid pgrp session tty_nr ... as proc(5) lists them
    return f"{PID} ({comm}) {state} {ppid} {session} {session} 0 -1 4194560 0 0 0 0 1 0 0 0"


def ours(cmdline: bytes, stat_line: str = "") -> bool:
    return is_ours(PID, cmdline, stat_line, ARGV, PARENT)


def test_the_same_program_and_config_is_ours():
    assert ours(b"\0".join(map(str.encode, ARGV)) + b"\0")


@pytest.mark.parametrize("cmdline", [
    b"/usr/sbin/kamailio\0-f\0/other-lab/pbx/kamailio.cfg\0",  # another lab's
    b"/usr/bin/python3\0-m\0http.server\0",  # a recycled PID
    b"/usr/bin/python3\0/lab/pbx/kamailio.cfg\0",
])
def test_another_program_or_config_is_not_ours(cmdline):
    assert not ours(cmdline, stat())


def test_an_empty_cmdline_of_our_live_child_is_starting():
    assert ours(b"", stat("R"))
    assert ours(b"", stat("D", comm="python3"))  # the old image's name, mid-exec
    assert ours(b"", stat("S", comm="a) b (c"))  # comm may hold parentheses and spaces


@pytest.mark.parametrize("stat_line", [
    stat("Z"),  # exited at start, not yet reaped
    stat("X"),
    stat("R", ppid=1),  # someone else's process (a recycled PID) that is exec'ing
    stat("R", session=1),  # our child, but not one started in its own session
    stat("I", ppid=2, session=0, comm="kworker/0:1"),  # a kernel thread
    "",  # gone between the two reads
    "4242 (kamailio",  # truncated
])
def test_an_empty_cmdline_of_anything_else_is_not_ours(stat_line):
    assert not ours(b"", stat_line)


def _component(proc: subprocess.Popen, argv: list[str]) -> Component:
    return Component(name="t", pid=proc.pid, argv=argv, log="", endpoint="")


def test_a_real_child_is_alive_until_it_exits_unreaped():
    argv = [sys.executable, "-c", "import sys; sys.stdin.read()"]
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, start_new_session=True)
    comp = _component(proc, argv)
    try:
        assert comp.alive()  # right after Popen: exec'ing or running, never dead
        proc.stdin.close()
        deadline = time.monotonic() + 10
        while "Z" not in Path(f"/proc/{proc.pid}/stat").read_text().rpartition(")")[2][:3]:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert not comp.alive()  # a zombie: its cmdline is empty too
    finally:
        proc.kill()
        proc.wait()
    assert not comp.alive()
