"""The lab's far-end media: echo RTP back to its sender, answer RTCP like a real endpoint.

``python -m sipkit.lab.rtp_echo --ip 127.0.0.3 --port 6000`` (RTP on the port, RTCP on the
port + 1, RFC 3550 §11). SIPp's ``-rtp_echo`` echoes RTP but sends no RTCP, so a caller can
measure neither its round-trip time nor what the far end lost of its stream. This one keeps
RFC 3550 reception statistics per source (A.1 sequence and loss, A.8 jitter) and answers each
sender report with a receiver report carrying them, LSR and DLSR (§6.4.1), and reports every
second on its own too (§6.2: receivers report periodically, SR or not; a short test call would
otherwise hear at most one early report). The caller gets its RTT and its outbound loss from the
far end's point of view, as with a real phone.
"""

from __future__ import annotations

import argparse
import selectors
import signal
import socket
import struct
import sys
import time

RTP_SEQ_MOD = 1 << 16
CLOCK = 8000  # PCMU/PCMA, what the lab's echo UAS offers
OUR_SSRC = 0x51B4E7C0
REPORT_EVERY = 1.0  # seconds between unsolicited receiver reports to an active source
REPORT_DELAY = 0.02  # answer an SR 20 ms later, as an endpoint on its own schedule would: DLSR
# is then a real delay (pjmedia ignores a report whose DLSR is 0 when computing RTT)
CNAME = b"echo@sipkit.lab"


class Source:
    """Reception statistics of one RTP source (RFC 3550 A.1, A.3, A.8)."""

    def __init__(self, seq: int):
        self.base_seq, self.max_seq, self.cycles = seq, seq, 0
        self.received = 0
        self.expected_prior = self.received_prior = 0
        self.transit: float | None = None
        self.jitter = 0.0
        self.last_sr: tuple[int, float] | None = None  # (middle 32 bits of its NTP, arrival)
        self.rtcp_addr: tuple | None = None  # where its RTCP comes from (else RTP port + 1)
        self.last_packet = 0.0

    def packet(self, seq: int, rtp_ts: int, arrival: float) -> None:
        delta = (seq - self.max_seq) % RTP_SEQ_MOD
        if delta < 3000:  # in order, or a small jump (A.1's MAX_DROPOUT)
            if seq < self.max_seq:
                self.cycles += RTP_SEQ_MOD
            self.max_seq = seq
        self.received += 1
        transit = arrival * CLOCK - rtp_ts
        if self.transit is not None:
            d = abs(transit - self.transit)
            self.jitter += (d - self.jitter) / 16
        self.transit = transit

    def report_block(self, ssrc: int, now: float) -> bytes:
        extended = self.cycles + self.max_seq
        expected = extended - self.base_seq + 1
        lost = max(0, expected - self.received)
        exp_int, rec_int = expected - self.expected_prior, self.received - self.received_prior
        self.expected_prior, self.received_prior = expected, self.received
        lost_int = exp_int - rec_int
        fraction = (lost_int << 8) // exp_int if exp_int > 0 and lost_int > 0 else 0
        lsr, dlsr = 0, 0
        if self.last_sr is not None:
            lsr = self.last_sr[0]
            dlsr = int((now - self.last_sr[1]) * 65536)
        return struct.pack("!IIIIII", ssrc, (fraction << 24) | min(lost, 0x7FFFFF),
                           extended & 0xFFFFFFFF, int(self.jitter) & 0xFFFFFFFF, lsr, dlsr)


