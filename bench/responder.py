"""The benchmarks' SIP responder: Kamailio answering OPTIONS statelessly (the shared bench's
own kamailio.cfg, ../shared/bench/kamailio/), on an address of the caller's choosing, UDP and
TCP. Started and stopped by PID; nothing else on the machine is touched."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CFG = Path(os.environ.get("BENCH_KAMAILIO_CFG",
                          ROOT.parent / "shared" / "bench" / "kamailio" / "kamailio.cfg"))
if not CFG.exists():  # run from the main checkout or a worktree
    CFG = Path("/work/shared/bench/kamailio/kamailio.cfg")


def options_ping(ip: str, port: int = 5060, timeout: float = 0.5) -> bool:
    msg = (f"OPTIONS sip:{ip}:{port} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bKping;rport"
           f"\r\nFrom: <sip:p@127.0.0.1>;tag=1\r\nTo: <sip:{ip}>\r\nCall-ID: ping\r\n"
           "CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n").encode()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        try:
            s.sendto(msg, (ip, port))
            return s.recv(4096).startswith(b"SIP/2.0 200")
        except OSError:
            return False


@contextlib.contextmanager
def kamailio(ip: str):
    """Kamailio on ip:5060 (UDP and TCP) for the duration of the block."""
    if not shutil.which("kamailio"):
        raise SystemExit("kamailio is not installed (apt-get install kamailio)")
    run = Path(tempfile.mkdtemp(prefix="sipkit-bench-kam-"))
    proc = subprocess.Popen(
        ["kamailio", "-f", str(CFG), "-l", f"udp:{ip}:5060", "-l", f"tcp:{ip}:5060", "-DD",
         "-E", "-m", "64", "-M", "8", "-A", f'CTL_SOCK="unix:{run}/k.ctl"',
         "-P", str(run / "k.pid"), "-Y", str(run)],
        stdout=subprocess.DEVNULL, stderr=open(run / "kamailio.log", "w"))
    try:
        deadline = time.monotonic() + 15
        while not options_ping(ip):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"kamailio did not start on {ip}: "
                                 f"{(run / 'kamailio.log').read_text()[-800:]}")
            time.sleep(0.2)
        yield proc
    finally:
        stop(proc)
        shutil.rmtree(run, ignore_errors=True)


def stop(proc: subprocess.Popen) -> None:
    """SIGTERM, and SIGKILL if it is still there 10 s later (by PID: our own child)."""
    for signal_it in (proc.terminate, proc.kill):
        signal_it()
        try:
            proc.wait(10)
            return
        except subprocess.TimeoutExpired:
            continue


def sipkit_argv() -> list[str]:
    """`sipkit` of this checkout: $SIPKIT, else this tree's code on the shared venv."""
    import shlex
    import sys

    if os.environ.get("SIPKIT"):
        return shlex.split(os.environ["SIPKIT"])
    return [sys.executable, "-m", "sipkit"]


def sipkit_env() -> dict:
    return {**os.environ, "PYTHONPATH": str(ROOT)}
