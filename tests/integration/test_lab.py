"""The lab itself: idempotent up, real peers answering, down leaves nothing behind."""

from __future__ import annotations

import os
from pathlib import Path

from sipkit.lab.manager import Lab, sip_ping


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "State:\tZ" not in state  # a zombie has exited


def test_lab_peers_answer(lab):
    assert sip_ping(lab.pbx_ip, 5060, 1.0)
    assert sip_ping(lab.connector_ip, 5060, 1.0)
    assert sip_ping(lab.echo_ip, 5060, 1.0)
    assert all(row["answering"] for row in lab.status())
    assert lab.site_file.exists() and lab.tls_site_file.exists()
    assert oct(lab.site_file.stat().st_mode & 0o777) == "0o600"


def test_up_twice_is_harmless(lab):
    before = {c.name: c.pid for c in lab.components()}
    summary = lab.up()
    assert summary["started"] == []
    assert {c.name: c.pid for c in lab.components()} == before


def test_down_leaves_no_process(tmp_path):
    second = Lab(directory=tmp_path / "lab2", prefix=f"127.0.{200 + os.getpid() % 50}")
    second.up()
    pids = [c.pid for c in second.components()]
    assert pids and all(_alive(p) for p in pids)
    # Kamailio forks workers; they must go too.
    children = [int(p) for p in os.listdir("/proc") if p.isdigit()
                and _ppid(int(p)) in pids]
    result = second.down()
    assert {"pbx", "connector", "echo"} <= set(result["stopped"])
    assert not any(_alive(p) for p in pids + children)
    assert second.down()["stopped"] == []  # down twice is harmless too


def _ppid(pid: int) -> int | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return int(fields[1])
    except (OSError, IndexError, ValueError):
        return None


def test_cli_lab_status_and_json(lab, run_sipkit):
    proc = run_sipkit("lab", "status", "--dir", str(lab.directory))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "pbx" in proc.stdout and "up" in proc.stdout


def test_missing_binaries_name_the_debian_packages(run_sipkit, tmp_path):
    proc = run_sipkit("lab", "up", "--dir", str(tmp_path / "nolab"), "--prefix", "127.0.249",
                      env={"PATH": str(tmp_path)})  # nothing on PATH: no kamailio, no sipp
    assert proc.returncode == 3 and "Traceback" not in proc.stderr
    assert "apt-get install kamailio" in proc.stderr and "apt-get install sip-tester" in proc.stderr
