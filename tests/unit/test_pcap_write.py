"""`sipkit.pcap`: tap tuples → a pcap that scapy and tshark read back, with no secret inside."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from sipkit.pcap import PcapRecorder, clean, write_pcap

DIGEST = "0123456789abcdef0123456789abcdef"
REG = (b"REGISTER sip:pbx SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.5:5062;branch=z9hG4bK1;rport\r\n"
       b"From: <sip:100@pbx>;tag=a\r\nTo: <sip:100@pbx>\r\nCall-ID: c1\r\nCSeq: 2 REGISTER\r\n"
       b'Authorization: Digest username="100", realm="r", nonce="n", uri="sip:pbx", '
       b'response="' + DIGEST.encode() + b'", cnonce="c0ffee42", nc=00000001, qop=auth\r\n'
       b"X-Note: Passw0rd-Leak\r\nContent-Length: 0\r\n\r\n")
OK = (b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 10.0.0.5:5062;branch=z9hG4bK1;rport=5062\r\n"
      b"From: <sip:100@pbx>;tag=a\r\nTo: <sip:100@pbx>;tag=b\r\nCall-ID: c1\r\n"
      b"CSeq: 2 REGISTER\r\nContent-Length: 0\r\n\r\n")
TSHARK = shutil.which("tshark")


def _recorder() -> PcapRecorder:
    rec = PcapRecorder()
    rec.tap("out", REG, ("10.0.0.5", 5062), ("10.0.0.9", 5060), "udp", 1000.0)
    rec.tap("in", OK, ("10.0.0.5", 5062), ("10.0.0.9", 5060), "udp", 1000.01)
    tcp_reg, tcp_ok = REG.replace(b"UDP", b"TCP"), OK.replace(b"UDP", b"TCP")
    rec.tap("out", tcp_reg, ("10.0.0.5", 40000), ("10.0.0.9", 5060), "tcp", 1000.02)
    # a stream chunk holding one and a half messages, then the rest
    two = tcp_ok * 2
    rec.tap("in", two[:len(tcp_ok) + 20], ("10.0.0.5", 40000), ("10.0.0.9", 5060), "tcp",
            1000.03)
    rec.tap("in", two[len(tcp_ok) + 20:], ("10.0.0.5", 40000), ("10.0.0.9", 5060), "tcp",
            1000.031)
    rec.tap("out", REG, ("2001:db8::5", 5062, 0, 0), ("2001:db8::9", 5060, 0, 0), "udp",
            1000.04)
    rec.tap("out", REG.replace(b"UDP", b"TLS"), ("::ffff:10.0.0.5", 41000),
            ("::ffff:10.0.0.9", 5061), "tls", 1000.05)
    return rec


def test_addresses_ports_times_and_tcp_sequence(tmp_path):
    from scapy.layers.inet import IP, TCP, UDP
    from scapy.layers.inet6 import IPv6
    from scapy.utils import rdpcap

    path = tmp_path / "x.pcap"
    assert _recorder().write(path, ["Passw0rd-Leak"]) == 7
    pkts = rdpcap(str(path))
    assert [p.haslayer(UDP) for p in pkts] == [True, True, False, False, False, True, False]
    assert pkts[0][IP].src == "10.0.0.5" and pkts[0][UDP].sport == 5062
    assert pkts[0][UDP].dport == 5060
    assert pkts[1][IP].src == "10.0.0.9" and pkts[1][UDP].dport == 5062
    assert abs(float(pkts[1].time) - 1000.01) < 1e-6
    out, in1, in2 = pkts[2][TCP], pkts[3][TCP], pkts[4][TCP]
    assert (out.sport, out.dport, in1.sport, in1.dport) == (40000, 5060, 5060, 40000)
    assert in1.ack == out.seq + len(bytes(out.payload))  # the answer acks the request
    assert in2.seq == in1.seq + len(bytes(in1.payload))  # the stream continues
    assert pkts[5][IPv6].src == "2001:db8::5" and pkts[5][IPv6].dst == "2001:db8::9"
    assert pkts[6][IP].dst == "10.0.0.9" and pkts[6][TCP].dport == 5061  # mapped → IPv4


def test_no_secret_in_the_file_and_mode_0600(tmp_path):
    path = tmp_path / "x.pcap"
    path.write_bytes(b"old")
    path.chmod(0o644)
    _recorder().write(path, ["Passw0rd-Leak"])
    raw = path.read_bytes()
    assert DIGEST.encode() not in raw and b"c0ffee42" not in raw
    assert b"Passw0rd-Leak" not in raw
    assert b'response="<redacted>"' in raw and b'realm="r"' in raw  # the challenge stays
    assert oct(path.stat().st_mode & 0o777) == "0o600"


def test_clean_is_byte_exact_outside_secrets():
    body = bytes(range(256))
    assert clean(body) == body  # binary bodies survive (latin-1 round trip)
    assert clean("pässwörd=Grüße-1".encode(), ["Grüße-1"]) == "pässwörd=<redacted>".encode()


def test_large_tcp_payload_is_split_into_segments(tmp_path):
    from scapy.layers.inet import TCP
    from scapy.utils import rdpcap

    big = b"MESSAGE sip:x SIP/2.0\r\nContent-Length: 150000\r\n\r\n" + b"x" * 150000
    path = tmp_path / "big.pcap"
    n = write_pcap(path, [("out", big, ("10.0.0.5", 40000), ("10.0.0.9", 5060), "tcp", 1.0)])
    pkts = rdpcap(str(path))
    assert n == len(pkts) == 3
    assert b"".join(bytes(p[TCP].payload) for p in pkts) == big
    assert pkts[1][TCP].seq == pkts[0][TCP].seq + 65000


@pytest.mark.skipif(TSHARK is None, reason="tshark is not installed")
def test_tshark_decodes_every_message(tmp_path):
    path = tmp_path / "x.pcap"
    _recorder().write(path)
    out = subprocess.run([TSHARK, "-r", str(path), "-d", "tcp.port==5061,sip", "-Y", "sip",
                          "-T", "fields", "-e", "sip.Method", "-e", "sip.Status-Code"],
                         capture_output=True, text=True, timeout=60).stdout
    fields = "\t".join(x for x in out.split("\n") if x.strip()).split("\t")
    assert fields.count("REGISTER") == 4  # UDP, TCP, IPv6, TLS-as-clear-TCP
    assert fields.count("200") == 3  # one UDP, two over TCP across chunk boundaries


def test_recorder_is_bounded():
    rec = PcapRecorder(max_packets=2)
    for i in range(5):
        rec.tap("out", REG, ("1.1.1.1", 1), ("2.2.2.2", 2), "udp", float(i))
    assert len(rec.packets) == 2 and rec.dropped == 3


def test_unwritable_addresses_are_skipped(tmp_path):
    pkts = [("out", REG, ("not-an-ip", 1), ("2.2.2.2", 2), "udp", 1.0),
            ("out", REG, ("1.1.1.1", 1), ("2001:db8::1", 2), "udp", 2.0),
            ("out", REG, ("1.1.1.1", 1), ("2.2.2.2", 2), "udp", 3.0)]
    assert write_pcap(tmp_path / "x.pcap", pkts) == 1


def test_scapy_is_not_imported_by_the_recorder():
    import subprocess as sp
    import sys

    code = ("import sys; from sipkit.pcap import PcapRecorder; PcapRecorder().tap('out', b'x', "
            "('1.1.1.1', 1), ('2.2.2.2', 2), 'udp', 1.0); print('scapy' in sys.modules)")
    assert sp.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() \
        == "False"