def receiver_report(blocks: list[bytes]) -> bytes:
    """RR + SDES CNAME: a compound packet as §6.1 requires."""
    rr = struct.pack("!BBHI", 0x80 | len(blocks), 201, 1 + 6 * len(blocks), OUR_SSRC)
    rr += b"".join(blocks)
    item = bytes([1, len(CNAME)]) + CNAME + b"\0"
    item += b"\0" * (-len(item) % 4)
    sdes = struct.pack("!BBHI", 0x81, 202, len(item) // 4 + 1, OUR_SSRC) + item
    return rr + sdes


def sender_reports(data: bytes) -> list[tuple[int, int]]:
    """(SSRC, middle 32 bits of the NTP timestamp) of each SR in a compound packet."""
    out, i = [], 0
    while i + 8 <= len(data):
        first, pt, length = struct.unpack_from("!BBH", data, i)
        if first >> 6 != 2:
            break
        if pt == 200 and i + 20 <= len(data):
            ssrc, msw, lsw = struct.unpack_from("!III", data, i + 4)
            out.append((ssrc, ((msw & 0xFFFF) << 16) | (lsw >> 16)))
        i += (length + 1) * 4
    return out


class Echo:
    def __init__(self, ip: str, port: int):
        family = socket.AF_INET6 if ":" in ip else socket.AF_INET
        self.rtp = socket.socket(family, socket.SOCK_DGRAM)
        self.rtcp = socket.socket(family, socket.SOCK_DGRAM)
        self.rtp.bind((ip, port))
        self.rtcp.bind((ip, port + 1))
        self.sources: dict[int, Source] = {}
        self.due: list[tuple[float, tuple, list[int]]] = []  # (when, caller, SSRCs to report)

    def on_rtp(self) -> None:
        data, addr = self.rtp.recvfrom(2048)
        if len(data) >= 12 and data[0] >> 6 == 2:
            seq, ts, ssrc = struct.unpack_from("!HII", data, 2)
            src = self.sources.get(ssrc)
            if src is None:
                if len(self.sources) > 1000:  # a long-lived lab: forget old calls
                    self.sources.clear()
                src = self.sources[ssrc] = Source(seq)
            src.packet(seq, ts, time.monotonic())
            src.last_packet = time.monotonic()
            src.rtcp_addr = src.rtcp_addr or (addr[0], addr[1] + 1)
        self.rtp.sendto(data, addr)  # the echo, unchanged (what SIPp's -rtp_echo does)

    def on_rtcp(self) -> None:
        data, addr = self.rtcp.recvfrom(2048)
        now = time.monotonic()
        known = []
        for ssrc, ntp_mid in sender_reports(data):
            src = self.sources.get(ssrc)
            if src is not None:
                src.last_sr, src.rtcp_addr = (ntp_mid, now), addr
                known.append(ssrc)
        if known and len(self.due) < 1000:
            self.due.append((now + REPORT_DELAY, addr, known))

    def send_due(self) -> None:
        now = time.monotonic()
        ready = [d for d in self.due if d[0] <= now]
        self.due = [d for d in self.due if d[0] > now]
        for _, addr, ssrcs in ready:
            blocks = [self.sources[s].report_block(s, now) for s in ssrcs if s in self.sources]
            if blocks:
                self.rtcp.sendto(receiver_report(blocks[:31]), addr)

    def report_active(self) -> None:
        now = time.monotonic()
        for ssrc, src in self.sources.items():
            if now - src.last_packet < 2 * REPORT_EVERY and src.rtcp_addr is not None:
                self.due.append((now, src.rtcp_addr, [ssrc]))

    def serve(self) -> None:
        sel = selectors.DefaultSelector()
        sel.register(self.rtp, selectors.EVENT_READ, self.on_rtp)
        sel.register(self.rtcp, selectors.EVENT_READ, self.on_rtcp)
        next_report = time.monotonic() + REPORT_EVERY
        while True:
            if time.monotonic() >= next_report:
                self.report_active()
                next_report = time.monotonic() + REPORT_EVERY
            wait = max(0.0, min([d[0] for d in self.due] + [next_report]) - time.monotonic())
            for key, _ in sel.select(wait):
                try:
                    key.data()
                except OSError:  # ICMP from a caller that hung up: not our problem
                    pass
            try:
                self.send_due()
            except OSError:
                pass


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m sipkit.lab.rtp_echo")
    ap.add_argument("--ip", required=True)
    ap.add_argument("--port", type=int, default=6000)
    args = ap.parse_args(argv)
    try:
        echo = Echo(args.ip, args.port)
    except OSError as exc:
        print(f"rtp_echo: cannot bind {args.ip}:{args.port}/{args.port + 1}: {exc.strerror} "
              "(a lab from an older sipkit still running? `sipkit lab down`, then `up`)",
              file=sys.stderr)
        return 1
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"rtp_echo: RTP {args.ip}:{args.port}, RTCP {args.port + 1}", file=sys.stderr)
    echo.serve()
    return 0


if __name__ == "__main__":
    sys.exit(main())
