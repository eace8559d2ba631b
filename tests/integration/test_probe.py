"""Fleet probes against the real lab: the exporter per module, a batch over 1,000 targets with
pacing measured at the responder, and Nagios exit codes."""

from __future__ import annotations

import asyncio
import itertools
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
        self.exporter = exporter
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
    attempts = lambda: auth_registers(lab)

    before = attempts()
    assert scrape(exporter, "reg", lab.pbx_ip)["sip_probe_success"] == 1
    one_probe = attempts() - before  # the REGISTER, and the one removing its binding
    lockout_for(cfg.state_file).clear()
    before = attempts()
    with ThreadPoolExecutor(10) as pool:
        got = list(pool.map(lambda _: scrape(exporter, "reg", lab.pbx_ip), range(10)))
    assert one_probe >= 1 and attempts() - before == one_probe
    assert all(m["sip_probe_success"] == 1 for m in got)


def test_tcp_probes_reuse_one_connection(lab, served):
    """Connection reuse (RFC 5923): many TCP scrapes of one target, one connection kept."""
    for _ in range(20):
        assert scrape(served.url, "tcp", lab.pbx_ip)["sip_probe_success"] == 1
    assert len(served.exporter.pool.conns) == 1


def test_fullwidth_port_and_bad_queries_are_400(lab, exporter):
    for params in ({"module": "udp", "target": f"{lab.pbx_ip}:５０６０"},
                   {"module": "udp", "target": f"{lab.pbx_ip}:99999"},
                   {"module": "udp", "target": "[::1"},
                   {"module": "udp"},
                   {"module": ["udp", "tcp"], "target": lab.pbx_ip}):
        r = httpx.get(f"{exporter}/probe", params=params, timeout=10)
        assert r.status_code == 400, (params, r.text)
        assert "Traceback" not in r.text


def test_debug_shows_the_ladder(lab, exporter):
    r = httpx.get(f"{exporter}/probe", params={"module": "tcp", "target": lab.pbx_ip,
                                               "debug": "true"}, timeout=10)
    assert r.status_code == 200
    assert r.text.startswith("Logs for the probe:")
    assert "> OPTIONS sip:" in r.text and "< SIP/2.0 200" in r.text
    assert "Metrics that would have been returned:" in r.text
    assert "sip_probe_success 1" in r.text


def test_debug_of_a_register_probe_has_no_secret(lab, modules, exporter):
    pw = lab.passwords()["100"]
    r = httpx.get(f"{exporter}/probe", params={"module": "reg", "target": lab.pbx_ip,
                                               "debug": "1"}, timeout=20)
    assert "register:" in r.text and pw not in r.text


