"""The asyncio transports against real peers on loopback (127.0.60.1-20): UDP answered,
silent, refused, garbage, 1xx forever, large datagrams; TCP framing; TLS with a certificate
made here. The peers build their answers with regexes of their own, never sipkit's parser."""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import re
import socket
import ssl
import time

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from sipkit.net.transport import Exchange, SipConnection, connect
from sipkit.sip.builder import build_request, new_call_id

T1 = 0.05


# -- peers ----------------------------------------------------------------------------------

def answer(data: bytes, status: str = "200 OK", source: tuple | None = None,
           extra: list[str] = ()) -> bytes:
    """A response copying Via/From/To/Call-ID/CSeq (RFC 3261 §8.2.6.2); with ``source``, the
    top Via gets received= and rport= like a server implementing RFC 3581 §4."""
    head = data.split(b"\r\n\r\n", 1)[0].decode()
    keep = [ln for ln in head.split("\r\n")[1:]
            if ln.split(":", 1)[0].strip().lower() in ("via", "v", "from", "f", "to", "t",
                                                        "call-id", "i", "cseq")]
    if source is not None:
        for i, ln in enumerate(keep):
            if ln.lower().startswith(("via", "v:")):
                keep[i] = re.sub(r";rport(?=;|$)", f";received={source[0]};rport={source[1]}",
                                 ln, count=1)
                break
    lines = [f"SIP/2.0 {status}", *keep, *extra, "Content-Length: 0", "", ""]
    return "\r\n".join(lines).encode()


class UdpPeer(asyncio.DatagramProtocol):
    """Calls ``handler(data, addr)`` for each datagram and sends back what it returns."""

    def __init__(self, handler):
        self.handler = handler
        self.received: list[tuple[float, bytes]] = []

    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, addr):
        self.received.append((time.monotonic(), data))
        for out in self.handler(data, addr):
            self.transport.sendto(out, addr)


async def udp_peer(ip: str, handler) -> tuple[asyncio.DatagramTransport, UdpPeer, int]:
    loop = asyncio.get_running_loop()
    transport, proto = await loop.create_datagram_endpoint(lambda: UdpPeer(handler),
                                                           local_addr=(ip, 0))
    return transport, proto, transport.get_extra_info("sockname")[1]


def options(conn: SipConnection, pad: int = 0) -> bytes:
    lip, lport = conn.local
    extra = [("X-Padding", "x" * pad)] if pad else []
    return build_request("OPTIONS", f"sip:{conn.remote[0]}:{conn.remote[1]}",
                         from_uri=f"sip:probe@{lip}", to_uri=f"sip:{conn.remote[0]}",
                         call_id=new_call_id(lip), cseq=1, via_host=lip, via_port=lport,
                         transport=conn.transport, extra=extra)


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 5))


# -- UDP --------------------------------------------------------------------------------------

def test_udp_answered_with_received_and_rport_and_tap():
    async def main():
        transport, peer, port = await udp_peer("127.0.60.1",
                                               lambda d, a: [answer(d, source=a)])
        taps = []
        try:
            async with await connect("127.0.60.1", port, "udp", local_ip="127.0.60.1",
                                     tap=lambda *a: taps.append(a)) as conn:
                req = options(conn)
                ex = await conn.request(req, t1=T1)
                return conn, req, ex, taps, peer
        finally:
            transport.close()

    conn, req, ex, taps, peer = run(main())
    assert isinstance(ex, Exchange) and ex.final is not None and ex.final.status == 200
    assert not (ex.timed_out or ex.refused or ex.error) and ex.sends == 1 and ex.garbage == 0
    assert ex.rtt_ms is not None and 0 <= ex.rtt_ms <= ex.elapsed_ms < 1000
    via = ex.final.top_via
    assert (via.received, via.rport) == (conn.local[0], conn.local[1])
    assert via.branch == req.top_via.branch and via.branch.startswith("z9hG4bK")
    assert conn.local[0] == "127.0.60.1" and conn.remote == ("127.0.60.1", peer.transport
                                                             .get_extra_info("sockname")[1])
    assert [t[0] for t in taps] == ["out", "in"] and taps[0][1] == peer.received[0][1]
    assert taps[1][2] == conn.local and taps[1][3] == conn.remote and taps[1][4] == "udp"


