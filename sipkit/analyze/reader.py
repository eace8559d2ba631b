"""Stream a capture (pcap or pcapng, via scapy's raw readers) into transport payloads.

Headers are parsed with struct rather than dissected by scapy: a 100 MB capture is a million
packets, and only IP, UDP and TCP headers matter here. Memory is bounded: IPv4 fragments and
IPv6 fragments and out-of-order TCP segments wait in capped buffers, oldest dropped first.
"""

from __future__ import annotations

import socket
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
    # inet_ntop is C and prints like ipaddress (RFC 5952 for IPv6); 4x faster per packet
    return socket.inet_ntop(socket.AF_INET if len(raw) == 4 else socket.AF_INET6, raw)


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


def _delta(a: int, b: int) -> int:
    """a - b in TCP sequence space (RFC 1982 serial arithmetic, 32 bits)."""
    d = (a - b) & 0xFFFFFFFF
    return d - (1 << 32) if d & 0x80000000 else d


class _Tcp:
    """One direction of a TCP flow, reassembled in order; gaps are waited for (bounded)."""

    def __init__(self, seq: int):
        self.next = seq
        self.pending: dict[int, bytes] = {}
        self.pending_bytes = 0

    def add(self, seq: int, data: bytes) -> bytes:
        behind = _delta(self.next, seq)
        if behind > 0:  # retransmission or overlap: keep only what is new
            data = data[behind:]
            seq = self.next
        if not data:
            return b""
        if seq != self.next:
            if self.pending_bytes + len(data) > MAX_OOO_BYTES:  # give up on the gap
                self.pending.clear()
                self.pending_bytes = 0
                self.next = seq
            else:
                if seq not in self.pending:
                    self.pending[seq] = data
                    self.pending_bytes += len(data)
                return b""
        out = [data]
        self.next = (seq + len(data)) & 0xFFFFFFFF
        while self.pending:
            for start in list(self.pending):
                if _delta(self.next, start) >= 0:  # reachable now (maybe overlapping)
                    chunk = self.pending.pop(start)
                    self.pending_bytes -= len(chunk)
                    chunk = chunk[_delta(self.next, start):]
                    if chunk:
                        out.append(chunk)
                        self.next = (self.next + len(chunk)) & 0xFFFFFFFF
                    break
            else:
                break
        return b"".join(out)


def _timestamp(meta) -> float:
    if hasattr(meta, "sec"):
        return meta.sec + meta.usec / 1e6
    return ((meta.tshigh << 32) | meta.tslow) / meta.tsresol


def datagrams(path: str, stats: ReadStats) -> Iterator[Datagram]:
    """The UDP datagrams and reassembled TCP stream chunks of a capture, in file order.

    Raises ValueError when the file is not a pcap/pcapng at all (OSError when it cannot be
    opened). A file that ends early or has a corrupt block ends the stream and sets
    ``stats.truncated`` (and ``stats.error``): the caller reports a partial analysis.
    """
    import logging

    logging.getLogger("scapy.runtime").setLevel(logging.ERROR)  # we report truncation ourselves
    from scapy.utils import RawPcapReader

    with open(path, "rb"):  # OSError (missing, permission) as itself, before scapy wraps it
        pass
    try:
        reader = RawPcapReader(path)
    except Exception as exc:  # noqa: BLE001 - scapy raises plain Scapy_Exception here
        raise ValueError(f"not a pcap or pcapng file ({exc})") from None
    frags = _Fragments()
    flows: OrderedDict[tuple, _Tcp] = OrderedDict()
    fobj = getattr(reader, "f", None)
    pos = fobj.tell() if fobj is not None else None  # offset after the last whole packet
    ended = False
    try:
        it = iter(reader)
        while True:
            try:
                frame, meta = next(it)
            except (StopIteration, EOFError):
                ended = True
                break
            except Exception as exc:  # noqa: BLE001 - a corrupt block ends the stream
                stats.truncated, stats.error = True, f"{type(exc).__name__}: {exc}"
                break
            caplen = getattr(meta, "caplen", None)
            if caplen is not None and len(frame) < caplen:  # the file ends inside a packet
                stats.truncated, stats.error = True, "the last packet is cut short"
                break
            stats.packets += 1
            if pos is not None:
                pos = fobj.tell()
            linktype = getattr(meta, "linktype", None) or getattr(reader, "linktype", 1)
            stats.linktypes.add(linktype)
            ip = _l3(linktype, frame)
            if ip is None:
                stats.skipped_linktype += 1
                continue
            ts = _timestamp(meta)
            yield from _ip(ip, ts, stats, frags, flows)
        if ended and pos is not None:
            problem = _tail_problem(path, pos, type(reader).__name__ == "RawPcapNgReader")
            if problem:
                stats.truncated, stats.error = True, problem
    finally:
        reader.close()


