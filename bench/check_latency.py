"""Wall time of `sipkit check` against the lab, side by side with sipsak doing a slice of the
same work (one OPTIONS; one REGISTER with digest + removal), in one run; and a full check
with both test calls (3 s of media each, run concurrently).

    .venv/bin/python bench/check_latency.py [--runs 15] [--prefix 127.0.250]

Starts its own lab on ``--prefix`` and stops it at the end. Prints a Markdown table
(median, min, max in ms) for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sipkit.lab.manager import Lab  # noqa: E402


def timed(argv: list[str], runs: int, ok=(0,), env=None) -> list[float]:
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        proc = subprocess.run(argv, capture_output=True, text=True, env=env)
        out.append((time.perf_counter() - t0) * 1000)
        if proc.returncode not in ok:
            raise SystemExit(f"{argv[:4]}… exited {proc.returncode}:\n{proc.stdout}{proc.stderr}")
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--prefix", default="127.0.250")
    args = ap.parse_args()
    lab = Lab(directory=Path(tempfile.mkdtemp(prefix="sipkit-bench-")), prefix=args.prefix)
    lab.up()
    try:
        sipkit = [str(ROOT / ".venv/bin/sipkit"), "check", "-c"]
        skip = ["--skip", "call_inbound,call_outbound", "--json"]
        pw = lab.passwords()["100"]
        rows = [
            ("sipkit check, UDP (all signalling checks)",
             timed(sipkit + [str(lab.site_file)] + skip, args.runs)),
            ("sipkit check, TLS (all signalling checks)",
             timed(sipkit + [str(lab.tls_site_file)] + skip, args.runs)),
            ("sipkit check --only transport (OPTIONS ×3 + large UDP)",
             timed(sipkit + [str(lab.site_file), "--only", "transport", "--json"], args.runs)),
        ]
        import os

        env = {**os.environ, **lab.env()}
        subprocess.run(sipkit + [str(lab.site_file), "--create", "--json"], env=env,
                       capture_output=True, check=True)  # the connector exists: inbound calls go through
        rows.append(("sipkit check, UDP, all checks incl. both calls (3 s media each)",
                     timed(sipkit + [str(lab.site_file), "--json"], max(3, args.runs // 3),
                           env=env)))
        if shutil.which("sipsak"):
            rows += [
                ("sipsak -s (one OPTIONS)",
                 timed(["sipsak", "-s", f"sip:{lab.pbx_ip}:5060"], args.runs)),
                ("sipsak -U (REGISTER + digest + removal)",
                 timed(["sipsak", "-U", "-s", f"sip:100@{lab.pbx_ip}", "-a", pw], args.runs)),
            ]
    finally:
        lab.down()
        shutil.rmtree(lab.directory, ignore_errors=True)
    print(f"runs per row: {args.runs}; lab prefix {args.prefix}\n")
    print("| command | median ms | min ms | max ms |\n|---|---:|---:|---:|")
    for name, times in rows:
        print(f"| {name} | {statistics.median(times):.0f} | {min(times):.0f} | {max(times):.0f} |")


if __name__ == "__main__":
    main()
