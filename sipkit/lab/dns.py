"""A tiny authoritative DNS server on UDP and TCP, for tests and the lab.

It serves a zone given as a dict, names to record types to rdata text::

    {"sipkit.test.": {"NAPTR": ['10 50 "s" "SIP+D2U" "" _sip._udp.sipkit.test.']},
     "_sip._udp.sipkit.test.": {"SRV": ["10 60 5060 pbx.sipkit.test."]},
     "pbx.sipkit.test.": {"A": ["127.0.0.10"], "TTL": 60},
     "www.sipkit.test.": {"CNAME": ["pbx.sipkit.test."]}}

Any record type dnspython parses works (A, AAAA, SRV, NAPTR, CNAME, TXT...); "TTL" sets the
name's TTL. Unknown names get NXDOMAIN, known names without the type NOERROR with no answer
(NODATA); a CNAME is followed inside the zone. Names listed in ``servfail`` get SERVFAIL, in
``refuse`` REFUSED, and in ``drop`` no answer at all (the client times out); an entry
"name TYPE" (e.g. "pbx.test. AAAA") does that for one record type only. A UDP answer too
big for the client's buffer is sent truncated (TC), so the client retries over TCP, like a
real server. It binds one address and port and never sends anywhere else.

In-process (a background thread; start()/stop() or ``with``)::

    with DnsServer("127.0.50.1", 0, zone, servfail=["bad.test."]) as dns:
        RunOptions(nameserver=dns.nameserver)

As a process (the zone file is JSON or YAML: a bare zone, or
``{"zone": {...}, "servfail": [...], "refuse": [...], "drop": [...], "ttl": 300}``)::

    python -m sipkit.lab.dns --listen 127.0.0.1:5353 --zone zone.json
"""

from __future__ import annotations

import argparse
import json
import signal
import socket
import struct
import sys
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdatatype
import dns.rrset
import yaml

from ..errors import LabError
from ..net.addresses import hostport

_POLL = 0.1  # how often blocked socket calls look at the stop flag (seconds)
_MAX_CNAME_CHAIN = 8


def _name(text: str) -> dns.name.Name:
    return dns.name.from_text(text)  # relative text is taken as absolute (root origin)


def _selectors(entries: Iterable[str]) -> set[tuple[dns.name.Name, int | None]]:
    """"name" (every type) or "name TYPE" (that type only), e.g. "pbx.test. AAAA"."""
    out: set[tuple[dns.name.Name, int | None]] = set()
    for entry in entries:
        parts = str(entry).split()
        if not parts or len(parts) > 2:
            raise LabError(f"DNS server: {entry!r} is not 'name' or 'name TYPE'")
        try:
            out.add((_name(parts[0]),
                     dns.rdatatype.from_text(parts[1].upper()) if len(parts) == 2 else None))
        except (dns.exception.DNSException, ValueError) as exc:
            raise LabError(f"DNS server: bad name or type in {entry!r}: {exc}") from None
    return out


def compile_zone(zone: Mapping[str, Mapping[str, Any]], ttl: int = 300
                 ) -> dict[dns.name.Name, dict[int, dns.rrset.RRset]]:
    """The zone dict as rrsets, checked up front: a bad record is a LabError naming it."""
    if not isinstance(zone, Mapping):
        raise LabError("DNS zone must be a mapping of name -> {TYPE: [rdata, ...]}")
    out: dict[dns.name.Name, dict[int, dns.rrset.RRset]] = {}
    for owner, records in zone.items():
        if not isinstance(records, Mapping):
            raise LabError(f"DNS zone: {owner}: must be a mapping of TYPE -> [rdata, ...]")
        try:
            name = _name(str(owner))
            name_ttl = int(records.get("TTL", records.get("ttl", ttl)))
        except (dns.exception.DNSException, TypeError, ValueError) as exc:
            raise LabError(f"DNS zone: bad name or TTL {owner!r}: {exc}") from None
        rrsets = out.setdefault(name, {})
        for rdtype, values in records.items():
            if rdtype.upper() == "TTL":
                continue
            values = [values] if isinstance(values, str) else list(values or [])
            if not values:
                continue
            try:
                rrset = dns.rrset.from_text_list(name, name_ttl, "IN", rdtype.upper(),
                                                 [str(v) for v in values],
                                                 origin=dns.name.root, relativize=False)
            except (dns.exception.DNSException, ValueError, TypeError) as exc:
                raise LabError(f"DNS zone: {owner} {rdtype}: bad record ({exc})") from None
            rrsets[rrset.rdtype] = rrset
        if dns.rdatatype.CNAME in rrsets and len(rrsets) > 1:
            raise LabError(f"DNS zone: {owner} has a CNAME and other records (RFC 1034 §3.6.2)")
    return out