def _tail_problem(path: str, pos: int, pcapng: bool) -> str | None:
    """scapy reports a cut-off file as a plain end of file; tell the two apart by walking
    what follows the last packet read: nothing (pcap) or whole blocks (pcapng)."""
    import os

    with open(path, "rb") as f:
        if f.read(2) == b"\x1f\x8b":
            return None  # gzip: offsets are not file offsets; trust the reader
        size = os.fstat(f.fileno()).st_size
        if not pcapng:
            return None if pos >= size else f"the file ends inside a packet record ({size - pos}" \
                " bytes left over)"
        f.seek(pos)
        endian = "<"
        while pos < size:
            head = f.read(8)
            if len(head) < 8:
                return "the file ends inside a pcapng block"
            if head[:4] == b"\x0a\x0d\x0d\x0a":  # a new section may change byte order
                magic = f.read(4)
                endian = ">" if magic == b"\x1a\x2b\x3c\x4d" else "<"
                f.seek(-4, 1)
            blocklen = struct.unpack(endian + "I", head[4:])[0]
            if blocklen < 12 or blocklen % 4 or pos + blocklen > size:
                return "the file ends inside a pcapng block"
            pos += blocklen
            f.seek(pos)
    return None


class _Fragments:
    """IP fragments waiting for their siblings (IPv4 and IPv6 alike), keyed by
    (src, dst, id, proto); the oldest datagram is dropped once MAX_FRAG_KEYS are pending."""

    def __init__(self) -> None:
        self.pending: OrderedDict[tuple, dict] = OrderedDict()

    def add(self, key: tuple, offset: int, more: bool, data: bytes) -> bytes | None:
        entry = self.pending.get(key)
        if entry is None:
            entry = self.pending[key] = {"parts": {}, "total": None, "bytes": 0}
            if len(self.pending) > MAX_FRAG_KEYS:
                self.pending.popitem(last=False)
        if offset not in entry["parts"]:
            entry["bytes"] += len(data)
        entry["parts"][offset] = data
        if not more:
            entry["total"] = offset + len(data)
        if entry["bytes"] > 65535 + 1500:  # no IP datagram is that large: garbage
            del self.pending[key]
            return None
        if entry["total"] is None:
            return None
        out, pos = [], 0
        for off in sorted(entry["parts"]):
            if off > pos:
                return None  # still a hole
            chunk = entry["parts"][off][pos - off:]
            out.append(chunk)
            pos += len(chunk)
        if pos < entry["total"]:
            return None
        del self.pending[key]
        return b"".join(out)[:entry["total"]]


# IPv6 extension headers that may precede the transport header (RFC 8200 §4).
_V6_EXT = {0, 43, 60, 51}
_V6_FRAGMENT = 44


def _ip(ip: bytes, ts: float, stats: ReadStats, frags: _Fragments,
        flows) -> Iterator[Datagram]:
    if len(ip) < 20:
        return
    version = ip[0] >> 4
    if version == 4:
        ihl = (ip[0] & 0x0F) * 4
        total = struct.unpack_from("!H", ip, 2)[0]
        ident, flags_off = struct.unpack_from("!HH", ip, 4)
        proto = ip[9]
        src, dst = _ip_str(ip[12:16]), _ip_str(ip[16:20])
        # total == 0: TSO/offloaded packets captured before segmentation
        body = ip[ihl:total] if total >= ihl else ip[ihl:]
        more, offset = bool(flags_off & 0x2000), (flags_off & 0x1FFF) * 8
        if more or offset:
            stats.ip_fragments += 1
            body = frags.add((src, dst, ident, proto), offset, more, body)
            if body is None:
                return
            stats.reassembled += 1
    elif version == 6:
        if len(ip) < 40:
            return
        proto = ip[6]
        src, dst = _ip_str(ip[8:24]), _ip_str(ip[24:40])
        plen = struct.unpack_from("!H", ip, 4)[0]
        body = ip[40:40 + plen] if plen else ip[40:]
        while proto in _V6_EXT and len(body) >= 8:
            size = (body[1] + 2) * 4 if proto == 51 else (body[1] + 1) * 8
            proto, body = body[0], body[size:]
        if proto == _V6_FRAGMENT:
            if len(body) < 8:
                return
            nxt, flags_off, ident = body[0], struct.unpack_from("!H", body, 2)[0], \
                struct.unpack_from("!I", body, 4)[0]
            stats.ip_fragments += 1
            # the unfragmentable part is per fragment; fragments carry the rest from `nxt` on
            body = frags.add((src, dst, ident, nxt), flags_off & 0xFFF8, bool(flags_off & 1),
                             body[8:])
            if body is None:
                return
            stats.reassembled += 1
            proto = nxt
            while proto in _V6_EXT and len(body) >= 8:
                size = (body[1] + 2) * 4 if proto == 51 else (body[1] + 1) * 8
                proto, body = body[0], body[size:]
    else:
        return
    if proto == 17 and len(body) >= 8:
        sport, dport, length = struct.unpack_from("!HHH", body, 0)
        payload = body[8:length] if 8 <= length <= len(body) else body[8:]
        yield Datagram(ts, src, sport, dst, dport, "udp", payload)
    elif proto == 6 and len(body) >= 20:
        sport, dport, seq = struct.unpack_from("!HHI", body, 0)
        data_off = (body[12] >> 4) * 4
        flags = body[13]
        key = (src, sport, dst, dport)
        flow = flows.get(key)
        if flow is not None:
            flows.move_to_end(key)
        if flow is None or flags & 0x02:  # SYN starts (or restarts) a flow
            flow = flows[key] = _Tcp((seq + (1 if flags & 0x02 else 0)) & 0xFFFFFFFF)
            if len(flows) > MAX_TCP_FLOWS:
                flows.popitem(last=False)
        payload = body[data_off:]
        if payload:
            data = flow.add(seq, payload)
            if data:
                yield Datagram(ts, src, sport, dst, dport, "tcp", data)
