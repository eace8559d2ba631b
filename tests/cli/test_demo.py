"""The README's main command, `make demo`, in a lab of its own."""

from __future__ import annotations

import os
import subprocess

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.lab


def test_make_demo(tmp_path):
    env = {**os.environ, "SIPKIT_LAB_DIR": str(tmp_path / "lab"), "NO_COLOR": "1",
           "SIPKIT_LAB_PREFIX": f"127.0.{150 + os.getpid() % 40}"}
    try:
        proc = subprocess.run(["make", "demo"], cwd=ROOT, env=env, capture_output=True,
                              text=True, timeout=300)
        out = proc.stdout + proc.stderr
        assert proc.returncode == 0, out[-3000:]
        assert "Mihu connector created" in out and "Result: ✔ PASS" in out
        for cid in ("register", "allowed_ip", "call_inbound", "call_outbound", "credentials",
                    "secondary_gateway"):
            assert cid in out
        assert "trunk lab-carrier" in out and out.count("Result: ✔ PASS") == 3  # check, verify, trunk
        again = subprocess.run(["make", "demo"], cwd=ROOT, env=env, capture_output=True,
                               text=True, timeout=300)
        assert again.returncode == 0 and "already existed" in again.stdout
    finally:
        subprocess.run([str(ROOT / ".venv/bin/sipkit"), "lab", "down"], env=env,
                       capture_output=True)
