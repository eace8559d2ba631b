"""`sipkit nagios` against the lab PBX: plugin conventions (-H -p -t -w/-c, -V, one line with
perfdata, exit 0/1/2/3); configuration problems are UNKNOWN, never CRITICAL."""

from __future__ import annotations

import re

import pytest

pytestmark = pytest.mark.lab
LINE = re.compile(r"^SIP (OK|WARNING|CRITICAL|UNKNOWN) - [^\n|]+( \| [^\n]+)?$")


def plugin(run_sipkit, *args, env=None):
    proc = run_sipkit("nagios", *args, env=env)
    out = proc.stdout.strip()
    assert LINE.match(out), out + proc.stderr
    assert "Traceback" not in proc.stderr
    return proc.returncode, out


def test_version_and_usage_errors(run_sipkit):
    proc = run_sipkit("nagios", "-V")
    assert proc.returncode == 0 and "sipkit nagios, version" in proc.stdout
    assert plugin(run_sipkit)[0] == 3  # -H missing: UNKNOWN, not click's exit 2
    code, out = plugin(run_sipkit, "-H", "127.0.0.1", "--bogus")
    assert code == 3 and "bogus" in out
    code, out = plugin(run_sipkit, "-H", "127.0.0.1", "-w", "fast")
    assert code == 3 and "not a Nagios range" in out


def test_options_ok_warning_critical(lab, run_sipkit):
    code, out = plugin(run_sipkit, "-H", lab.pbx_ip, "-p", "5060", "-t", "2")
    assert code == 0 and f"{lab.pbx_ip}:5060" in out
    assert re.search(r"\| time=[\d.]+s;;;0 rtt=[\d.]+s;;;0 status=200$", out), out
    code, out = plugin(run_sipkit, "-H", lab.pbx_ip, "-w", "0.000001", "-c", "10")
    assert code == 1 and "outside" in out and "rtt=" in out
    code, out = plugin(run_sipkit, "-H", lab.pbx_ip, "-w", "0.000001", "-c", "0.000001")
    assert code == 2
    code, out = plugin(run_sipkit, "-H", lab.pbx_ip, "-p", "5999", "-t", "1")
    assert code == 2 and "refused" in out  # the server is down: CRITICAL


def test_certificate_days_left(lab, run_sipkit):
    base = ("-H", lab.pbx_ip, "-p", "5061", "-P", "tls", "--ca-file", str(lab.ca_file))
    code, out = plugin(run_sipkit, *base)
    assert code == 0 and "days_left=" in out
    assert plugin(run_sipkit, *base, "-w", "100000")[0] == 1  # fewer than 100000 days
    assert plugin(run_sipkit, *base, "-w", "100000", "-c", "99999")[0] == 2
    expired = ("-H", lab.tls_expired_ip, "-p", "5061", "-P", "tls", "--ca-file", str(lab.ca_file))
    assert plugin(run_sipkit, *expired)[0] == 2


def test_register_credentials_are_configuration(lab, run_sipkit):
    base = ("-H", lab.pbx_ip, "-P", "register", "-u", "100", "--password-env", "SK_NAGIOS_PW")
    code, out = plugin(run_sipkit, *base, env={"SK_NAGIOS_PW": ""})
    assert code == 3 and "SK_NAGIOS_PW is not set" in out
    code, out = plugin(run_sipkit, *base, env={"SK_NAGIOS_PW": lab.passwords()["100"]})
    assert code == 0, out
    assert lab.passwords()["100"] not in out


def test_bad_probes_yaml_lists_every_field_error(tmp_path, run_sipkit):
    bad = tmp_path / "probes.yaml"
    bad.write_text("modules:\n  a: {prober: pingg}\n  b: {prober: options, timeout: -1}\n")
    code, out = plugin(run_sipkit, "-H", "127.0.0.1", "--config", str(bad), "--module", "a")
    assert code == 3
    assert "modules.a.prober" in out and "modules.b.timeout" in out