def test_query_parser_fuzz(lab, exporter):
    """The exporter's query parser under hostile input: every answer is 200/400/414, never a
    500 or a traceback, and nothing but IP literals on loopback is ever probed."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    pieces = st.sampled_from(["module", "target", "debug", "udp", "tcp", "reg", "=", "&", "%",
                              "%00", "%zz", "５０６０", "[", "]", ":", "::1", lab.pbx_ip, "\u202e",
                              "a" * 300, "true", ";", "+", "%2F", "\\x00", "#", "?"])
    query = st.lists(pieces, max_size=12).map("".join)

    @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
    @given(query)
    def check(q):
        r = httpx.get(f"{exporter}/probe?{q}", timeout=20)
        assert r.status_code in (200, 400, 414), (q, r.status_code, r.text[:200])
        assert "Traceback" not in r.text

    check()
    r = httpx.get(f"{exporter}/probe?module=udp&target=" + "1" * 5000, timeout=10)
    assert r.status_code == 414


def _serve_cli(lab, path, host_n: int, env: dict | None = None):
    """`sipkit probe serve` as a process; returns (proc, url) once it listens."""
    host = lab.ip(host_n)
    import socket

    with socket.socket() as s:
        s.bind((host, 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "sipkit", "probe", "serve", "-c", str(path),
                             "--listen", f"{host}:{port}"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    url = f"http://{host}:{port}"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            httpx.get(url + "/", timeout=1)
            return proc, url
        except httpx.HTTPError:
            if proc.poll() is not None:
                break
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"probe serve did not start: {proc.communicate()[1][-2000:]}")


def test_500_parallel_scrapes_of_a_silent_target(lab, modules, tmp_path):
    """A real listen backlog and one event loop: 500 scrapes at once of a target that never
    answers each get their answer within the probe timeout + 1 s; clients that give up
    early leave no traceback behind."""
    import os

    path, _ = modules
    silent_ip = lab.ip(64)
    with UdpPeer(silent_ip, 5060, silent):
        proc, url = _serve_cli(lab, path, 65, env={**os.environ, "PYTHONPATH": str(ROOT)})
        try:
            async def one(client, i):
                t0 = time.monotonic()
                if i % 10 == 0:  # Prometheus gave up: the connection goes away early
                    try:
                        await client.get(f"{url}/probe", params={"module": "udp",
                                                                 "target": silent_ip},
                                         timeout=0.2)
                    except httpx.TimeoutException:
                        pass
                    return None
                r = await client.get(f"{url}/probe", params={"module": "udp",
                                                             "target": silent_ip}, timeout=30)
                return r.status_code, "sip_probe_success 0" in r.text, time.monotonic() - t0

            async def burst():
                limits = httpx.Limits(max_connections=600, max_keepalive_connections=0)
                async with httpx.AsyncClient(limits=limits) as client:
                    return await asyncio.gather(*(one(client, i) for i in range(500)))

            got = [g for g in asyncio.run(burst()) if g is not None]
        finally:
            proc.terminate()
            _, err = proc.communicate(timeout=10)
    assert len(got) == 450 and all(code == 200 and failed for code, failed, _ in got)
    worst = max(t for _, _, t in got)
    assert worst < 1 + 1.0 + 1.0, worst  # module timeout 1 s, + 1 s, + the client's own start
    assert "Traceback" not in err and "BrokenPipe" not in err, err[-2000:]


def test_register_lockout_survives_kill_9(lab, modules, tmp_path):
    """A crash loop (kill -9, restart, scrape) must not make a second authenticated REGISTER
    inside min_interval: the slot is written to the state file before the attempt."""
    import os
    import signal

    path, _ = modules
    data = yaml.safe_load(path.read_text())
    data["modules"]["reg"]["register"]["min_interval"] = "5m"
    path.write_text(yaml.safe_dump(data))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    state = tmp_path / "state" / "lockout.json"
    before = auth_registers(lab)
    results = []
    for _round in range(3):
        proc, url = _serve_cli(lab, path, 66, env=env)
        try:
            results.append(scrape(url, "reg", lab.pbx_ip))
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.communicate(timeout=10)
    made = auth_registers(lab) - before
    assert results[0]["sip_probe_success"] == 1
    assert all(r["sip_probe_register_backoff_seconds"] > 200 for r in results[1:]), results
    assert all(r["sip_probe_success"] == 1 for r in results[1:])  # the cached answer
    # one probe = the REGISTER (and its un-REGISTER): never more across the restarts
    assert 1 <= made <= 2, made
    assert json.loads(state.read_text())  # the state file is there, readable JSON
    assert lab.passwords()["100"] not in state.read_text()


def test_fleet_retransmits_every_t2_after_a_provisional(lab):
    """RFC 3261 §17.1.2.2: once a 1xx came, Timer E fires every T2 (no more doubling); the
    rule is sip.transaction.next_interval, shared with the asyncio transports."""
    from sipkit.probe.fleet import UdpFleet

    times: list[float] = []

    def handler(data: bytes) -> list[bytes]:
        times.append(time.monotonic())
        return trying_forever(data)

    async def main():
        fleet = await UdpFleet(lab.ip(60)).start()
        try:
            return await fleet.options(lab.ip(67), 5060, timeout=1.2, t1=0.05, t2=0.4)
        finally:
            fleet.close()

    with UdpPeer(lab.ip(67), 5060, handler):
        resp, _ = asyncio.run(main())
    assert resp is None  # no final answer: a timeout
    gaps = [b - a for a, b in itertools.pairwise(times)]
    # first retransmit at T1 (queued before the 1xx came), then every T2 = 0.4 s
    assert len(times) in (3, 4), gaps
    assert all(g > 0.3 for g in gaps[1:]), gaps


@pytest.fixture
def call_config(lab, tmp_path):
    data = {"state_file": str(tmp_path / "calls.json"), "modules": {
        "echo": {"prober": "call", "timeout": "20s", "call": {
            "uri": "sip:echo@{target}", "local_ip": lab.pbx_ip, "media": "2s",
            "min_interval": "10m"}}}}
    return ProbeConfig.model_validate(data)


def test_call_prober_echo_and_one_way(lab, call_config, tmp_path):
    from sipkit.probe.metrics import render
    from sipkit.probe.probers import run_probe

    module = call_config.modules["echo"]
    res = asyncio.run(run_probe("echo", module, f"{lab.echo_ip}:5060", config=call_config))
    assert res.success, res
    text = render(res, "call").decode()
    assert "sip_probe_success 1" in text and "sip_probe_call_mos 4" in text
    assert "sip_probe_call_setup_seconds" in text and "sip_probe_call_one_way_audio 0" in text
    # min_interval: the second probe is the cached answer, no second call
    again = asyncio.run(run_probe("echo", module, f"{lab.echo_ip}:5060", config=call_config))
    assert again.success and "cached" in again.reason and again.backoff_s > 500
    with silent_sipp_uas(lab, 68, 8893, tmp_path) as ip:
        res = asyncio.run(run_probe("echo", module, f"{ip}:5060", config=call_config))
    assert not res.success and res.one_way_audio is True
    assert "one_way_audio" in res.reason and "nothing comes back" in res.reason
    assert "sip_probe_call_one_way_audio 1" in render(res, "call").decode()


@pytest.mark.parametrize("pacing,n", [("1000000", 3000), ("100", 300)])
def test_workers_share_the_targets_in_one_stream(lab, modules, tmp_path, run_sipkit, pacing, n):
    """--workers 3: every target probed exactly once, whole lines on one stdout, one summary;
    with per-target pacing the copies of a target stay in one process (by target hash)."""
    path, _ = modules
    lines = ["targets:"] + [
        f'  - {{target: "{lab.pbx_ip if i % 2 else lab.connector_ip}", module: udp, '
        f'labels: {{n: x{i}}}}}' for i in range(n)]
    tfile = tmp_path / "many.yaml"
    tfile.write_text("\n".join(lines) + "\n  - target: " + lab.pbx_ip + "\n    module: udp\n")
    proc = run_sipkit("probe", "run", "-c", str(path), "-t", str(tfile), "--json", "--workers",
                      "3", "--rate", "1000000", "--per-target-rate", pacing,
                      "--concurrency", "300", timeout=120)
    got = [json.loads(x) for x in proc.stdout.splitlines()]
    names = sorted(g["labels"].get("n", "block") for g in got)
    assert names == sorted([f"x{i}" for i in range(n)] + ["block"]), proc.stderr[-500:]
    assert proc.returncode == 0 and all(g["success"] for g in got)
    assert f"round 1: {n + 1}/{n + 1} ok" in proc.stderr and "_sipkit_shard" not in proc.stdout


def test_call_prober_through_the_pbx_with_credentials(lab, monkeypatch, tmp_path):
    """Registered as extension 100, a call to the PBX's echo route: MOS and success; the next
    scrape inside min_interval is the cached answer (no second REGISTER, no second call)."""
    from sipkit.probe.probers import run_probe

    monkeypatch.setenv("SIPKIT_TEST_PW_100", lab.passwords()["100"])
    cfg = ProbeConfig.model_validate({"state_file": str(tmp_path / "s.json"), "modules": {
        "viapbx": {"prober": "call", "timeout": "30s", "call": {
            "uri": "sip:05321234567@{target}", "registrar": "sip:{target}", "username": "100",
            "password_env": "SIPKIT_TEST_PW_100", "local_ip": lab.pbx_ip, "media": "2s",
            "min_interval": "10m"}}}})
    module = cfg.modules["viapbx"]
    before = auth_registers(lab)
    res = asyncio.run(run_probe("viapbx", module, lab.pbx_ip, config=cfg))
    assert res.success and res.mos > 4 and res.setup_s < 5, res
    made = auth_registers(lab) - before
    again = asyncio.run(run_probe("viapbx", module, lab.pbx_ip, config=cfg))
    assert again.success and "cached" in again.reason
    assert auth_registers(lab) - before == made >= 1
    assert lab.passwords()["100"] not in (tmp_path / "s.json").read_text() + res.reason


def test_a_scrape_given_up_still_finishes_its_register(lab, modules, served):
    """Prometheus gives up (the client goes away) while the authenticated REGISTER waits for
    its answer: the scrape's handler is cancelled, the attempt is not — it gets its 200,
    removes the binding and records the answer, which the next scrape gets (cached)."""
    from tests.peers import Registrar, method_of

    registrar = Registrar("plain")

    def slow(data: bytes) -> list[bytes]:
        if method_of(data) == "REGISTER" and b"Authorization" in data and b"Expires: 0" not in data:
            time.sleep(0.35)  # the scrape is gone by now (and under T1: no retransmission)
        return registrar(data)

    cfg = modules[1]
    cfg.modules["reg"].section.min_interval = 300
    peer_ip = lab.ip(69)
    with UdpPeer(peer_ip, 5060, slow):
        with pytest.raises(httpx.TimeoutException):
            httpx.get(f"{served.url}/probe", params={"module": "reg", "target": peer_ip},
                      timeout=0.1)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and "0" not in registrar.expires_seen:
            time.sleep(0.1)  # the attempt goes on without its scrape: REGISTER, then removal
        m = scrape(served.url, "reg", peer_ip)
    assert m["sip_probe_success"] == 1 and m["sip_probe_register_backoff_seconds"] > 200, m
    assert registrar.authenticated == 2  # the REGISTER and its removal, nothing more
    assert registrar.expires_seen.count("0") == 1