def test_udp_silent_peer_times_out_with_timer_e_retransmits():
    async def main():
        transport, peer, port = await udp_peer("127.0.60.2", lambda d, a: [])
        try:
            async with await connect("127.0.60.2", port, "udp") as conn:
                ex = await conn.request(options(conn), t1=T1, t2=0.2, timeout=0.8)
                await asyncio.sleep(0.05)
                return ex, peer
        finally:
            transport.close()

    ex, peer = run(main())
    assert ex.timed_out and not ex.refused and ex.final is None and ex.rtt_ms is None
    assert 750 <= ex.elapsed_ms < 1100
    # Timer E: T1, 2T1, 4T1 then capped at T2: sends at 0, .05, .15, .35, .55, .75
    assert ex.sends == 6 == len(peer.received)
    gaps = [b[0] - a[0] for a, b in zip(peer.received, peer.received[1:])]
    for got, want in zip(gaps, [0.05, 0.1, 0.2, 0.2, 0.2]):
        assert want - 0.01 <= got <= want + 0.06, gaps
    assert len({d for _, d in peer.received}) == 1  # retransmissions are byte-identical


def test_udp_default_timeout_is_64_t1():
    async def main():
        transport, _, port = await udp_peer("127.0.60.2", lambda d, a: [])
        try:
            async with await connect("127.0.60.2", port, "udp") as conn:
                return await conn.request(options(conn), t1=0.01)
        finally:
            transport.close()

    ex = run(main())
    assert ex.timed_out and 640 <= ex.elapsed_ms < 900


