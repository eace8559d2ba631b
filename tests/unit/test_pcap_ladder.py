"""pcap writing from taps, and the ladder: pure functions over synthetic messages."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from sipkit.pcap import PcapRecorder
from sipkit.render.ladder import ladder
from sipkit.report import Evidence

REG = (b"REGISTER sip:pbx SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.5:5062;branch=z9hG4bK1;rport\r\n"
       b"From: <sip:100@pbx>;tag=a\r\nTo: <sip:100@pbx>\r\nCall-ID: c1\r\nCSeq: 2 REGISTER\r\n"
       b'Authorization: Digest username="100", realm="r", nonce="n", uri="sip:pbx", '
       b'response="0123456789abcdef0123456789abcdef"\r\nX-Note: Passw0rd-Leak\r\n'
       b"Content-Length: 0\r\n\r\n")
OK = (b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 10.0.0.5:5062;branch=z9hG4bK1;rport=5062\r\n"
      b"From: <sip:100@pbx>;tag=a\r\nTo: <sip:100@pbx>;tag=b\r\nCall-ID: c1\r\n"
      b"CSeq: 2 REGISTER\r\nContent-Length: 0\r\n\r\n")


def _recorder() -> PcapRecorder:
    rec = PcapRecorder()
    rec.tap("out", REG, ("10.0.0.5", 5062), ("10.0.0.9", 5060), "udp", 1000.0)
    rec.tap("in", OK, ("10.0.0.5", 5062), ("10.0.0.9", 5060), "udp", 1000.01)
    tcp_a = REG.replace(b"UDP", b"TCP")
    rec.tap("out", tcp_a, ("10.0.0.5", 40000), ("10.0.0.9", 5060), "tcp", 1000.02)
    rec.tap("in", OK.replace(b"UDP", b"TCP") * 2, ("10.0.0.5", 40000), ("10.0.0.9", 5060),
            "tcp", 1000.03)
    rec.tap("out", REG, ("2001:db8::5", 5062), ("2001:db8::9", 5060), "udp", 1000.04)
    return rec


def test_pcap_packets_addresses_and_tcp_sequence(tmp_path):
    from scapy.layers.inet import TCP, UDP
    from scapy.utils import rdpcap

    path = tmp_path / "x.pcap"
    assert _recorder().write(path, ["Passw0rd-Leak"]) == 5
    pkts = rdpcap(str(path))
    assert [p.haslayer(UDP) for p in pkts] == [True, True, False, False, True]
    assert pkts[0]["IP"].src == "10.0.0.5" and pkts[0][UDP].dport == 5060
    assert pkts[1]["IP"].src == "10.0.0.9" and pkts[1][UDP].dport == 5062
    assert abs(float(pkts[1].time) - 1000.01) < 1e-6
    out, back = pkts[2][TCP], pkts[3][TCP]
    assert back.ack == out.seq + len(bytes(out.payload))
    assert pkts[4]["IPv6"].dst == "2001:db8::9"
    raw = path.read_bytes()
    assert b"0123456789abcdef0123" not in raw and b"Passw0rd-Leak" not in raw
    assert b'response="<redacted>"' in raw
    assert oct(path.stat().st_mode & 0o777) == "0o600"


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed")
def test_tshark_decodes_every_message(tmp_path):
    path = tmp_path / "x.pcap"
    _recorder().write(path)
    out = subprocess.run(["tshark", "-r", str(path), "-Y", "sip", "-T", "fields",
                          "-e", "sip.Method", "-e", "sip.Status-Code"],
                         capture_output=True, text=True).stdout.split("\n")
    lines = [x for x in out if x.strip()]
    assert lines.count("REGISTER\t") == 3
    assert "\t".join(lines).count("200") == 3  # two 200s share one TCP segment


def test_recorder_is_bounded():
    rec = PcapRecorder(max_packets=2)
    for i in range(5):
        rec.tap("out", REG, ("1.1.1.1", 1), ("2.2.2.2", 2), "udp", float(i))
    assert len(rec.packets) == 2 and rec.dropped == 3


def test_ladder():
    ev = [Evidence(kind="sip", summary="REGISTER sip:pbx SIP/2.0", at_ms=0.5, direction="out",
                   peer="10.0.0.9:5060", local="10.0.0.5:5062", transport="udp"),
          Evidence(kind="sip", summary="SIP/2.0 401 Unauthorized", at_ms=0.9, direction="in",
                   peer="10.0.0.9:5060", local="10.0.0.5:5062", transport="udp"),
          Evidence(kind="note", summary="not sip")]
    lines = ladder(ev)
    assert len(lines) == 2
    assert "── REGISTER" in lines[0] and lines[0].rstrip().endswith("10.0.0.9:5060")
    assert "◀" in lines[1] and "401 Unauthorized ──" in lines[1]
    assert ladder([]) == []
