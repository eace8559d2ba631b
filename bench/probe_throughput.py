"""OPTIONS probe throughput, side by side in one run, against the same responder (the lab's
Kamailio answering OPTIONS statelessly on loopback):

  * sipkit's fleet prober (`sipkit probe run`'s UDP OPTIONS path), in-process: probes/s with
    0 % loss, p50/p99 latency, CPU seconds, peak RSS;
  * SIPp as a UAC sending OPTIONS, 1000 in flight: the native ceiling on this machine;
  * sipsak, one process per probe (how check_sip-style monitoring works), 8 in parallel.

    .venv/bin/python bench/probe_throughput.py [--probes 50000] [--prefix 127.0.251]
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sipkit.lab.manager import Lab  # noqa: E402
from sipkit.probe.config import ProbeConfig, Target  # noqa: E402
from sipkit.probe.runner import run_targets  # noqa: E402

UAC = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="OPTIONS ping">
  <send retrans="500"><![CDATA[
OPTIONS sip:[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch];rport
From: <sip:sipp@[local_ip]>;tag=[call_number]
To: <sip:[remote_ip]:[remote_port]>
Call-ID: [call_id]
CSeq: 1 OPTIONS
Max-Forwards: 70
Content-Length: 0

]]></send>
  <recv response="200"/>
</scenario>
"""


def sipkit_fleet(ip: str, n: int, concurrency: int) -> dict:
    cfg = ProbeConfig.model_validate(
        {"modules": {"udp": {"prober": "options", "transport": "udp", "timeout": 2}}})
    targets = [Target(target=ip, module="udp")] * n
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    summary = asyncio.run(run_targets(cfg, targets, concurrency=concurrency, rate=1e7,
                                      per_target_rate=1e7))
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    s = summary.as_dict()
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    return {"rate": s["probes_per_second"], "ok": s["success"], "lost": s["failure"],
            "p50_ms": s["p50_ms"], "p99_ms": s["p99_ms"], "cpu_us_per_probe": cpu / n * 1e6,
            "peak_rss_mb": r1.ru_maxrss / 1024}


def sipp_uac(ip: str, n: int, workdir: Path) -> dict:
    """SIPp's marginal rate: N / (t(2N) - t(N)), so its start-up and exit do not count."""
    scen = workdir / "uac_options.xml"
    scen.write_text(UAC)
    times, rcs = [], []
    for count in (n, 2 * n):
        t0 = time.perf_counter()
        proc = subprocess.run([shutil.which("sipp"), f"{ip}:5060", "-sf", str(scen), "-i",
                               "127.0.0.1", "-p", "0", "-m", str(count), "-l", "1000", "-r",
                               "1000000", "-nostdin", "-timeout", "120s", "-ci", "127.0.0.1",
                               "-cp", "0"], capture_output=True, text=True, cwd=workdir)
        times.append(time.perf_counter() - t0)
        rcs.append(proc.returncode)
    return {"rate": n / max(1e-9, times[1] - times[0]), "rc": max(rcs),
            "wall_rate": 2 * n / times[1]}


def sipsak_per_process(ip: str, n: int, parallel: int) -> dict:
    argv = [shutil.which("sipsak"), "-s", f"sip:{ip}:5060"]
    t0 = time.perf_counter()
    with ThreadPoolExecutor(parallel) as pool:
        codes = list(pool.map(lambda _: subprocess.run(argv, capture_output=True).returncode,
                              range(n)))
    elapsed = time.perf_counter() - t0
    return {"rate": n / elapsed, "failed": sum(1 for c in codes if c)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--probes", type=int, default=50000)
    ap.add_argument("--prefix", default="127.0.251")
    args = ap.parse_args()
    lab = Lab(directory=Path(tempfile.mkdtemp(prefix="sipkit-bench-")), prefix=args.prefix)
    lab.up()
    rows = []
    try:
        for conc in (200, 500):
            rows.append((f"sipkit fleet prober, {conc} in flight", sipkit_fleet(lab.pbx_ip,
                                                                              args.probes, conc)))
        with tempfile.TemporaryDirectory() as wd:
            rows.append(("SIPp 3.6.1 UAC, 1000 in flight", sipp_uac(lab.pbx_ip, args.probes,
                                                                    Path(wd))))
        rows.append(("sipsak, one process per probe, 8 parallel",
                     sipsak_per_process(lab.pbx_ip, 400, 8)))
    finally:
        lab.down()
        shutil.rmtree(lab.directory, ignore_errors=True)
    sipp_rate = next(r["rate"] for name, r in rows if name.startswith("SIPp"))
    best = max(r["rate"] for name, r in rows if name.startswith("sipkit"))
    print(f"probes per run: {args.probes}; responder: Kamailio 5.6 on {args.prefix}.1\n")
    print("| client | probes/s | lost | p50 ms | p99 ms | CPU µs/probe | peak RSS MB |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, r in rows:
        print(f"| {name} | {r['rate']:,.0f} | {r.get('lost', r.get('failed', '-'))} | "
              f"{r.get('p50_ms', '-')} | {r.get('p99_ms', '-')} | "
              f"{r['cpu_us_per_probe']:.0f} | {r['peak_rss_mb']:.0f} |" if 'cpu_us_per_probe' in r
              else f"| {name} | {r['rate']:,.0f} | {r.get('failed', 0) if 'failed' in r else ('0' if r.get('rc') == 0 else 'rc ' + str(r.get('rc')))} | - | - | - | - |")
    print(f"\nsipkit / SIPp: {best / sipp_rate:.2f}; sipkit / sipsak-per-process: "
          f"{best / rows[-1][1]['rate']:.0f}×")


if __name__ == "__main__":
    main()
