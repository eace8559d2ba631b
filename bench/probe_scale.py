"""`sipkit probe run` as the target list grows: wall, probes/s, CPU µs/probe, peak RSS for
10^3 ... 10^6 targets (through the CLI, start-up, targets file and JSON lines included),
against Kamailio answering OPTIONS on a loopback address of this benchmark's own.

    python bench/probe_scale.py [--ip 127.0.93.1] [--sizes 1000,10000,100000,1000000]

"probes/s (wall)" counts start-up (interpreter, imports: about 0.3 s), "probing" is the
run's own clock (first target read to last result), the figure to compare across sizes.
The targets file is the shared bench's shape (one flow-style entry per line, distinct
labels); output goes to /dev/null through a pipe reader that counts the successes.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from responder import kamailio, sipkit_argv, sipkit_env

PROBES = "modules:\n  options: {prober: options, transport: udp, timeout: 2}\n"


def targets_file(path: Path, n: int, ip: str) -> None:
    with open(path, "w") as f:
        f.write("targets:\n")
        f.writelines(f'  - {{target: "{ip}:5060", module: options, labels: {{name: p{i:07d}}}}}\n' for i in range(n))


def run(n: int, ip: str, work: Path, concurrency: int) -> dict:
    t = work / f"targets-{n}.yaml"
    targets_file(t, n, ip)
    argv = ["/usr/bin/time", "-v", *sipkit_argv(), "probe", "run", "-c", str(work / "p.yaml"),
            "-t", str(t), "--json", "--rate", "1000000", "--per-target-rate", "1000000",
            "--concurrency", str(concurrency)]
    t0 = time.monotonic()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=sipkit_env())
    ok = sum(1 for line in proc.stdout if b'"success":true' in line)
    err = proc.stderr.read().decode()
    proc.wait()
    wall = time.monotonic() - t0
    t.unlink()
    cpu = sum(float(x) for x in re.findall(r"(?:User|System) time \(seconds\): ([\d.]+)", err))
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", err).group(1))
    own = re.search(r"round 1: .* in ([\d.]+) s \(([\d.]+)/s\)", err)
    return {"n": n, "ok": ok, "wall_s": round(wall, 2), "rate": round(ok / wall),
            "run_s": float(own.group(1)), "run_rate": round(float(own.group(2))),
            "cpu_us": round(cpu / n * 1e6, 1), "rss_mb": round(rss / 1024, 1)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--ip", default="127.0.93.1")
    ap.add_argument("--sizes", default="1000,10000,100000,1000000")
    ap.add_argument("--concurrency", type=int, default=1000)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="sipkit-scale-") as d, kamailio(a.ip):
        work = Path(d)
        (work / "p.yaml").write_text(PROBES)
        print("| targets | answered | wall s | probes/s (wall) | probing s | probes/s (probing) "
              "| CPU µs/probe | peak RSS MB |")
        print("|---:|---:|---:|---:|---:|---:|---:|---:|")
        for n in (int(x) for x in a.sizes.split(",")):
            r = run(n, a.ip, work, a.concurrency)
            print(f"| {r['n']:,} | {r['ok']:,} | {r['wall_s']} | {r['rate']:,} | {r['run_s']} | "
                  f"{r['run_rate']:,} | {r['cpu_us']} | {r['rss_mb']} |", flush=True)


if __name__ == "__main__":
    main()
