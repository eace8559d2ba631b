"""Run sipkit on a pseudo-terminal of a given size, as a technician's terminal would."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import signal
import struct
import sys
import termios
import time

from tests.conftest import ROOT

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def visible(text: str) -> str:
    return ANSI.sub("", text).replace("\r", "")


class PtyRun:
    """`sipkit ARGS` on a pty: read its output, optionally send it a signal, wait for it."""

    def __init__(self, *args: str, env: dict | None = None, cols: int = 80, rows: int = 40):
        full = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "COLUMNS")}
        full.update({"TERM": "xterm-256color", "PYTHONPATH": str(ROOT), **(env or {})})
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # the child: size the terminal, then become sipkit
            fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
            os.chdir(ROOT)
            os.execve(sys.executable, [sys.executable, "-m", "sipkit", *args], full)
        self.output = ""
        self.returncode: int | None = None

    def read_until(self, pattern: str, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if re.search(pattern, visible(self.output)):
                return True
            if not self._read(0.2):
                break
        return bool(re.search(pattern, visible(self.output)))

    def _read(self, wait: float) -> bool:
        ready, _, _ = select.select([self.fd], [], [], wait)
        if not ready:
            return True
        try:
            chunk = os.read(self.fd, 65536)
        except OSError:  # EIO: the child closed the terminal
            return False
        if not chunk:
            return False
        self.output += chunk.decode("utf-8", errors="replace")
        return True

    def signal(self, sig: int = signal.SIGINT) -> None:
        os.kill(self.pid, sig)

    def wait(self, timeout: float = 60) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._read(0.2)
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                while self._read(0.05) and select.select([self.fd], [], [], 0)[0]:
                    pass
                os.close(self.fd)
                self.returncode = os.waitstatus_to_exitcode(status)
                return self.returncode
        os.kill(self.pid, signal.SIGKILL)
        os.waitpid(self.pid, 0)
        os.close(self.fd)
        raise AssertionError(f"sipkit did not finish in {timeout} s:\n{visible(self.output)}")


def run_pty(*args: str, env: dict | None = None, cols: int = 80, timeout: float = 60) -> PtyRun:
    run = PtyRun(*args, env=env, cols=cols)
    run.wait(timeout)
    return run


def answer(run: PtyRun, prompt: str, text: str, timeout: float = 30) -> None:
    """Wait for ``prompt`` (a regex) after what was read so far, then type ``text`` + Enter."""
    start = len(visible(run.output))
    deadline = time.monotonic() + timeout
    while not re.search(prompt, visible(run.output)[start:]):
        if time.monotonic() > deadline or not run._read(0.2):
            raise AssertionError(f"no prompt {prompt!r}:\n{visible(run.output)}")
    os.write(run.fd, text.encode() + b"\r")