def _closed_udp_port(ip: str) -> int:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((ip, 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_udp_closed_port_is_refused_not_timeout():
    async def main():
        port = _closed_udp_port("127.0.60.3")
        async with await connect("127.0.60.3", port, "udp") as conn:
            ex1 = await conn.request(options(conn), t1=T1, timeout=1.0)
            ex2 = await conn.request(options(conn), t1=T1, timeout=1.0)
            return ex1, ex2

    for ex in run(main()):
        assert ex.refused and not ex.timed_out and ex.final is None
        assert ex.elapsed_ms < 500


def test_udp_garbage_counts_and_times_out():
    async def main():
        transport, _, port = await udp_peer(
            "127.0.60.4", lambda d, a: [b"\x16\x03\x01\x00\xa5HELLO not SIP\x00\xff",
                                        b"SIP/2.0 200 OK\r\nno-colon-here\r\n\r\n"])
        try:
            async with await connect("127.0.60.4", port, "udp") as conn:
                return await conn.request(options(conn), t1=T1, timeout=0.4)
        finally:
            transport.close()

    ex = run(main())
    assert ex.timed_out and ex.final is None and not ex.refused
    assert ex.garbage == 2 * ex.sends and ex.sends >= 3


def test_udp_100_trying_forever():
    async def main():
        transport, peer, port = await udp_peer("127.0.60.5",
                                               lambda d, a: [answer(d, "100 Trying")])
        try:
            async with await connect("127.0.60.5", port, "udp") as conn:
                ex = await conn.request(options(conn), t1=T1, t2=0.2, timeout=0.9)
                return ex, peer
        finally:
            transport.close()

    ex, peer = run(main())
    assert ex.timed_out and ex.final is None and ex.provisionals
    assert all(p.status == 100 for p in ex.provisionals) and ex.rtt_ms is not None
    # In Proceeding, Timer E fires every T2 (§17.1.2.2): 0, T1, then every 0.2 s
    gaps = [b[0] - a[0] for a, b in zip(peer.received, peer.received[1:])]
    assert ex.sends == len(peer.received) and 4 <= ex.sends <= 6
    assert T1 - 0.01 <= gaps[0] <= T1 + 0.06, gaps
    assert all(0.19 <= g <= 0.26 for g in gaps[1:]), gaps


def test_udp_ignores_other_branches_and_matches_its_own():
    def handler(d, a):
        wrong = re.sub(rb"branch=z9hG4bK\w+", b"branch=z9hG4bKother", d, count=1)
        wrong_method = re.sub(rb"CSeq: 1 OPTIONS", b"CSeq: 1 INFO", d, count=1)
        return [answer(wrong, "500 Not yours"), answer(wrong_method, "501 Not yours"),
                answer(d, "404 Not Found")]

    async def main():
        transport, _, port = await udp_peer("127.0.60.6", handler)
        try:
            async with await connect("127.0.60.6", port, "udp") as conn:
                return await conn.request(options(conn), t1=T1)
        finally:
            transport.close()

    ex = run(main())
    assert ex.final.status == 404 and ex.garbage == 0


@pytest.mark.parametrize("pad", [1400, 4000])
def test_udp_large_datagrams(pad):
    def handler(d, a):
        return [answer(d, source=a, extra=[f"X-Got: {len(d)}"])]

    async def main():
        transport, peer, port = await udp_peer("127.0.60.7", handler)
        try:
            async with await connect("127.0.60.7", port, "udp") as conn:
                req = options(conn, pad=pad)
                return req, await conn.request(req, t1=T1)
        finally:
            transport.close()

    req, ex = run(main())
    size = len(req.to_bytes())
    assert size > pad and ex.final.headers.get("X-Got") == str(size)


def test_udp_concurrent_requests_on_one_connection():
    async def main():
        def handler(d, a):
            # answer the second request first
            handler.seen.append(d)
            return [answer(x, "200 OK") for x in reversed(handler.seen)] if len(
                handler.seen) == 2 else []
        handler.seen = []
        transport, _, port = await udp_peer("127.0.60.8", handler)
        try:
            async with await connect("127.0.60.8", port, "udp") as conn:
                r1, r2 = options(conn), options(conn)
                return r1, r2, await asyncio.gather(conn.request(r1, t1=1.0),
                                                     conn.request(r2, t1=1.0))
        finally:
            transport.close()

    r1, r2, (e1, e2) = run(main())
    assert e1.final.top_via.branch == r1.top_via.branch
    assert e2.final.top_via.branch == r2.top_via.branch
    assert e1.sends == e2.sends == 1


# -- TCP --------------------------------------------------------------------------------------

async def tcp_peer(ip: str, handler, ssl_ctx=None):
    """``handler(data, writer)`` coroutine per chunk read."""
    async def serve(reader, writer):
        try:
            while data := await reader.read(65536):
                await handler(data, writer)
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(serve, ip, 0, ssl=ssl_ctx)
    return server, server.sockets[0].getsockname()[1]


def test_tcp_two_messages_in_one_segment():
    async def handler(data, writer):
        writer.write(answer(data, "100 Trying") + b"\r\n\r\n" + answer(data, "200 OK"))
        await writer.drain()

    async def main():
        server, port = await tcp_peer("127.0.60.9", handler)
        taps = []
        async with server:
            async with await connect("127.0.60.9", port, "tcp",
                                     tap=lambda *a: taps.append(a)) as conn:
                ex = await conn.request(options(conn), t1=T1)
        return ex, taps

    ex, taps = run(main())
    assert [p.status for p in ex.provisionals] == [100] and ex.final.status == 200
    assert ex.sends == 1 and ex.garbage == 0
    # the tap sees one message per call on streams, keep-alive CRLFs left out
    assert [(t[0], t[1][:11], t[4]) for t in taps] == [
        ("out", b"OPTIONS sip", "tcp"), ("in", b"SIP/2.0 100", "tcp"),
        ("in", b"SIP/2.0 200", "tcp")]


def test_tcp_message_split_across_segments():
    async def handler(data, writer):
        out = answer(data, "486 Busy Here", extra=["X-Long: " + "y" * 300])
        for i in range(0, len(out), 37):
            writer.write(out[i:i + 37])
            await writer.drain()
            await asyncio.sleep(0.005)

    async def main():
        server, port = await tcp_peer("127.0.60.10", handler)
        async with server:
            async with await connect("127.0.60.10", port, "tcp") as conn:
                return await conn.request(options(conn), t1=T1)

    ex = run(main())
    assert ex.final.status == 486 and ex.final.headers.get("X-Long") == "y" * 300
    assert ex.sends == 1 and ex.rtt_ms >= 5


def test_tcp_silent_peer_no_retransmit_and_garbage_counts_bytes():
    garbage = b"HTTP/1.1 400 Bad Request\r\n\r\n"

    async def silent(data, writer):
        pass

    async def talker(data, writer):
        writer.write(garbage)
        await writer.drain()

    async def main():
        out = []
        for ip, handler in (("127.0.60.11", silent), ("127.0.60.12", talker)):
            server, port = await tcp_peer(ip, handler)
            async with server:
                async with await connect(ip, port, "tcp") as conn:
                    out.append(await conn.request(options(conn), t1=T1, timeout=0.4))
        return out

    quiet, noisy = run(main())
    assert quiet.timed_out and quiet.sends == 1 and quiet.garbage == 0  # reliable: no Timer E
    assert noisy.timed_out and noisy.garbage == len(garbage) and noisy.final is None


def test_tcp_peer_closing_is_an_error_not_a_timeout():
    async def closer(data, writer):
        writer.close()

    async def main():
        server, port = await tcp_peer("127.0.60.13", closer)
        async with server:
            async with await connect("127.0.60.13", port, "tcp") as conn:
                ex1 = await conn.request(options(conn), t1=T1, timeout=2)
                ex2 = await conn.request(options(conn), t1=T1, timeout=2)
        return ex1, ex2

    ex1, ex2 = run(main())
    for ex in (ex1, ex2):
        assert not ex.timed_out and ex.final is None and "closed" in ex.error
        assert ex.elapsed_ms < 1000


def test_tcp_refused_and_bad_transport():
    async def main():
        s = socket.socket()
        s.bind(("127.0.60.14", 0))
        port = s.getsockname()[1]
        s.close()
        with pytest.raises(ConnectionRefusedError):
            await connect("127.0.60.14", port, "tcp", timeout=1)
        with pytest.raises(ValueError, match="sctp"):
            await connect("127.0.60.14", port, "sctp")

    run(main())


# -- TLS --------------------------------------------------------------------------------------

def _make_cert(tmp_path, names: list[str], ips: list[str], days: int = 30):
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
    now = dt.datetime.now(dt.timezone.utc)
    san = [x509.DNSName(n) for n in names] + [x509.IPAddress(ipaddress.ip_address(i))
                                              for i in ips]
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1))
            .not_valid_after(now + dt.timedelta(days=days))
            .add_extension(x509.SubjectAlternativeName(san), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    certfile, keyfile = tmp_path / "cert.pem", tmp_path / "key.pem"
    certfile.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    keyfile.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                          serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    return certfile, keyfile


@pytest.fixture
def tls_files(tmp_path):
    return _make_cert(tmp_path, ["sip.sipkit.test"], ["127.0.60.15"])


def _server_ctx(certfile, keyfile, sni_seen: list):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(certfile, keyfile)
    ctx.sni_callback = lambda sslobj, name, _ctx: sni_seen.append(name)
    return ctx


async def _tls_answer(data, writer):
    writer.write(answer(data, "200 OK", extra=["Server: tls-peer"]))
    await writer.drain()


def test_tls_request_with_sni_and_peer_certificate(tls_files):
    certfile, keyfile = tls_files
    sni: list = []

    async def main():
        server, port = await tcp_peer("127.0.60.15", _tls_answer,
                                      _server_ctx(certfile, keyfile, sni))
        async with server:
            client = ssl.create_default_context(cafile=str(certfile))
            async with await connect("127.0.60.15", port, "tls", ssl_context=client,
                                     server_hostname="sip.sipkit.test") as conn:
                ex = await conn.request(options(conn), t1=T1)
                so = conn.ssl_object
                return ex, so.version(), so.cipher(), so.getpeercert(), conn.transport

    ex, version, cipher, cert, transport = run(main())
    assert transport == "tls" and ex.final.status == 200 and ex.sends == 1
    assert ex.final.headers.get("Server") == "tls-peer"
    assert sni == ["sip.sipkit.test"]
    assert version in ("TLSv1.2", "TLSv1.3") and cipher[0]
    assert ("DNS", "sip.sipkit.test") in cert["subjectAltName"]


def test_tls_errors_propagate_unchanged(tls_files):
    certfile, keyfile = tls_files

    async def main():
        server, port = await tcp_peer("127.0.60.15", _tls_answer,
                                      _server_ctx(certfile, keyfile, []))
        async with server:
            trusted = ssl.create_default_context(cafile=str(certfile))
            with pytest.raises(ssl.SSLCertVerificationError) as wrong_name:
                await connect("127.0.60.15", port, "tls", ssl_context=trusted,
                              server_hostname="other.sipkit.test", timeout=2)
            with pytest.raises(ssl.SSLCertVerificationError) as untrusted:
                await connect("127.0.60.15", port, "tls", ssl_context=ssl.create_default_context(),
                              server_hostname="sip.sipkit.test", timeout=2)
            # the IP literal is in the SAN: verified without a name
            async with await connect("127.0.60.15", port, "tls", ssl_context=trusted) as conn:
                ok = await conn.request(options(conn), t1=T1)
        return wrong_name.value, untrusted.value, ok

    wrong_name, untrusted, ok = run(main())
    assert "mismatch" in wrong_name.verify_message or "match" in str(wrong_name)
    assert "self-signed" in untrusted.verify_message or "issuer" in untrusted.verify_message
    assert ok.final.status == 200


def test_tls_handshake_timeout_against_a_silent_tcp_server():
    async def main():
        async def mute(reader, writer):
            await asyncio.sleep(2)
            writer.close()

        server = await asyncio.start_server(mute, "127.0.60.16", 0)
        port = server.sockets[0].getsockname()[1]
        async with server:
            t0 = time.monotonic()
            with pytest.raises(TimeoutError):
                await connect("127.0.60.16", port, "tls", timeout=0.3)
            return time.monotonic() - t0

    assert run(main()) < 1.0
