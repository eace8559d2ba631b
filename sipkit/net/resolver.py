"""RFC 3263 §4 server location on dnspython: NAPTR -> SRV -> A/AAAA, every lookup recorded.

The site always has a port (the API defaults it to 5060), and the connector will use exactly
that host and port. So: an IP literal skips DNS; for a name, A/AAAA give the addresses to try
on the configured port, and NAPTR/SRV are still asked — not to choose the port, but so the dns
check can warn when the domain advertises another one (a PBX moved to 5080, TLS on 5062...).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import dns.asyncresolver
import dns.exception
import dns.resolver
import dns.rdatatype

from .addresses import parse_ip

NAPTR_SERVICE = {"udp": "SIP+D2U", "tls": "SIPS+D2T"}
SRV_PREFIX = {"udp": "_sip._udp.", "tls": "_sips._tcp."}


@dataclass
class Lookup:
    qname: str
    rdtype: str
    outcome: str  # answer | nxdomain | nodata | servfail | timeout | error
    answers: list[str] = field(default_factory=list)
    ttl: int | None = None
    ms: float = 0.0

    def as_dict(self) -> dict:
        return {"qname": self.qname, "rdtype": self.rdtype, "outcome": self.outcome,
                "answers": self.answers, "ttl": self.ttl, "ms": self.ms}


@dataclass
class Srv:
    priority: int
    weight: int
    port: int
    target: str


@dataclass
class Resolution:
    host: str
    source: str  # ip-literal | a/aaaa
    addresses: list[str] = field(default_factory=list)
    lookups: list[Lookup] = field(default_factory=list)
    srv: list[Srv] = field(default_factory=list)
    naptr_services: list[str] = field(default_factory=list)


def make_resolver(nameserver: str | None, timeout: float) -> dns.asyncresolver.Resolver:
    if nameserver:
        res = dns.asyncresolver.Resolver(configure=False)
        host, port = nameserver, 53
        if nameserver.count(":") == 1:
            host, p = nameserver.split(":")
            port = int(p)
        elif nameserver.startswith("[") and "]:" in nameserver:
            host, p = nameserver[1:].split("]:")
            port = int(p)
        res.nameservers = [host.strip("[]")]
        res.port = port
    else:
        res = dns.asyncresolver.Resolver()
    res.timeout = res.lifetime = timeout
    return res


async def _ask(res, qname: str, rdtype: str) -> tuple[Lookup, list]:
    t0 = time.perf_counter()
    look = Lookup(qname, rdtype, "error")
    rrs: list = []
    try:
        ans = await res.resolve(qname, rdtype, raise_on_no_answer=False)
        if ans.rrset is None:
            look.outcome = "nodata"
        else:
            look.outcome, look.ttl = "answer", ans.rrset.ttl
            rrs = list(ans.rrset)
            look.answers = [r.to_text() for r in rrs]
    except dns.resolver.NXDOMAIN:
        look.outcome = "nxdomain"
    except dns.resolver.NoNameservers as exc:
        look.outcome = "servfail"
        look.answers = [str(exc)[:200]]
    except (dns.exception.Timeout, dns.resolver.LifetimeTimeout):
        look.outcome = "timeout"
    except dns.exception.DNSException as exc:
        look.answers = [str(exc)[:200]]
    look.ms = round((time.perf_counter() - t0) * 1000, 2)
    return look, rrs


def srv_order(records: list[Srv]) -> list[Srv]:
    """RFC 2782: lowest priority first; within a priority, heavier weight first (a stable
    stand-in for the weighted random choice, so reports are reproducible)."""
    return sorted(records, key=lambda r: (r.priority, -r.weight, r.target))


async def resolve_sip(host: str, *, transport: str, nameserver: str | None = None,
                      timeout: float = 3.0) -> Resolution:
    if parse_ip(host) is not None:
        return Resolution(host, "ip-literal", [host.strip("[]")])
    import asyncio

    res = make_resolver(nameserver, timeout)
    fqdn = host.rstrip(".") + "."
    out = Resolution(host, "a/aaaa")
    (a_l, a_rr), (aaaa_l, aaaa_rr), (n_l, n_rr), (s_l, s_rr) = await asyncio.gather(
        _ask(res, fqdn, "A"), _ask(res, fqdn, "AAAA"), _ask(res, fqdn, "NAPTR"),
        _ask(res, SRV_PREFIX[transport] + fqdn, "SRV"))
    out.lookups += [a_l, aaaa_l, n_l, s_l]
    out.addresses = [r.address for r in a_rr] + [r.address for r in aaaa_rr]
    out.naptr_services = [r.service.decode(errors="replace") for r in n_rr]
    srv = [Srv(r.priority, r.weight, r.port, r.target.to_text()) for r in s_rr]
    # NAPTR may point at another SRV name for our transport (RFC 3263 §4.1).
    for r in sorted(n_rr, key=lambda r: (r.order, r.preference)):
        if r.service.decode(errors="replace").upper() == NAPTR_SERVICE[transport] \
                and r.replacement.to_text() not in (".", SRV_PREFIX[transport] + fqdn):
            look, rrs = await _ask(res, r.replacement.to_text(), "SRV")
            out.lookups.append(look)
            srv += [Srv(x.priority, x.weight, x.port, x.target.to_text()) for x in rrs]
            break
    out.srv = srv_order(srv)
    return out