class DnsServer:
    """An authoritative server for one zone dict on ``ip:port`` (UDP, and TCP unless off)."""

    def __init__(self, ip: str = "127.0.0.1", port: int = 0,
                 zone: Mapping[str, Mapping[str, Any]] | None = None, *,
                 servfail: Iterable[str] = (), refuse: Iterable[str] = (),
                 drop: Iterable[str] = (), ttl: int = 300, tcp: bool = True):
        self.zone = compile_zone(zone or {}, ttl)
        self.servfail = _selectors(servfail)
        self.refuse = _selectors(refuse)
        self.drop = _selectors(drop)
        self.queries: list[tuple[str, str, str]] = []  # (name, type, "udp" | "tcp")
        self.errors: list[str] = []  # internal errors while answering (should stay empty)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._conns: set[socket.socket] = set()
        self._lock = threading.Lock()
        self.udp, self.tcp = self._bind(ip, port, tcp)
        self.address: tuple[str, int] = self.udp.getsockname()[:2]

    # -- lifecycle ------------------------------------------------------------------------
    @staticmethod
    def _bind(ip: str, port: int, tcp: bool) -> tuple[socket.socket, socket.socket | None]:
        family = socket.AF_INET6 if ":" in ip else socket.AF_INET
        # With port 0 the kernel picks the UDP port; TCP must get the same number, which
        # another process may hold: try a few ports before giving up.
        for _ in range(5 if port == 0 else 1):
            udp = socket.socket(family, socket.SOCK_DGRAM)
            try:
                udp.bind((ip, port))
            except OSError as exc:
                udp.close()
                raise LabError(f"DNS server cannot bind UDP {ip}:{port}: {exc.strerror}") from None
            if not tcp:
                return udp, None
            lst = socket.socket(family, socket.SOCK_STREAM)
            lst.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                lst.bind((ip, udp.getsockname()[1]))
                lst.listen(16)
                return udp, lst
            except OSError as exc:
                udp.close()
                lst.close()
                error = exc
        raise LabError(f"DNS server cannot bind TCP {ip}:{port}: {error.strerror}")

    @property
    def nameserver(self) -> str:
        """The value for --nameserver / RunOptions.nameserver."""
        ip, port = self.address
        return hostport(ip, port)

    def start(self) -> DnsServer:
        self.udp.settimeout(_POLL)
        self._spawn(self._serve_udp)
        if self.tcp is not None:
            self.tcp.settimeout(_POLL)
            self._spawn(self._serve_tcp)
        return self

    def stop(self) -> None:
        self._stop.set()
        with self._lock:
            conns = list(self._conns)
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for t in self._threads:
            t.join(2)
        self.udp.close()
        if self.tcp is not None:
            self.tcp.close()

    def serve_forever(self) -> None:
        """Serve until stop() (from a signal handler or another thread)."""
        self.start()
        while not self._stop.wait(_POLL):
            pass

    def __enter__(self) -> DnsServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _spawn(self, fn, *args) -> None:
        t = threading.Thread(target=fn, args=args, daemon=True, name=f"dns-{fn.__name__}")
        self._threads.append(t)
        t.start()

    # -- answering ------------------------------------------------------------------------
    def answer(self, wire: bytes, via: str = "udp") -> bytes | None:
        """The response to one query in wire form, or None to stay silent."""
        try:
            query = dns.message.from_wire(wire)
        except Exception:  # noqa: BLE001 - unparsable bytes get no answer, like most servers
            return None
        if query.flags & dns.flags.QR:
            return None  # a response, not a query
        resp = dns.message.make_response(query)
        resp.flags |= dns.flags.AA
        resp.flags &= ~dns.flags.RA
        if query.opcode() != dns.opcode.QUERY or len(query.question) != 1:
            resp.set_rcode(dns.rcode.NOTIMP if query.opcode() != dns.opcode.QUERY
                           else dns.rcode.FORMERR)
            return resp.to_wire()
        q = query.question[0]
        self.queries.append((q.name.to_text(), dns.rdatatype.to_text(q.rdtype), via))
        hit = {(q.name, None), (q.name, q.rdtype)}
        if hit & self.drop:
            return None
        if hit & self.servfail:
            resp.set_rcode(dns.rcode.SERVFAIL)
            return resp.to_wire()
        if hit & self.refuse:
            resp.set_rcode(dns.rcode.REFUSED)
            return resp.to_wire()
        resp.set_rcode(self._fill(resp, q.name, q.rdtype))
        if via == "tcp":
            return resp.to_wire()
        # RFC 1035 §4.2.1 / RFC 6891 §6.2.5: fit the client's UDP buffer or set TC.
        limit = max(512, query.payload) if query.edns >= 0 else 512
        try:
            return resp.to_wire(max_size=limit)
        except dns.exception.TooBig:
            resp.answer.clear()
            resp.flags |= dns.flags.TC
            return resp.to_wire()

    def _fill(self, resp: dns.message.Message, qname: dns.name.Name, rdtype: int) -> int:
        """Put the answer into resp; returns the rcode (CNAMEs followed within the zone)."""
        name = qname
        for _ in range(_MAX_CNAME_CHAIN):
            rrsets = self.zone.get(name)
            if rrsets is None:
                # RFC 6604: the rcode speaks of the last name of the chain.
                return dns.rcode.NXDOMAIN
            if rdtype == dns.rdatatype.ANY:
                resp.answer.extend(rrsets.values())
                return dns.rcode.NOERROR
            if rdtype in rrsets:
                resp.answer.append(rrsets[rdtype])
                return dns.rcode.NOERROR
            cname = rrsets.get(dns.rdatatype.CNAME)
            if cname is None:
                return dns.rcode.NOERROR  # NODATA
            resp.answer.append(cname)
            name = cname[0].target
        return dns.rcode.NOERROR  # a CNAME loop: stop, as resolvers do

    def _safe_answer(self, wire: bytes, via: str) -> bytes | None:
        """answer(), but a bug in it must not kill the serving thread: the query is dropped
        and the error kept for the test to see."""
        try:
            return self.answer(wire, via)
        except Exception as exc:  # noqa: BLE001
            self.errors.append(f"{type(exc).__name__}: {exc}")
            return None

    # -- transports -----------------------------------------------------------------------
    def _serve_udp(self) -> None:
        while not self._stop.is_set():
            try:
                data, addr = self.udp.recvfrom(65535)
            except (TimeoutError, OSError):
                continue
            out = self._safe_answer(data, "udp")
            if out is not None:
                try:
                    self.udp.sendto(out, addr)
                except OSError:
                    pass

    def _serve_tcp(self) -> None:
        assert self.tcp is not None
        while not self._stop.is_set():
            try:
                conn, _ = self.tcp.accept()
            except (TimeoutError, OSError):
                continue
            with self._lock:
                self._conns.add(conn)
            self._spawn(self._serve_conn, conn)

    def _serve_conn(self, conn: socket.socket) -> None:
        """RFC 1035 §4.2.2: two-byte length, then the message; many per connection."""
        conn.settimeout(_POLL)
        buf = b""
        try:
            while not self._stop.is_set():
                try:
                    chunk = conn.recv(65535)
                except TimeoutError:
                    continue
                if not chunk:
                    return
                buf += chunk
                while len(buf) >= 2 and len(buf) >= 2 + struct.unpack("!H", buf[:2])[0]:
                    size = struct.unpack("!H", buf[:2])[0]
                    msg, buf = buf[2:2 + size], buf[2 + size:]
                    out = self._safe_answer(msg, "tcp")
                    if out is not None:
                        conn.sendall(struct.pack("!H", len(out)) + out)
        except OSError:
            return
        finally:
            with self._lock:
                self._conns.discard(conn)
            conn.close()


