"""Stream a capture (pcap or pcapng, via scapy's raw readers) into transport payloads.

Headers are parsed with struct rather than dissected by scapy: a 100 MB capture is a million
packets, and only IP, UDP and TCP headers matter here. Memory is bounded: IPv4 fragments and
out-of-order TCP segments wait in capped buffers, oldest dropped first.
"""

from __future__ import annotations

import struct
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field

MAX_FRAG_KEYS = 2048
MAX_TCP_FLOWS = 4096
MAX_OOO_BYTES = 256 * 1024


@dataclass
class Datagram:
    ts: float
    src: str
    sport: int
    dst: str
    dport: int
    proto: str  # "udp" | "tcp"
    payload: bytes


@dataclass
class ReadStats:
    packets: int = 0
    ip_fragments: int = 0
    reassembled: int = 0
    skipped_linktype: int = 0
    truncated: bool = False
    error: str | None = None
    linktypes: set = field(default_factory=set)


def _ip_str(raw: bytes) -> str:
    import ipaddress

    return str(ipaddress.ip_address(raw))


def _l3(linktype: int, frame: bytes) -> bytes | None:
    """The IP packet inside a link-layer frame, for the link types captures here have."""
    if linktype == 1:  # Ethernet (Linux `lo` too)
        if len(frame) < 14:
            return None
        etype = struct.unpack_from("!H", frame, 12)[0]
        off = 14
        while etype in (0x8100, 0x88A8) and len(frame) >= off + 4:  # VLAN tags
            etype = struct.unpack_from("!H", frame, off + 2)[0]
            off += 4
        return frame[off:] if etype in (0x0800, 0x86DD) else None
    if linktype == 113:  # Linux cooked (SLL)
        return frame[16:] if len(frame) > 16 else None
    if linktype == 276:  # SLL2
        return frame[20:] if len(frame) > 20 else None
    if linktype in (101, 12, 14):  # raw IP
        return frame
    if linktype == 0:  # BSD loopback / NULL
        return frame[4:] if len(frame) > 4 else None
    return None


class _Tcp:
    """One direction of a TCP flow, reassembled in order; gaps are waited for (bounded)."""

    def __init__(self, seq: int):
        self.next = seq
        self.pending: dict[int, bytes] = {}
        self.pending_bytes = 0

    def add(self, seq: int, data: bytes) -> bytes:
        out = b""
        if seq < self.next:  # retransmission or overlap: keep only what is new
            data = data[self.next - seq:]
            seq = self.next
        if not data:
            return b""
        if seq > self.next:
            if self.pending_bytes + len(data) > MAX_OOO_BYTES:  # give up on the gap
                self.pending.clear()
                self.pending_bytes = 0
                self.next = seq
            else:
                self.pending[seq] = data
                self.pending_bytes += len(data)
                return b""
        out += data
        self.next = seq + len(data)
        while self.next in self.pending:
            chunk = self.pending.pop(self.next)
            self.pending_bytes -= len(chunk)
            out += chunk
            self.next += len(chunk)
        return out


def _timestamp(meta) -> float:
    if hasattr(meta, "sec"):
        return meta.sec + meta.usec / 1e6
    return ((meta.tshigh << 32) | meta.tslow) / meta.tsresol


def datagrams(path: str, stats: ReadStats) -> Iterator[Datagram]:
    import logging

    logging.getLogger("scapy.runtime").setLevel(logging.ERROR)  # we report truncation ourselves
    from scapy.utils import RawPcapReader

    try:
        reader = RawPcapReader(path)
    except Exception as exc:  # noqa: BLE001 - scapy raises plain Scapy_Exception/OSError here
        raise ValueError(f"not a pcap or pcapng file ({exc})") from None
    frags: OrderedDict[tuple, dict] = OrderedDict()
    flows: OrderedDict[tuple, _Tcp] = OrderedDict()
    try:
        it = iter(reader)
        while True:
            try:
                frame, meta = next(it)
            except StopIteration:
                break
            except EOFError:
                stats.truncated = True
                break
            except Exception as exc:  # noqa: BLE001 - a corrupt block ends the stream
                stats.truncated, stats.error = True, f"{type(exc).__name__}: {exc}"
                break
            stats.packets += 1
            caplen = getattr(meta, "caplen", None)
            if caplen is not None and len(frame) < caplen:  # the file ends inside a packet
                stats.truncated, stats.error = True, "the last packet is cut short"
                break
            linktype = getattr(meta, "linktype", None) or getattr(reader, "linktype", 1)
            stats.linktypes.add(linktype)
            ip = _l3(linktype, frame)
            if ip is None:
                stats.skipped_linktype += 1
                continue
            ts = _timestamp(meta)
            yield from _ip(ip, ts, stats, frags, flows)
    finally:
        reader.close()


def _ip(ip: bytes, ts: float, stats: ReadStats, frags, flows) -> Iterator[Datagram]:
    if len(ip) < 20:
        return
    version = ip[0] >> 4
    if version == 4:
        ihl = (ip[0] & 0x0F) * 4
        total = struct.unpack_from("!H", ip, 2)[0]
        ident, flags_off = struct.unpack_from("!HH", ip, 4)
        proto = ip[9]
        src, dst = _ip_str(ip[12:16]), _ip_str(ip[16:20])
        body = ip[ihl:total] if total >= ihl else ip[ihl:]
        more, offset = bool(flags_off & 0x2000), (flags_off & 0x1FFF) * 8
        if more or offset:
            stats.ip_fragments += 1
            key = (src, dst, ident, proto)
            entry = frags.setdefault(key, {"parts": {}, "total": None})
            entry["parts"][offset] = body
            if not more:
                entry["total"] = offset + len(body)
            if len(frags) > MAX_FRAG_KEYS:
                frags.popitem(last=False)
            if entry["total"] is None:
                return
            data, pos = b"", 0
            for off in sorted(entry["parts"]):
                if off != pos:
                    return  # still a hole
                data += entry["parts"][off]
                pos = off + len(entry["parts"][off])
            if pos != entry["total"]:
                return
            del frags[key]
            stats.reassembled += 1
            body = data
    elif version == 6:
        if len(ip) < 40:
            return
        proto = ip[6]
        src, dst = _ip_str(ip[8:24]), _ip_str(ip[24:40])
        body = ip[40:40 + struct.unpack_from("!H", ip, 4)[0]]
    else:
        return
    if proto == 17 and len(body) >= 8:
        sport, dport = struct.unpack_from("!HH", body, 0)
        yield Datagram(ts, src, sport, dst, dport, "udp", body[8:])
    elif proto == 6 and len(body) >= 20:
        sport, dport, seq = struct.unpack_from("!HHI", body, 0)
        data_off = (body[12] >> 4) * 4
        flags = body[13]
        key = (src, sport, dst, dport)
        flow = flows.get(key)
        if flow is None or flags & 0x02:  # SYN starts (or restarts) a flow
            flow = flows[key] = _Tcp(seq + (1 if flags & 0x02 else 0))
            if len(flows) > MAX_TCP_FLOWS:
                flows.popitem(last=False)
        payload = body[data_off:]
        if payload:
            data = flow.add(seq, payload)
            if data:
                yield Datagram(ts, src, sport, dst, dport, "tcp", data)
