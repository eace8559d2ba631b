"""A lab folder's state follows its prefix: `lab up` on a folder running another prefix
refuses with a clear message; on a stopped one it forgets the old addresses (the API
database named the old connector server) instead of reusing them. lab.env works with
`source`."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from sipkit.errors import UsageError
from sipkit.lab.manager import Lab
from tests.conftest import report_of

pytestmark = pytest.mark.lab


def two_prefixes() -> tuple[str, str]:
    # away from the session labs (127.10-89.x, tests/conftest.py) and the demo (127.0.0)
    pid = os.getpid()
    b, c = 90 + pid % 80, (pid // 80) % 250
    return f"127.{b}.{c}", f"127.{b}.{(c + 1) % 250}"


def test_lab_folder_follows_the_prefix(tmp_path, run_sipkit):
    first, second = two_prefixes()
    folder = tmp_path / "lab"
    a = Lab(directory=folder, prefix=first)
    try:
        a.up()
        env = a.env()
        server = report_of(run_sipkit("server", "allocate", "--json", env=env))
        assert json.dumps(server).count(f"{first}.2"), server
        # another prefix on the running folder: refused, naming both and the way out
        proc = run_sipkit("lab", "up", "--dir", str(folder), "--prefix", second)
        assert proc.returncode == 2
        assert f"running on {first}.x, not {second}.x" in proc.stderr
        assert "sipkit lab down --dir" in proc.stderr and "Traceback" not in proc.stderr
        with pytest.raises(UsageError):
            Lab(directory=folder, prefix=second).up()
    finally:
        a.down()
    # stopped: the folder is taken over by the new prefix, without the old API state
    b = Lab(directory=folder, prefix=second)
    try:
        b.up()
        assert (folder / "prefix").read_text().strip() == second
        env = b.env()
        assert env["SIPKIT_API_URL"] == f"http://{second}.4:8080"
        server = report_of(run_sipkit("server", "allocate", "--json", env=env))
        text = json.dumps(server)
        assert f"{second}.2" in text and f"{first}.2" not in text, server
        # `lab status` without --prefix finds the prefix the folder was started with
        assert run_sipkit("lab", "status", "--dir", str(folder)).returncode == 0
        # lab.env is written for `source`
        out = subprocess.run(["bash", "-c", f'source "{b.env_file}" && bash -c '
                              '"echo \\$SIPKIT_API_URL \\$SIPKIT_API_TOKEN_FILE"'],
                             capture_output=True, text=True, timeout=10).stdout.split()
        assert out == [b.api_url, str(b.token_file)]
    finally:
        b.down()
