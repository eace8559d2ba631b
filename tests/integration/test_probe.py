"""Fleet probes against the real lab: the exporter per module, a batch over 1,000 targets with
pacing measured at the responder, and Nagios exit codes."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
import yaml

from sipkit.probe.config import ProbeConfig
from sipkit.probe.exporter import Exporter, start
from sipkit.probe.lockout import lockout_for
from tests.conftest import ROOT
from tests.peers import UdpPeer, reply, silent, silent_sipp_uas, trying_forever

pytestmark = pytest.mark.lab


@pytest.fixture
def modules(lab, monkeypatch, tmp_path):
    monkeypatch.setenv("SIPKIT_TEST_PW_100", lab.passwords()["100"])
    monkeypatch.setenv("SIPKIT_TEST_PW_WRONG", "Wrong-Probe-Pw-9")
    monkeypatch.setenv("SIPKIT_STATE_DIR", str(tmp_path / "state"))
    ca = str(lab.ca_file)
    data = {"state_file": str(tmp_path / "state" / "lockout.json"), "modules": {
        # the first format (flat fields) and the sectioned one side by side: both load
        "udp": {"prober": "options", "transport": "udp", "timeout": 1},
        "tcp": {"prober": "options", "timeout": "1s", "options": {"transport": "tcp"}},
        "tcpfresh": {"prober": "options", "timeout": "1s",
                     "options": {"transport": "tcp", "reuse_connection": False}},
        "tls": {"prober": "options", "timeout": "2s", "options": {"transport": "tls",
                                                                   "ca_file": ca}},
        "reg": {"prober": "register", "register": {
            "username": "100", "password_env": "SIPKIT_TEST_PW_100", "min_interval": 0}},
        "badreg": {"prober": "register", "username": "100",
                   "password_env": "SIPKIT_TEST_PW_WRONG", "min_interval": "0s"},
        "cert": {"prober": "tls", "tls": {"ca_file": ca, "warn_days": 14}},
        "certwarn": {"prober": "tls", "ca_file": ca, "warn_days": 100000},
        "dns": {"prober": "dns"},
    }}
    path = tmp_path / "probes.yaml"
    path.write_text(yaml.safe_dump(data))
    return path, ProbeConfig.model_validate(data)


class Served:
    """The exporter on its own event loop in a thread, as `probe serve` runs it."""

    def __init__(self, exporter: Exporter, host: str):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.runner, port = asyncio.run_coroutine_threadsafe(
            start(exporter, host, 0), self.loop).result(10)
        self.url = f"http://{host}:{port}"

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


@pytest.fixture
def served(lab, modules):
    s = Served(Exporter(modules[1], 5.0), lab.ip(60))
    yield s
    s.close()


@pytest.fixture
def exporter(served):
    return served.url


def scrape(url: str, module: str, target: str, timeout_header: str | None = None) -> dict:
    headers = {"X-Prometheus-Scrape-Timeout-Seconds": timeout_header} if timeout_header else {}
    text = httpx.get(f"{url}/probe", params={"module": module, "target": target},
                     headers=headers, timeout=20).text
    return {line.split()[0]: float(line.split()[-1]) for line in text.splitlines()
            if line and not line.startswith("#")}


def auth_registers(lab) -> int:
    time.sleep(0.2)  # Kamailio's log line lands
    return (lab.directory / "pbx.log").read_text(errors="replace").count("AUTH-REGISTER")


def test_exporter_healthy_target_every_module(lab, exporter):
    for module, target in (("udp", lab.pbx_ip), ("tcp", lab.pbx_ip), ("tcpfresh", lab.pbx_ip),
                           ("tls", f"{lab.pbx_ip}:5061"), ("reg", lab.pbx_ip),
                           ("cert", f"{lab.pbx_ip}:5061"), ("dns", lab.pbx_ip)):
        m = scrape(exporter, module, target)
        assert m["sip_probe_success"] == 1, (module, m)
        assert m["sip_probe_duration_seconds"] > 0
    m = scrape(exporter, "udp", lab.pbx_ip)
    assert m["sip_probe_status_code"] == 200 and 0 < m["sip_probe_rtt_seconds"] < 0.5
    m = scrape(exporter, "reg", lab.pbx_ip)
    assert m["sip_probe_register_expires_seconds"] == 60
    m = scrape(exporter, "cert", f"{lab.pbx_ip}:5061")
    assert m["sip_probe_tls_cert_not_after"] > time.time() + 86400 * 700


def test_exporter_failures(lab, exporter):
    m = scrape(exporter, "udp", f"{lab.pbx_ip}:5999")  # refused
    assert m["sip_probe_success"] == 0 and "sip_probe_status_code" not in m
    with UdpPeer(lab.ip(61), 5060, silent):  # silently dropped
        m = scrape(exporter, "udp", lab.ip(61), timeout_header="1.5")
    assert m["sip_probe_success"] == 0 and m["sip_probe_duration_seconds"] < 1.5
    m = scrape(exporter, "badreg", lab.pbx_ip)  # wrong password
    assert m["sip_probe_success"] == 0 and m["sip_probe_status_code"] == 403
    m = scrape(exporter, "cert", f"{lab.tls_expired_ip}:5061")  # expired certificate
    assert m["sip_probe_success"] == 0 and m["sip_probe_tls_cert_not_after"] < time.time()
    assert httpx.get(f"{exporter}/probe", params={"module": "nope", "target": "x"}).status_code == 400


def test_register_probe_backs_off_after_403(lab, modules):
    from sipkit.probe.probers import run_probe

    cfg = modules[1]
    cfg.modules["badreg"].section.min_interval = 30
    before = auth_registers(lab)
    results = [asyncio.run(run_probe("badreg", cfg.modules["badreg"], lab.pbx_ip, config=cfg))
               for _ in range(5)]
    assert auth_registers(lab) - before == 1
    assert all(not r.success for r in results)
    assert results[-1].backoff_s > 30 and "cached" in results[-1].reason


def test_scrape_100_targets_in_parallel(lab, exporter):
    targets = [lab.pbx_ip, lab.connector_ip, lab.echo_ip] * 34
    with ThreadPoolExecutor(100) as pool:
        got = list(pool.map(lambda t: scrape(exporter, "udp", t), targets[:100]))
    assert len(got) == 100 and all(m["sip_probe_success"] == 1 for m in got)
    own = httpx.get(f"{exporter}/metrics").text
    assert 'sipkit_probes_total{module="udp",result="success"}' in own


MEASURE = """
import resource, subprocess, sys
rc = subprocess.run(sys.argv[1:]).returncode
print(f"PEAK_RSS_KB={resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}", file=sys.stderr)
sys.exit(rc)
"""


class Counting:
    def __init__(self):
        self.times: list[float] = []

    def __call__(self, data: bytes) -> list[bytes]:
        self.times.append(time.monotonic())
        return [reply(data, "200 OK")]


def test_run_1000_targets_paced_and_bounded(lab, modules, tmp_path):
    path, _ = modules
    counting = Counting()
    live = lab.ip(62)
    # 100 probes of one live responder, 900 to addresses where nothing answers
    targets = [{"target": live, "module": "udp"}] * 100 + [
        {"target": f"{lab.prefix}.{70 + i % 150}:{5100 + i // 150}", "module": "udp"}
        for i in range(900)]
    tfile = tmp_path / "targets.yaml"
    tfile.write_text(yaml.safe_dump({"targets": targets}))
    with UdpPeer(live, 5060, counting):
        t0 = time.monotonic()
        # A parent of its own, so RUSAGE_CHILDREN is this run's peak and nobody else's.
        proc = subprocess.run(
            [sys.executable, "-c", MEASURE, sys.executable, "-m", "sipkit", "probe", "run",
             "-c", str(path), "-t", str(tfile), "--json", "--concurrency", "300",
             "--per-target-rate", "20", "--deadline", "12"],
            capture_output=True, text=True, cwd=ROOT, timeout=60)
        elapsed = time.monotonic() - t0
    lines = [json.loads(x) for x in proc.stdout.splitlines()]
    assert proc.returncode == 1 and len(lines) == 1000, proc.stderr
    peak_mb = float(proc.stderr.rsplit("PEAK_RSS_KB=", 1)[1]) / 1024
    assert sum(1 for x in lines if x["success"]) == 100, [x for x in lines if x["target"] == live][:3]
    assert elapsed < 15  # the deadline holds (plus start-up)
    # pacing, measured at the responder: never more than 20 (+1 burst) in any second
    times = counting.times
    assert len(times) >= 100
    worst = max(sum(1 for t in times if s <= t < s + 1.0) for s in times)
    assert worst <= 21, worst
    assert peak_mb < 150, peak_mb
    assert "round 1: 100/1000 ok" in proc.stderr


@pytest.mark.parametrize("module,target,code,word", [
    ("udp", "PBX", 0, "OK"),
    ("certwarn", "PBX:5061", 1, "WARNING"),
    ("udp", "PBX:5999", 2, "CRITICAL"),
    ("nosuch", "PBX", 3, "UNKNOWN"),
])
def test_nagios_exit_codes(lab, modules, run_sipkit, module, target, code, word):
    path, _ = modules
    env = {"SIPKIT_TEST_PW_100": lab.passwords()["100"]}
    proc = run_sipkit("probe", "run", "-c", str(path), "--nagios", "--module", module,
                      "--target", target.replace("PBX", lab.pbx_ip), env=env)
    assert proc.returncode == code, proc.stdout + proc.stderr
    assert proc.stdout.startswith(f"SIP {word} - ") and proc.stdout.count("\n") == 1
    if code in (0, 2):
        assert "| time=" in proc.stdout


def test_nagios_5xx_is_critical(lab, modules, run_sipkit):
    path, _ = modules
    with UdpPeer(lab.ip(63), 5060, lambda d: [reply(d, "503 Service Unavailable")]):
        proc = run_sipkit("probe", "run", "-c", str(path), "--nagios", "--module", "udp",
                          "--target", lab.ip(63))
    assert proc.returncode == 2 and "503" in proc.stdout


def test_nagios_bad_config_is_unknown(tmp_path, run_sipkit):
    bad = tmp_path / "bad.yaml"
    bad.write_text("modules: {x: {prober: teleport}}")
    proc = run_sipkit("probe", "run", "-c", str(bad), "--nagios", "--module", "x", "--target", "h")
    assert proc.returncode == 3 and proc.stdout.startswith("SIP UNKNOWN")


def test_no_password_in_probe_output(lab, modules, run_sipkit, exporter):
    path, _ = modules
    pw = lab.passwords()["100"]
    texts = [httpx.get(f"{exporter}/probe", params={"module": m, "target": lab.pbx_ip}).text
             for m in ("reg", "badreg")]
    tfile = lab.directory / "probe-targets.yaml"
    tfile.write_text(yaml.safe_dump({"targets": [{"target": lab.pbx_ip, "module": "reg"},
                                                 {"target": lab.pbx_ip, "module": "badreg"}]}))
    proc = run_sipkit("probe", "run", "-c", str(path), "-t", str(tfile), "--json",
                      env={"SIPKIT_TEST_PW_100": pw, "SIPKIT_TEST_PW_WRONG": "Wrong-Probe-Pw-9"})
    out = "\n".join(texts) + proc.stdout + proc.stderr
    assert pw not in out and "Wrong-Probe-Pw-9" not in out


def test_run_tells_refused_from_silent(lab, modules):
    """The fleet path's shared socket learns ICMP errors through IP_RECVERR: a closed port is
    "refused" at once, a host that drops everything is a timeout, and answers still match."""
    from sipkit.probe.runner import run_targets

    _, config = modules
    silent_ip = lab.ip(63)
    targets = [(f"{lab.pbx_ip}:5999", "udp", {}), (f"{silent_ip}:5060", "udp", {}),
               (lab.pbx_ip, "udp", {})] * 5
    results: list = []
    with UdpPeer(silent_ip, 5060, silent):
        summary = asyncio.run(run_targets(config, targets, concurrency=15, rate=1e6,
                                          per_target_rate=1e6,
                                          sink=lambda r, _labels: results.append(r)))
    by_target = {}
    for r in results:
        by_target.setdefault(r["target"], []).append(r)
    refused = by_target[f"{lab.pbx_ip}:5999"]
    assert [r["reason"] for r in refused] == ["refused"] * 5
    assert max(r["duration_s"] for r in refused) < 0.5  # not the 1 s timeout
    assert [r["reason"] for r in by_target[f"{silent_ip}:5060"]] == ["timeout"] * 5
    assert all(r["success"] and r["status_code"] == 200 for r in by_target[lab.pbx_ip])
    assert summary.as_dict()["success"] == 5


def test_parallel_scrapes_of_a_register_module_make_one_attempt(lab, modules, exporter):
    """Two Prometheus replicas (or a retrying one) scrape at once: the register probe must
    still make one authenticated attempt per interval; the others share its answer."""
    cfg = modules[1]
    cfg.modules["reg"].section.min_interval = 300
    attempts = lambda: auth_registers(lab)  # noqa: E731

    before = attempts()
    assert scrape(exporter, "reg", lab.pbx_ip)["sip_probe_success"] == 1
    one_probe = attempts() - before  # the REGISTER, and the one removing its binding
    lockout_for(cfg.state_file).clear()
    before = attempts()
    with ThreadPoolExecutor(10) as pool:
        got = list(pool.map(lambda _: scrape(exporter, "reg", lab.pbx_ip), range(10)))
    assert one_probe >= 1 and attempts() - before == one_probe
    assert all(m["sip_probe_success"] == 1 for m in got)
