"""`sipkit check --pcap FILE`: every SIP message sipkit sent and received, as a pcap.

No sniffing and no root: the transports' tap hands over what sipkit itself sent and received,
with the real addresses, ports and wall-clock times, and this module writes it with scapy
(imported lazily: `sipkit --help` must not pay for it).

- UDP is written as IP/UDP, one datagram per message.
- TCP and TLS are written as IP/TCP segments (PSH+ACK) with consistent sequence and
  acknowledgement numbers per connection, so Wireshark and sngrep reassemble the stream. Large
  payloads are split into segments that fit an IP packet. No handshake is invented: packet
  counts equal message/chunk counts.
- **TLS is written decrypted** (sipkit is the TLS endpoint, so it has the clear text) on its real
  port, usually 5061. Wireshark expects TLS there: use *Decode As… → SIP* for tcp port 5061, or
  `tshark -d tcp.port==5061,sip -r FILE`.
- IPv4 and IPv6 (IPv4-mapped IPv6 addresses are written as IPv4), fake all-zero Ethernet
  headers as on a Linux loopback capture.

Secrets (decided): **digest responses are redacted**, not kept. Before anything is written, the
SIP text goes through ``sipkit.redact.redact_text``: ``response=`` and ``cnonce=`` of
Authorization/Proxy-Authorization become ``"<redacted>"`` (they are a password-equivalent for an
offline dictionary attack), bearer tokens are masked, and every literal secret passed in (the
run's passwords, API token) is replaced wherever it appears. Wireshark therefore shows the
``Authorization`` header with ``response="<redacted>"``; the challenge (realm, nonce, qop,
algorithm), usernames and everything else stay, which is what support needs. Bytes are mapped
1:1 through latin-1, so non-UTF-8 bodies survive unchanged. The file is created mode 0600.

Test calls run in pjsua2's own process; their SIP reaches this file through pjsua's message
log (``sipkit.media.worker``), with the call's SIP listener as the local port for TCP/TLS (the
connection's ephemeral port is not in the log). Their RTP is not written.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Iterable
from pathlib import Path

from .redact import redact_text

Packet = tuple  # (direction, data, local, remote, transport, ts)
MAX_SEGMENT = 65000  # payload bytes per TCP segment: IPv4 total length is 16 bits
_ISN_LOCAL, _ISN_REMOTE = 1000, 5000


class PcapRecorder:
    """Collects tap calls in memory (bounded) and writes them as one pcap at the end.

    ``tap`` has the transports' tap signature, so ``recorder.tap`` can be handed to
    ``sipkit.net.transport.connect(..., tap=...)`` directly or called from another tap.
    Past ``max_packets`` further packets are counted in ``dropped`` and not kept.
    """

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
                             transport, float(ts)))

    def write(self, path: str | Path, secrets: Iterable[str] = ()) -> int:
        """Write the pcap; returns the number of packets written."""
        return write_pcap(path, self.packets, list(secrets))


def clean(data: bytes, secrets: Iterable[str] = ()) -> bytes:
    """``data`` with digest responses, bearer tokens and the literal ``secrets`` masked."""
    as_latin1 = [s.encode("utf-8").decode("latin-1") for s in secrets if s]
    return redact_text(data.decode("latin-1"), as_latin1).encode("latin-1")


def _addr(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    ip = ipaddress.ip_address(str(host).split("%", 1)[0].strip("[]"))
    if ip.version == 6 and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def write_pcap(path: str | Path, packets: Iterable[Packet], secrets: Iterable[str] = ()) -> int:
    """Write tap tuples ``(direction, data, local, remote, transport, ts)`` as a pcap.

    ``direction`` "out" means local → remote. Packets are written in time order. Returns the
    number of packets written (a TCP payload over MAX_SEGMENT bytes counts once per segment;
    a tuple whose addresses cannot be written is skipped).
    """
    from scapy.layers.inet import IP, TCP, UDP
    from scapy.layers.inet6 import IPv6
    from scapy.layers.l2 import Ether
    from scapy.packet import Raw
    from scapy.utils import PcapWriter

    secrets = list(secrets)
    path = Path(path)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.close(fd)
    os.chmod(path, 0o600)  # an existing file keeps its mode under O_CREAT
    # (local, remote, transport) -> [next seq sent by local, next seq sent by remote]
    seqs: dict[tuple, list[int]] = {}
    count = 0
    writer = PcapWriter(str(path), linktype=1, sync=False)
    try:
        for direction, data, local, remote, transport, ts in sorted(packets, key=lambda p: p[5]):
            try:
                lip, rip = _addr(local[0]), _addr(remote[0])
            except (ValueError, TypeError, IndexError):
                continue
            if lip.version != rip.version:
                continue
            out = direction == "out"
            (sip, sport), (dip, dport) = ((lip, local[1]), (rip, remote[1])) if out \
                else ((rip, remote[1]), (lip, local[1]))
            v6 = lip.version == 6
            # Fixed MACs, as on a loopback capture: scapy must not try ARP to fill them in.
            eth = Ether(src="00:00:00:00:00:00", dst="00:00:00:00:00:00",
                        type=0x86DD if v6 else 0x0800)
            ip = IPv6(src=str(sip), dst=str(dip)) if v6 else IP(src=str(sip), dst=str(dip))
            payload = clean(bytes(data), secrets)
            if transport == "udp":
                pkts = [eth / ip / UDP(sport=sport, dport=dport) / Raw(payload)]
            else:
                flow = seqs.setdefault((local[:2], remote[:2], transport),
                                       [_ISN_LOCAL, _ISN_REMOTE])
                mine, theirs = (0, 1) if out else (1, 0)
                pkts = []
                for i in range(0, max(len(payload), 1), MAX_SEGMENT):
                    chunk = payload[i:i + MAX_SEGMENT]
                    pkts.append(eth / ip / TCP(sport=sport, dport=dport, flags="PA",
                                               seq=flow[mine] & 0xFFFFFFFF,
                                               ack=flow[theirs] & 0xFFFFFFFF) / Raw(chunk))
                    flow[mine] += len(chunk)
            for pkt in pkts:
                pkt.time = ts
                writer.write(pkt)
                count += 1
    finally:
        writer.close()
    return count
