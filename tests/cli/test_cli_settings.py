"""The CLI on bad settings: exit 2, a message naming the field, never a traceback."""

from __future__ import annotations

import time

import pytest
import yaml

from tests.unit.test_settings import GOOD


@pytest.mark.parametrize("change,field", [
    ({"port": 70000}, "port"),
    ({"setup_mode": "x"}, "setup_mode"),
    ({"phone_number": "555"}, "phone_number"),
    ({"allowed_ip": "1.2.3"}, "allowed_ip"),
    ({"pbx_password": "${SIPKIT_TEST_UNSET_VAR}"}, "pbx_password"),
])
def test_bad_settings_exit_2(tmp_path, run_sipkit, change, field):
    p = tmp_path / "site.yaml"
    p.write_text(yaml.safe_dump({**GOOD, **change}))
    proc = run_sipkit("check", "-c", str(p))
    assert proc.returncode == 2, proc.stderr
    assert field in proc.stderr and "Fix:" in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    assert "s3cret" not in proc.stderr + proc.stdout


def test_missing_config_exit_2(run_sipkit):
    proc = run_sipkit("check")
    assert proc.returncode == 2 and "--config" in proc.stderr and "Traceback" not in proc.stderr


def test_unknown_check_id_exit_2(tmp_path, run_sipkit):
    p = tmp_path / "site.yaml"
    p.write_text(yaml.safe_dump(GOOD))
    proc = run_sipkit("check", "-c", str(p), "--only", "nosuchcheck")
    assert proc.returncode == 2 and "nosuchcheck" in proc.stderr


def test_help_is_fast_and_imports_nothing_heavy(run_sipkit):
    import subprocess
    import sys

    code = ("import sys, time; t=time.perf_counter(); from sipkit.cli.main import main; "
            "rc = main(['--help']); "
            "heavy = [m for m in ('pjsua2','scapy','httpx','rich','pydantic','dns') if m in sys.modules]; "
            "print(heavy, round(time.perf_counter()-t, 3))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout
    assert out.strip().splitlines()[-1].startswith("[]"), out
    t0 = time.perf_counter()
    proc = run_sipkit("--help")
    elapsed = time.perf_counter() - t0
    assert proc.returncode == 0 and "check" in proc.stdout
    assert elapsed < 0.5, f"sipkit --help took {elapsed:.2f} s"