# -- command line ----------------------------------------------------------------------------

def load_spec(path: str | Path) -> dict[str, Any]:
    """A zone file: JSON or YAML, a bare zone or {zone, servfail, refuse, drop, ttl}."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise LabError(f"cannot read DNS zone file {p}: {exc.strerror}") from None
    try:
        spec = yaml.safe_load(text) if p.suffix in (".yaml", ".yml") else json.loads(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise LabError(f"DNS zone file {p} is not valid: {exc}") from None
    if not isinstance(spec, dict):
        raise LabError(f"DNS zone file {p} must hold a mapping")
    if "zone" in spec:
        return spec
    return {"zone": spec}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m sipkit.lab.dns",
                                 description=__doc__.splitlines()[0])
    ap.add_argument("--listen", required=True, metavar="IP:PORT")
    ap.add_argument("--zone", required=True, metavar="FILE",
                    help="JSON or YAML: a zone, or {zone, servfail, refuse, drop, ttl}")
    ap.add_argument("--no-tcp", action="store_true", help="serve UDP only")
    args = ap.parse_args(argv)
    from ..net.addresses import split_hostport

    try:
        ip, port = split_hostport(args.listen, 53)
        spec = load_spec(args.zone)
        server = DnsServer(ip.strip("[]"), port, spec.get("zone") or {},
                           servfail=spec.get("servfail", []), refuse=spec.get("refuse", []),
                           drop=spec.get("drop", []), ttl=int(spec.get("ttl", 300)),
                           tcp=not args.no_tcp)
    except ValueError as exc:
        print(f"error: --listen: {exc}", file=sys.stderr)
        return 2
    except LabError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    def stop(*_: object) -> None:
        server._stop.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"dns ready on {server.nameserver} ({len(server.zone)} names)", flush=True)
    server.serve_forever()
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
