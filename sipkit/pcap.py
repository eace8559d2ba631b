"""`sipkit check --pcap FILE`: every SIP message sipkit sent and received, as a pcap.

No sniffing and no root: the transports' tap hands over what sipkit itself sent and received,
with the real addresses, ports and times. UDP is written as IP/UDP; TCP and TLS as IP/TCP
segments with consistent sequence numbers per connection. TLS is written *decrypted* (sipkit
is the endpoint) on its real port, so Wireshark needs "Decode As SIP" for 5061
(`tshark -d tcp.port==5061,sip`). Secrets: digest ``response``/``cnonce`` are masked like in the
report, and the run's passwords are replaced wherever they appear; the pcap is written 0600.
Test calls run in pjsua2's own process and are not in the file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .redact import redact_text

Packet = tuple  # (direction, data, local, remote, transport, ts)


@dataclass
class _Flow:
    seq_local: int
    seq_remote: int


class PcapRecorder:
    def __init__(self, max_packets: int = 20000):
        self.max_packets = max_packets
        self.packets: list[Packet] = []
        self.dropped = 0

    def tap(self, direction: str, data: bytes, local: tuple, remote: tuple, transport: str,
            ts: float) -> None:
        if len(self.packets) >= self.max_packets:
            self.dropped += 1
            return
        self.packets.append((direction, bytes(data), tuple(local[:2]), tuple(remote[:2]),
                             transport, ts))

    def write(self, path: str | Path, secrets: list[str] = ()) -> int:
        return write_pcap(path, self.packets, secrets)


def _clean(data: bytes, secrets: list[str]) -> bytes:
    return redact_text(data.decode("utf-8", errors="replace"), secrets).encode("utf-8")


def write_pcap(path: str | Path, packets: list[Packet], secrets: list[str] = ()) -> int:
    from scapy.layers.inet import IP, TCP, UDP
    from scapy.layers.inet6 import IPv6
    from scapy.layers.l2 import Ether
    from scapy.packet import Raw
    from scapy.utils import PcapWriter

    flows: dict[tuple, _Flow] = {}
    path = Path(path)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.close(fd)
    writer = PcapWriter(str(path), linktype=1, sync=False)
    count = 0
    try:
        for direction, data, local, remote, transport, ts in sorted(packets, key=lambda p: p[5]):
            src, dst = (local, remote) if direction == "out" else (remote, local)
            # Fixed MACs, as on a loopback capture: scapy must not try ARP to fill them in.
            eth = Ether(src="00:00:00:00:00:00", dst="00:00:00:00:00:00",
                        type=0x86DD if ":" in src[0] else 0x0800)
            payload = _clean(data, secrets)
            ip = (IPv6(src=src[0], dst=dst[0]) if ":" in src[0]
                  else IP(src=src[0], dst=dst[0]))
            if transport == "udp":
                pkt = eth / ip / UDP(sport=src[1], dport=dst[1]) / Raw(payload)
            else:
                key = (local, remote)
                flow = flows.setdefault(key, _Flow(1000, 5000))
                if direction == "out":
                    seq, ack = flow.seq_local, flow.seq_remote
                    flow.seq_local += len(payload)
                else:
                    seq, ack = flow.seq_remote, flow.seq_local
                    flow.seq_remote += len(payload)
                pkt = eth / ip / TCP(sport=src[1], dport=dst[1], flags="PA", seq=seq,
                                         ack=ack) / Raw(payload)
            pkt.time = ts
            writer.write(pkt)
            count += 1
    finally:
        writer.close()
    return count
