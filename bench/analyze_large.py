"""`sipkit analyze` on a large capture: time and peak RSS (memory must stay bounded).

Writes a synthetic pcap of ~--mb megabytes: many short calls (INVITE with SDP, 200 OK with SDP,
ACK, RTP both ways, BYE/200) and registrations, every tenth call with one-way audio, then runs
`sipkit analyze --json` on it in a child process and reports its wall time and peak RSS.

    .venv/bin/python bench/analyze_large.py [--mb 100]
"""

from __future__ import annotations

import argparse
import json
import socket
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _udp(src: str, sport: int, dst: str, dport: int, payload: bytes) -> bytes:
    udp = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0,
                     socket.inet_aton(src), socket.inet_aton(dst))
    return b"\x00" * 12 + b"\x08\x00" + ip + udp


def _sip(first: str, call_id: str, cseq: str, branch: str, body: bytes = b"",
         via: str = "10.1.0.5:5060") -> bytes:
    head = (f"{first}\r\nVia: SIP/2.0/UDP {via};branch=z9hG4bK{branch};rport\r\n"
            f"From: <sip:100@pbx>;tag=a{call_id}\r\nTo: <sip:200@pbx>\r\nCall-ID: {call_id}\r\n"
            f"CSeq: {cseq}\r\n")
    if body:
        head += "Content-Type: application/sdp\r\n"
    return (head + f"Content-Length: {len(body)}\r\n\r\n").encode() + body


def _sdp(ip: str, port: int) -> bytes:
    return (f"v=0\r\no=- 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\n"
            f"m=audio {port} RTP/AVP 0\r\n").encode()


def write_capture(path: Path, megabytes: int) -> int:
    a, b = "8.8.4.4", "9.9.9.9"  # public-looking, so no private-SDP findings
    packets = 0
    ts = 1_700_000_000.0
    rtp = b"\x80\x00" + b"\x00" * 10 + b"\xff" * 160
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))

        def rec(frame: bytes) -> None:
            nonlocal packets, ts
            ts += 0.0005
            f.write(struct.pack("<IIII", int(ts), int((ts % 1) * 1e6), len(frame), len(frame)))
            f.write(frame)
            packets += 1

        call = 0
        while f.tell() < megabytes * 1024 * 1024:
            call += 1
            cid = f"call{call}"
            pa, pb = 20000 + (call % 5000) * 2, 30000 + (call % 5000) * 2
            rec(_udp(a, 5060, b, 5060, _sip("INVITE sip:200@pbx SIP/2.0", cid, "1 INVITE",
                                            f"i{call}", _sdp(a, pa))))
            rec(_udp(b, 5060, a, 5060, _sip("SIP/2.0 200 OK", cid, "1 INVITE", f"i{call}",
                                            _sdp(b, pb))))
            rec(_udp(a, 5060, b, 5060, _sip("ACK sip:200@pbx SIP/2.0", cid, "1 ACK", f"k{call}")))
            for _ in range(50):
                rec(_udp(a, pa, b, pb, rtp))
                if call % 10:
                    rec(_udp(b, pb, a, pa, rtp))
            rec(_udp(a, 5060, b, 5060, _sip("BYE sip:200@pbx SIP/2.0", cid, "2 BYE", f"b{call}")))
            rec(_udp(b, 5060, a, 5060, _sip("SIP/2.0 200 OK", cid, "2 BYE", f"b{call}")))
            if call % 5 == 0:
                rid = f"reg{call}"
                rec(_udp(a, 5060, b, 5060, _sip("REGISTER sip:pbx SIP/2.0", rid, "1 REGISTER",
                                                f"r{call}")))
                rec(_udp(b, 5060, a, 5060, _sip("SIP/2.0 200 OK", rid, "1 REGISTER", f"r{call}")))
    return packets


MEASURE = """
import resource, subprocess, sys, time
t0 = time.monotonic()
p = subprocess.run(sys.argv[1:], capture_output=True, text=True)
print(p.stdout)
print(f"WALL={time.monotonic() - t0:.2f} RSS_KB={resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}",
      file=sys.stderr)
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=int, default=100)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "large.pcap"
        t0 = time.monotonic()
        n = write_capture(path, args.mb)
        made = time.monotonic() - t0
        proc = subprocess.run([sys.executable, "-c", MEASURE, sys.executable, "-m", "sipkit",
                               "analyze", str(path), "--json"], capture_output=True, text=True,
                              cwd=ROOT)
        stats = dict(kv.split("=") for kv in proc.stderr.strip().splitlines()[-1].split())
        report = json.loads(proc.stdout)
        size = path.stat().st_size / 1024 / 1024
    checks = {c["id"]: c["summary"][:90] for c in report["checks"]}
    wall, rss = float(stats["WALL"]), int(stats["RSS_KB"]) / 1024
    print(f"capture: {size:.0f} MB, {n:,} packets (written in {made:.1f} s)")
    print(f"sipkit analyze: {wall:.1f} s ({n / wall:,.0f} packets/s, {size / wall:.1f} MB/s), "
          f"peak RSS {rss:.0f} MB")
    for cid, summary in checks.items():
        print(f"  {cid}: {summary}")


if __name__ == "__main__":
    main()
