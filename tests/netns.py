"""Network namespaces for lab tests (root): namespaces, veth pairs, nft, processes inside.

Everything a ``NetLab`` creates carries its prefix and is removed by ``close()`` (processes
first, by their own pid, then the namespaces, which takes their veths and nft tables along).
Addresses are private ones on veths inside these namespaces only, never the host's network.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Self

NEED = [b for b in ("ip", "nft", "kamailio") if shutil.which(b) is None]
SKIP_REASON = (f"needs root and {', '.join(NEED) or 'ip/nft/kamailio'} for network namespaces "
               "and NAT") if os.geteuid() != 0 or NEED else None


def sh(*cmd: str) -> None:
    subprocess.run(cmd, check=True, capture_output=True)


def tag() -> str:
    return str(os.getpid() % 100000)


class NetLab:
    def __init__(self, prefix: str):
        self.prefix = prefix
        self.namespaces: list[str] = []
        self.procs: list[subprocess.Popen] = []

    def ns(self, name: str) -> str:
        full = f"{self.prefix}{name}"
        sh("ip", "netns", "add", full)
        self.namespaces.append(full)
        sh("ip", "-n", full, "link", "set", "lo", "up")
        return full

    def link(self, a: str, dev_a: str, ip_a: str, b: str, dev_b: str, ip_b: str,
             bits: int = 24) -> None:
        """A veth pair between namespaces ``a`` and ``b``, addressed and up."""
        sh("ip", "link", "add", dev_a, "netns", a, "type", "veth", "peer", "name", dev_b,
           "netns", b)
        for ns, dev, ip in ((a, dev_a, ip_a), (b, dev_b, ip_b)):
            sh("ip", "-n", ns, "addr", "add", f"{ip}/{bits}", "dev", dev)
            sh("ip", "-n", ns, "link", "set", dev, "up")

    def addr(self, ns: str, dev: str, ip: str, bits: int = 24) -> None:
        sh("ip", "-n", ns, "addr", "add", f"{ip}/{bits}", "dev", dev)

    def route(self, ns: str, via: str) -> None:
        sh("ip", "-n", ns, "route", "add", "default", "via", via)

    def router(self, ns: str) -> None:
        sh("ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv4.ip_forward=1")

    def nft(self, ns: str, script: str) -> None:
        proc = subprocess.run(["ip", "netns", "exec", ns, "nft", "-f", "-"], check=False,
                              input=script.encode(), capture_output=True)
        if proc.returncode:
            raise AssertionError(f"nft in {ns}: {proc.stderr.decode()}\n{script}")

    def sysctl(self, ns: str, key: str, value: str) -> None:
        sh("ip", "netns", "exec", ns, "sysctl", "-qw", f"{key}={value}")

    def popen(self, ns: str, argv: list[str], log: Path | None = None, **kw) -> subprocess.Popen:
        out = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115
        proc = subprocess.Popen(["ip", "netns", "exec", ns, *argv], stdout=out, stderr=out,
                                stdin=subprocess.DEVNULL, start_new_session=True, **kw)
        self.procs.append(proc)
        return proc

    def stop(self, proc: subprocess.Popen) -> None:
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)
        if proc in self.procs:
            self.procs.remove(proc)

    def run(self, ns: str, argv: list[str], **kw) -> subprocess.CompletedProcess:
        return subprocess.run(["ip", "netns", "exec", ns, *argv], check=False,
                              capture_output=True, text=True, **kw)

    def close(self) -> None:
        for proc in list(self.procs):
            self.stop(proc)
        for ns in reversed(self.namespaces):
            subprocess.run(["ip", "netns", "del", ns], check=False, capture_output=True)
        self.namespaces.clear()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def kamailio(net: NetLab, ns: str, cfg: Path, rundir: Path, defines: dict[str, str],
             log: Path | None = None) -> subprocess.Popen:
    """Kamailio in ``ns`` with ``-A`` defines (numbers bare, strings quoted)."""
    rundir.mkdir(parents=True, exist_ok=True)
    argv = [shutil.which("kamailio") or "kamailio", "-DD", "-E", "-m", "32", "-M", "8",
            "-Y", str(rundir), "-P", str(rundir / "kamailio.pid")]
    for key, value in defines.items():
        argv += ["-A", f"{key}={value}" if value.isdigit() else f'{key}="{value}"']
    return net.popen(ns, argv + ["-f", str(cfg)], log=log)


def wait_until(pred, seconds: float, what: str, proc: subprocess.Popen | None = None,
               log: Path | None = None) -> None:
    """Poll ``pred`` with a pause until it holds; fail naming ``what`` (and the log tail)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if pred():
            return
        if proc is not None and proc.poll() is not None:
            break
        time.sleep(0.1)
    tail = log.read_text(errors="replace")[-2000:] if log and log.exists() else ""
    raise AssertionError(f"{what} did not come up in {seconds:g} s\n{tail}")


def wait_sip_in(net: NetLab, ns: str, ip: str, port: int, seconds: float = 10) -> bool:
    """OPTIONS from inside ``ns`` until ``ip:port`` answers (sipkit.lab.manager.wait_sip)."""
    import sys

    from tests.conftest import ROOT

    code = ("import sys; from sipkit.lab.manager import wait_sip; "
            f"sys.exit(not wait_sip({ip!r}, {port}, {seconds}))")
    return net.run(ns, [sys.executable, "-c", code], cwd=ROOT).returncode == 0
