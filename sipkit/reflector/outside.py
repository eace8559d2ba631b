"""What the registrar looks like from the internet: the reflector's own probes.

Per transport: one OPTIONS and one REGISTER *without credentials* (Expires 0, so even a PBX
that wrongly accepts it adds no binding) to read the challenge, or the 403 of a LAN-only
extension. The name is resolved with the reflector's own DNS (a split horizon shows as a
difference from the site's answers), and over TLS the certificate is read as served here.
Packets are bounded: UDP retransmits (RFC 3261 §17.1.2.2, Timer E) stop at MAX_SENDS.
"""

from __future__ import annotations

import ssl
from typing import Any

from ..checks.sipio import Dialogless, server_of
from ..checks.tls import cert_facts
from ..net.addresses import hostport, parse_ip, uri_host
from ..net.outcome import of_exception, of_exchange
from ..net.resolver import resolve_sip
from ..net.target import Target
from ..net.transport import connect
from ..sip.digest import DigestError, parse_challenges

T1 = 0.5
MAX_SENDS = 4  # per request on UDP: sends at 0, T1, 3*T1, 7*T1 fit a 4 s cap
UDP_CAP_S = 8 * T1  # whatever the configured timeout, a UDP exchange stops here
REQUESTS_PER_TRANSPORT = 2  # OPTIONS + REGISTER
MAX_TRANSPORTS = 3


def max_packets() -> int:
    """The most SIP packets one reach request makes the reflector send to one address."""
    return MAX_TRANSPORTS * REQUESTS_PER_TRANSPORT * MAX_SENDS


async def resolve(host: str, port: int, nameserver: str | None, timeout: float) -> dict:
    """The reflector's own DNS answers for the registrar name (A/AAAA)."""
    if parse_ip(host) is not None:
        return {"name": host, "addresses": [host], "source": "ip-literal"}
    try:
        res = await resolve_sip(host, transport="udp", port=port, explicit_port=True,
                                nameserver=nameserver, timeout=timeout)
    except Exception as exc:  # noqa: BLE001 - a resolver failure is an answer here
        return {"name": host, "addresses": [], "error": f"{type(exc).__name__}: {exc}"}
    out: dict[str, Any] = {"name": host, "addresses": res.addresses, "source": res.source,
                           "server": res.server}
    out["answers"] = [lk.text() for lk in res.lookups]
    if not res.addresses:
        out["error"] = "; ".join(f"{lk.rdtype} {lk.error or lk.outcome}"
                                 for lk in res.lookups if not lk.ok) or "no address"
    return out


def _unverified() -> ssl.SSLContext:
    c = ssl.create_default_context()
    c.check_hostname = False
    c.verify_mode = ssl.CERT_NONE
    return c


async def _verify_tls(ip: str, port: int, host: str, timeout: float) -> dict:
    """Does the certificate verify for ``host`` against the reflector's trust store?"""
    try:
        conn = await connect(ip, port, "tls", ssl_context=ssl.create_default_context(),
                             server_hostname=host, timeout=timeout)
    except ssl.SSLCertVerificationError as exc:
        return {"verified": False, "verify_error": exc.verify_message}
    except (OSError, TimeoutError) as exc:
        return {"verified": False, "verify_error": str(of_exception(exc))}
    await conn.close()
    return {"verified": True}


def _answer(ex) -> dict:
    row: dict[str, Any] = {"outcome": of_exchange(ex).value, "sends": ex.sends}
    if ex.final is not None:
        row.update(status=ex.final.status, reason=ex.final.reason, rtt_ms=ex.rtt_ms,
                   server=server_of(ex.final))
        if ex.final.status in (401, 407):
            try:
                chs = parse_challenges(ex.final)
                row["challenge"] = {"realm": chs[0].realm if chs else None,
                                    "algorithms": [c.algorithm or "MD5" for c in chs]}
            except DigestError as exc:
                row["challenge"] = {"error": str(exc)}
    return row


async def probe(ip: str, port: int, transport: str, *, host: str, user: str | None,
                domain: str | None, timeout: float, local_ip: str | None = None) -> dict:
    """One transport towards one address: connect, OPTIONS, REGISTER without credentials."""
    row: dict[str, Any] = {"transport": transport, "ip": ip, "port": port}
    target = Target(host, ip, port, transport)
    sni = host if parse_ip(host) is None else None
    try:
        conn = await connect(ip, port, transport, local_ip=local_ip,
                             ssl_context=_unverified() if transport == "tls" else None,
                             server_hostname=sni, timeout=timeout)
    except (OSError, TimeoutError) as exc:  # ssl.SSLError is an OSError
        failure = of_exception(exc, connecting=True)
        row.update(outcome=failure.outcome.value, error=failure.detail or None)
        return row
    try:
        row["seen_from"] = hostport(conn.local[0], conn.local[1])
        if transport == "tls" and conn.ssl_object is not None:
            row["tls"] = {"version": conn.ssl_object.version(),
                          "cert": cert_facts(conn.ssl_object.getpeercert(binary_form=True))}
        d = Dialogless(conn, target, user=user or "sipkit", domain=domain or host)
        limit = min(timeout, UDP_CAP_S) if transport == "udp" else timeout
        ex = await conn.request(d.options(), timeout=limit, t1=T1)
        row["options"] = _answer(ex)
        row["outcome"] = row["options"]["outcome"]
        # Refused: nothing listens, a REGISTER would only be refused too. Silence is worth a
        # REGISTER: some PBXs ignore OPTIONS from unknown addresses but challenge REGISTER.
        if user and row["outcome"] != "refused":
            lip, lport = conn.local[0], conn.local[1]
            reg = d.build("REGISTER", f"sip:{uri_host(domain or host)}", to_user=user,
                          contact=f"<sip:{user}@{hostport(lip, lport)};transport={transport}>",
                          expires=0)
            row["register"] = _answer(await conn.request(reg, timeout=limit, t1=T1))
            if row["register"]["outcome"] == "answered":
                row["outcome"] = "answered"
    finally:
        await conn.close()
    if transport == "tls" and row.get("outcome") != "tcp_timeout":
        row.setdefault("tls", {}).update(await _verify_tls(ip, port, host, timeout))
    return row
