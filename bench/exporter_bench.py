"""The exporter under load, side by side in one run: `sipkit probe serve` against
blackbox_exporter (Debian prometheus-blackbox-exporter), both probing the same Kamailio
with the same OPTIONS over TCP (blackbox: its `tcp` prober with `query_response`), scraped
by ApacheBench (`ab -l -c 50`), reps interleaved. Also sipkit's UDP module (blackbox has no
UDP request/response prober) and 500 scrapes at once of a silent UDP target.

    python bench/exporter_bench.py [--prefix 127.0.94] [--reps 3] [--n 5000] [--c 50]

Addresses: Kamailio .1, sipkit .2:9116, blackbox .3:9115, the silent target .4:5060.
"""

from __future__ import annotations

import argparse
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from responder import kamailio, sipkit_argv, sipkit_env, stop


def blackbox_yaml(ip: str) -> str:
    req = (f"OPTIONS sip:{ip}:5060 SIP/2.0\\r\\nVia: SIP/2.0/TCP 127.0.0.1:5060;"
           "branch=z9hG4bKblackbox\\r\\nMax-Forwards: 70\\r\\nFrom: <sip:bb@127.0.0.1>;tag=1"
           f"\\r\\nTo: <sip:{ip}:5060>\\r\\nCall-ID: bb@127.0.0.1\\r\\nCSeq: 1 OPTIONS\\r\\n"
           "Content-Length: 0\\r\\n\\r\\n")
    return ("modules:\n  sip_options_tcp:\n    prober: tcp\n    timeout: 2s\n    tcp:\n"
            f'      query_response:\n        - send: "{req}"\n'
            '        - expect: "^SIP/2.0 200"\n')


SIPKIT_YAML = """modules:
  tcp: {prober: options, timeout: 2s, options: {transport: tcp}}
  udp: {prober: options, timeout: 2s, options: {transport: udp}}
"""


def wait_http(url: str, proc: subprocess.Popen, what: str) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            if proc.poll() is not None:
                break
            time.sleep(0.2)
    raise SystemExit(f"{what} did not start")


def ab(url: str, n: int, c: int) -> dict:
    out = subprocess.run(["ab", "-q", "-l", "-s", "30", "-c", str(c), "-n", str(n), url],
                         capture_output=True, text=True, check=False).stdout
    num = lambda pat: float(m.group(1)) if (m := re.search(pat, out)) else None
    return {"rps": num(r"Requests per second:\s+([\d.]+)"),
            "failed": int(num(r"Failed requests:\s+(\d+)") or 0)
            + int(num(r"Non-2xx responses:\s+(\d+)") or 0),
            "p50": num(r"\n\s+50%\s+(\d+)"), "p99": num(r"\n\s+99%\s+(\d+)"),
            "max": num(r"\n\s+100%\s+(\d+)")}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--prefix", default="127.0.94")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--n", type=int, default=5000)
    ap.add_argument("--c", type=int, default=50)
    a = ap.parse_args()
    bb = shutil.which("prometheus-blackbox-exporter") or shutil.which("blackbox_exporter")
    if not bb or not shutil.which("ab"):
        raise SystemExit("needs prometheus-blackbox-exporter and ab (apache2-utils)")
    kam, sk, bbip, quiet = (f"{a.prefix}.{i}" for i in (1, 2, 3, 4))
    with tempfile.TemporaryDirectory(prefix="sipkit-exp-") as d, kamailio(kam):
        work = Path(d)
        (work / "bb.yml").write_text(blackbox_yaml(kam))
        (work / "sk.yaml").write_text(SIPKIT_YAML)
        procs = [subprocess.Popen([bb, f"--config.file={work / 'bb.yml'}",
                                   f"--web.listen-address={bbip}:9115"],
                                  stdout=subprocess.DEVNULL, stderr=open(work / "bb.log", "w")),
                 subprocess.Popen([*sipkit_argv(), "probe", "serve", "-c", str(work / "sk.yaml"),
                                   "--listen", f"{sk}:9116"], env=sipkit_env(),
                                  stdout=subprocess.DEVNULL, stderr=open(work / "sk.log", "w"))]
        silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        silent.bind((quiet, 5060))  # bound, never read: a target that drops everything
        try:
            wait_http(f"http://{bbip}:9115/", procs[0], "blackbox_exporter")
            wait_http(f"http://{sk}:9116/", procs[1], "sipkit probe serve")
            urls = {"blackbox tcp": f"http://{bbip}:9115/probe?module=sip_options_tcp"
                                    f"&target={kam}:5060",
                    "sipkit tcp": f"http://{sk}:9116/probe?module=tcp&target={kam}",
                    "sipkit udp": f"http://{sk}:9116/probe?module=udp&target={kam}"}
            for url in urls.values():  # warm up, and prove each one succeeds
                body = httpx.get(url, timeout=5).text
                assert "probe_success 1" in body, (url, body[-300:])
            rows: dict[str, list] = {k: [] for k in urls}
            for rep in range(a.reps):
                for name, url in urls.items():
                    r = ab(url, a.n, a.c)
                    rows[name].append(r)
                    print(f"rep {rep + 1} {name:13} {r['rps']:>8.0f}/s p50 {r['p50']} ms "
                          f"p99 {r['p99']} ms max {r['max']} ms failed {r['failed']}",
                          flush=True)
            med = {k: {f: statistics.median(x[f] for x in v) for f in v[0]}
                   for k, v in rows.items()}
            print(f"\n| exporter (ab -l -c {a.c}, {a.n} scrapes, median of {a.reps}) | scrapes/s "
                  "| × blackbox | p50 ms | p99 ms | failed |")
            print("|---|---:|---:|---:|---:|---:|")
            base = med["blackbox tcp"]["rps"]
            for name, m in med.items():
                print(f"| {name} | {m['rps']:,.0f} | {m['rps'] / base:.2f} | {m['p50']:.0f} | "
                      f"{m['p99']:.0f} | {sum(x['failed'] for x in rows[name])} |")
            ratios = [s["rps"] / b["rps"] for s, b in zip(rows["sipkit tcp"],
                                                         rows["blackbox tcp"])]
            print(f"\nper-rep sipkit/blackbox (tcp): {', '.join(f'{x:.2f}' for x in ratios)}")
            r = ab(f"http://{sk}:9116/probe?module=udp&target={quiet}", 500, 500)
            print(f"500 scrapes at once of a silent UDP target (timeout 2 s): max {r['max']} ms, "
                  f"failed {r['failed']}")
            print("sipkit stderr lines:", len((work / "sk.log").read_text().splitlines()),
                  "(tracebacks:", (work / "sk.log").read_text().count("Traceback"), ")")
        finally:
            silent.close()
            for p in procs:
                stop(p)


if __name__ == "__main__":
    main()
