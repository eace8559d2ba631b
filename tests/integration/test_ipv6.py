"""IPv6: the lab PBX also listens on [::1] (a port per lab); sipkit's signalling checks, the
pcap, the analyzer and the probes work there; test calls say plainly they cannot."""

from __future__ import annotations

import asyncio
import shutil
import subprocess

import pytest
import yaml

from sipkit.analyze import analyze_file
from sipkit.lab.manager import ipv6_loopback
from tests.conftest import report_of

pytestmark = [pytest.mark.lab,
              pytest.mark.skipif(not ipv6_loopback(), reason="IPv6 is disabled here (::1 cannot "
                                 "be bound)")]
SKIP = ("--skip", "allowed_ip,call_inbound")


def checks(rep: dict) -> dict:
    return {c["id"]: c for c in rep["checks"]}


def test_signalling_checks_over_ipv6_with_pcap(lab, run_sipkit, tmp_path, no_connectors):
    pcap = tmp_path / "v6.pcap"
    proc = run_sipkit("check", "-c", str(lab.ipv6_site_file), *SKIP, "--json", "--pcap",
                      str(pcap))
    rep = report_of(proc)
    got = checks(rep)
    assert proc.returncode == 0, {k: v["summary"] for k, v in got.items()}
    port = lab.pbx_port6
    for cid in ("config", "dns", "transport", "register"):
        assert got[cid]["status"] == "pass", got[cid]
    assert f"UDP [::1]:{port} answered 200 OK" in got["transport"]["summary"]
    assert got["register"]["summary"].startswith("registered 100@[::1]")
    assert got["call_outbound"]["status"] == "skip" and "IPv6" in got["call_outbound"]["summary"]
    sip = [e for c in rep["checks"] for e in c["evidence"] if e["kind"] == "sip"]
    assert sip and all(e["peer"] == f"[::1]:{port}" for e in sip)
    if shutil.which("tshark"):
        out = subprocess.run(["tshark", "-r", str(pcap), "-d", f"udp.port=={port},sip", "-Y",
                              "sip && ipv6.dst == ::1", "-T", "fields", "-e", "sip.CSeq"],
                             capture_output=True, text=True, timeout=60, check=True)
        assert len(out.stdout.split()) // 2 == len(sip)  # "N METHOD" per message
    assert yaml.safe_load(lab.ipv6_site_file.read_text())["pbx_password"].encode() \
        not in pcap.read_bytes()
    diag = {c.id: c for c in analyze_file(str(pcap)).checks}
    assert diag["registration"].status == "pass" and diag["capture"].status == "pass"


def test_allowed_ip_falls_back_to_what_the_pbx_saw_over_ipv6(lab, run_sipkit):
    # no connector server to ask (the API is not configured here): the PBX's view, via the
    # received/rport of its REGISTER answer, compared as addresses, not as spellings
    env = {"SIPKIT_API_URL": "", "SIPKIT_API_TOKEN": "", "SIPKIT_API_TOKEN_FILE": ""}
    only = ("--only", "register,allowed_ip")  # the fallback reads register's answer
    proc = run_sipkit("check", "-c", str(lab.ipv6_site_file), *only, "--json", env=env)
    a = checks(report_of(proc))["allowed_ip"]
    assert a["status"] == "warn" and a["details"]["pbx_seen_as"] == "::1", a
    assert "the PBX sees this site as ::1 = allowed_ip" in a["summary"]
    proc = run_sipkit("check", "-c", str(lab.ipv6_site_file), *only, "--json", "--set",
                      "allowed_ip=0:0:0:0:0:0:0:1", env=env)
    assert "= allowed_ip" in checks(report_of(proc))["allowed_ip"]["summary"]


def test_wrong_password_over_ipv6_is_one_attempt(lab, run_sipkit):
    log = lab.directory / "pbx.log"
    before = log.read_text(errors="replace").count("AUTH-REGISTER")
    proc = run_sipkit("check", "-c", str(lab.ipv6_site_file), "--only", "register", "--json",
                      "--set", "pbx_password=Wrong-V6-Pass")
    reg = checks(report_of(proc))["register"]
    assert proc.returncode == 1 and reg["status"] == "fail" and "403" in reg["summary"]
    assert log.read_text(errors="replace").count("AUTH-REGISTER") - before == 1
    assert "Wrong-V6-Pass" not in proc.stdout + proc.stderr


def test_probes_over_ipv6(lab):
    from sipkit.probe.config import ProbeConfig
    from sipkit.probe.probers import run_probe
    from sipkit.probe.runner import run_targets

    cfg = ProbeConfig.model_validate(
        {"modules": {"udp": {"prober": "options", "transport": "udp", "timeout": 1}}})
    live, closed = f"[::1]:{lab.pbx_port6}", f"[::1]:{lab.pbx_port6 + 1}"
    results: list = []
    asyncio.run(run_targets(cfg, [(live, "udp", {}), (closed, "udp", {})],
                            sink=lambda r, _labels: results.append(r)))
    by = {r["target"]: r for r in results}
    assert by[live]["success"] and by[live]["status_code"] == 200
    assert by[closed]["reason"] == "refused" and by[closed]["duration_s"] < 0.5
    one = asyncio.run(run_probe("udp", cfg.modules["udp"], live))  # the exporter's path
    assert one.success and one.status_code == 200


def test_test_call_to_ipv6_is_a_clear_error_not_a_crash():
    from sipkit.media.call import run_call
    from sipkit.media.model import CallParams
    from sipkit.media.worker import NO_IPV6

    r = asyncio.run(run_call(CallParams(target="sip:echo@[::1]:5060", local_ip="::1")))
    assert r.status == "error" and r.error == NO_IPV6
