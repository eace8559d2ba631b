"""The lab's media echo: RFC 3550 reception statistics and the RTCP it answers with, decoded
here with struct rather than with its own code."""

from __future__ import annotations

import struct

from sipkit.lab.rtp_echo import OUR_SSRC, Source, receiver_report, sender_reports


def test_loss_and_sequence_wrap_around():
    src = Source(65530)
    for i, seq in enumerate([65530, 65531, 65533, 65534, 65535, 0, 1, 3]):  # 65532, 2 lost
        src.packet(seq, i * 160, i * 0.02)
    block = src.report_block(0xAABBCCDD, now=1.0)
    ssrc, lost_word, ext_max, jitter, lsr, dlsr = struct.unpack("!IIIIII", block)
    assert ssrc == 0xAABBCCDD and ext_max == 65536 + 3  # one cycle, highest 3
    assert lost_word & 0xFFFFFF == 2 and lost_word >> 24 == (2 << 8) // 10  # 2 of 10
    assert jitter == 0 and lsr == 0 and dlsr == 0  # paced exactly; no SR seen yet
    # the next report's fraction covers only its own interval
    src.packet(4, 8 * 160, 8 * 0.02)
    assert struct.unpack("!IIIIII", src.report_block(1, 1.0))[1] >> 24 == 0


def test_jitter_follows_rfc3550_a8():
    src = Source(1)
    src.packet(1, 0, 0.0)
    src.packet(2, 160, 0.020 + 0.010)  # 10 ms late: D = 80 units, J = 80/16
    assert src.jitter == 5.0


def test_sender_report_in_a_compound_packet_and_the_answer():
    ssrc, msw, lsw = 0x01020304, 0xDEADBEEF, 0xCAFEF00D
    sr = struct.pack("!BBHIIIIII", 0x80, 200, 6, ssrc, msw, lsw, 0, 10, 1600)
    sdes = struct.pack("!BBHI", 0x81, 202, 2, ssrc) + b"\x01\x02ab"
    assert sender_reports(sr + sdes) == [(ssrc, 0xBEEFCAFE)]
    assert sender_reports(b"\x00" * 12) == []  # not version 2
    src = Source(1)
    src.packet(1, 0, 0.0)
    src.last_sr = (0xBEEFCAFE, 10.0)
    out = receiver_report([src.report_block(ssrc, 10.5)])
    first, pt, length, reporter = struct.unpack_from("!BBHI", out)
    assert (first >> 6, first & 31, pt, length, reporter) == (2, 1, 201, 7, OUR_SSRC)
    *_, lsr, dlsr = struct.unpack_from("!IIIIII", out, 8)
    assert lsr == 0xBEEFCAFE and dlsr == 32768  # 0.5 s in 1/65536 s
    first, pt, length = struct.unpack_from("!BBH", out, 32)
    assert pt == 202 and len(out) == 32 + (length + 1) * 4 and b"echo@sipkit.lab" in out
