"""Shared fixtures: the real lab, once per test session, on its own loopback /24."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tracemalloc
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SIPKIT = [sys.executable, "-m", "sipkit"]


def _prefix() -> str:
    """A /24 of 127/8 per test session, away from the demo lab (127.0.0) and the blocks
    individual tests use (127.0.x), so concurrent runs do not collide."""
    env = os.environ.get("SIPKIT_TEST_LAB_PREFIX")
    if env:
        return env
    pid = os.getpid()
    return f"127.{10 + pid % 80}.{(pid // 80) % 250}"


@pytest.fixture(scope="session", autouse=True)
def state_dir(tmp_path_factory):
    """sipkit's state (create locks, probe lockout) in the session's temporary directory,
    never the home of whoever runs the tests; subprocesses inherit it."""
    path = tmp_path_factory.mktemp("state")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SIPKIT_STATE_DIR", str(path))
        yield path


@pytest.fixture
def peak_memory():
    """``measure(fn, *args)``: fn's result and the most memory it had allocated at once
    (tracemalloc), for tests that a hostile input is refused without being built."""
    def measure(fn, *args):
        tracemalloc.start()
        try:
            return fn(*args), tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    return measure


@pytest.fixture(scope="session")
def lab(tmp_path_factory):
    from sipkit.lab.manager import Lab

    lab = Lab(directory=tmp_path_factory.mktemp("lab"), prefix=_prefix())
    lab.up()
    yield lab
    lab.down()


@pytest.fixture
def no_connectors(lab):
    """No connector in the lab's API: the lab's connector server registers to the PBX as
    extension 100 for every connector (as the cloud does), so tests that count extension 100's
    bindings start without the cloud's. Deleting one waits for its un-REGISTER."""
    from sipkit.mihu.client import MihuClient
    from sipkit.mihu.config import ApiSettings
    from pydantic import SecretStr

    api = ApiSettings(lab.api_url, SecretStr(lab.token()))
    with MihuClient.from_settings(api) as client:
        for conn in list(client.iter_connectors()):
            client.delete_connector(conn.pbx_extension_connector_uuid)


@pytest.fixture
def run_sipkit():
    """Run the CLI in a subprocess, as a user would; returns CompletedProcess (text)."""

    def run(*args: str, env: dict | None = None, timeout: float = 60, input: str | None = None):
        full_env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "120", **(env or {})}
        return subprocess.run([*SIPKIT, *args], capture_output=True, text=True, env=full_env,
                              timeout=timeout, input=input, cwd=ROOT)

    return run


def at_once(*commands: tuple[str, ...], env: dict, timeout: float = 90,
            envs: list[dict] | None = None) -> list:
    """Start every command as its own CLI process at the same moment (a script's
    `xargs -P`); ``envs``: one more dict per command. Returns their CompletedProcess (text),
    in order."""
    base = {**os.environ, "NO_COLOR": "1", "COLUMNS": "120", **env}
    procs = [subprocess.Popen([*SIPKIT, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, env={**base, **extra}, cwd=ROOT)
             for args, extra in zip(commands, envs or [{}] * len(commands))]
    done = []
    for proc in procs:
        out, err = proc.communicate(timeout=timeout)
        done.append(subprocess.CompletedProcess(proc.args, proc.returncode, out, err))
    return done


def yaml_variant(source: Path, tmp_path: Path, **changes) -> Path:
    """A copy of a site file with ``changes`` applied: ``key=value``, ``outer.inner=value``
    for the check: section, ``key=None`` to remove a field."""
    import yaml

    data = yaml.safe_load(source.read_text())
    for key, value in changes.items():
        outer, _, inner = key.rpartition(".")
        node = data.setdefault(outer, {}) if outer else data
        if value is None:
            node.pop(inner, None)
        else:
            node[inner] = value
    path = tmp_path / f"{source.stem}-{os.urandom(3).hex()}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def report_of(proc) -> dict:
    """Parse --json output, failing with the process's stderr if it is not JSON."""
    try:
        return json.loads(proc.stdout)
    except ValueError:
        raise AssertionError(f"not JSON (rc={proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
