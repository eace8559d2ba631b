"""`probe run --workers N`: N-1 helper processes probe their shard of the targets file (see
``targets.TargetReader``'s ``shard``) and pipe their output lines to the parent, which
writes them into its own stream: one stdout, whole lines only, one summary.

A helper is this CLI again with the hidden ``--shard k/N``; its last stdout line is its
summary (``SUMMARY_KEY``), which the parent folds into its own instead of printing.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Callable

SUMMARY_KEY = b'{"_sipkit_shard_summary":'


def split_summary(block: bytes) -> tuple[bytes, dict | None]:
    """A block of a helper's whole lines, less its summary line (the helper's last), and that
    summary. Only a line's start counts: a text-mode FAIL line may quote a server's reason
    phrase, and anything in a JSON line is inside a string, where quotes are escaped."""
    if block.startswith(SUMMARY_KEY):
        at = 0
    else:
        at = block.find(b"\n" + SUMMARY_KEY) + 1
        if not at:
            return block, None
    end = block.index(b"\n", at)
    summary = json.loads(block[at:end])["_sipkit_shard_summary"]
    return block[:at] + block[end + 1:], summary


def shard_argv(base: list[str], k: int, n: int) -> list[str]:
    return [sys.executable, "-m", "sipkit", "probe", "run", *base, "--shard", f"{k}/{n}"]


class Helpers:
    def __init__(self, base_args: list[str], n: int):
        self.procs = [subprocess.Popen(shard_argv(base_args, k, n), stdout=subprocess.PIPE,
                                       stdin=subprocess.DEVNULL)
                      for k in range(1, n)]
        self.summaries: list[dict] = []

    async def collect(self, write: Callable[[bytes], None]) -> list[int]:
        """Forward every helper's lines to ``write`` (blocks of whole lines, each ending in
        a newline) until they exit; their exit codes."""
        loop = asyncio.get_running_loop()
        done = []
        for proc in self.procs:
            fd = proc.stdout.fileno()
            os.set_blocking(fd, False)
            fut = loop.create_future()
            rest = bytearray()

            def readable(fd=fd, fut=fut, rest=rest) -> None:
                try:
                    data = os.read(fd, 1 << 20)
                except BlockingIOError:
                    return
                if data:
                    rest.extend(data)
                    cut = rest.rfind(b"\n")
                    if cut < 0:
                        return
                    lines, summary = split_summary(bytes(rest[:cut + 1]))
                    if summary is not None:
                        self.summaries.append(summary)
                    write(lines)
                    del rest[:cut + 1]
                    return
                loop.remove_reader(fd)
                if rest.strip():  # a helper cut off mid-line: its part, as a whole line
                    write(bytes(rest) + b"\n")
                fut.set_result(None)

            loop.add_reader(fd, readable)
            done.append(fut)
        await asyncio.gather(*done)
        return [await asyncio.to_thread(p.wait) for p in self.procs]

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
