"""A tiny authoritative DNS server over UDP, for tests and the lab.

Serves a zone given as ``{"name": {"A": [...], "SRV": ["10 60 5060 pbx.example."], ...}}``;
names in ``servfail`` get SERVFAIL, names in ``drop`` get no answer at all (a resolver
timeout), anything else NXDOMAIN. No traffic leaves the address it binds.

    python -m sipkit.lab.dns --listen 127.0.0.5:5353 --zone zone.json
"""

from __future__ import annotations

import argparse
import json
import socket
import threading

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset


class DnsServer:
    def __init__(self, ip: str, port: int = 0, zone: dict | None = None,
                 servfail: list[str] = (), drop: list[str] = (), ttl: int = 300):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((ip, port))
        self.sock.settimeout(0.1)
        self.address = self.sock.getsockname()
        self.ttl = ttl
        self.zone = {dns.name.from_text(k): v for k, v in (zone or {}).items()}
        self.servfail = {dns.name.from_text(n) for n in servfail}
        self.drop = {dns.name.from_text(n) for n in drop}
        self.queries: list[tuple[str, str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    @property
    def nameserver(self) -> str:
        return f"{self.address[0]}:{self.address[1]}"

    def start(self) -> DnsServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()

    def __enter__(self) -> DnsServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def answer(self, wire: bytes) -> bytes | None:
        try:
            query = dns.message.from_wire(wire)
        except Exception:  # noqa: BLE001 - a broken query gets no answer, like a real server
            return None
        if not query.question:
            return None
        q = query.question[0]
        self.queries.append((q.name.to_text(), dns.rdatatype.to_text(q.rdtype)))
        if q.name in self.drop:
            return None
        resp = dns.message.make_response(query)
        resp.flags |= dns.flags.AA
        if q.name in self.servfail:
            resp.set_rcode(dns.rcode.SERVFAIL)
            return resp.to_wire()
        records = self.zone.get(q.name)
        if records is None:
            resp.set_rcode(dns.rcode.NXDOMAIN)
            return resp.to_wire()
        rdtype = dns.rdatatype.to_text(q.rdtype)
        values = records.get(rdtype, [])
        if values:
            rrset = dns.rrset.from_text_list(q.name, self.ttl, "IN", rdtype, values)
            resp.answer.append(rrset)
        return resp.to_wire()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                data, addr = self.sock.recvfrom(4096)
            except (TimeoutError, OSError):
                continue
            out = self.answer(data)
            if out is not None:
                self.sock.sendto(out, addr)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--listen", required=True, metavar="IP:PORT")
    ap.add_argument("--zone", required=True, help="JSON file: {zone, servfail, drop}")
    args = ap.parse_args()
    ip, port = args.listen.rsplit(":", 1)
    spec = json.loads(open(args.zone).read())
    server = DnsServer(ip, int(port), spec.get("zone", spec), spec.get("servfail", []),
                       spec.get("drop", []))
    print(f"dns ready on {server.nameserver}", flush=True)
    server._loop()


if __name__ == "__main__":
    main()
