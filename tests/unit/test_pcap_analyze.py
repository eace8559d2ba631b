"""`sipkit analyze` on synthetic captures: reassembly (IP fragments, TCP segments) and each
diagnosis, without the lab. The lab's real captures are in tests/integration/test_analyze.py."""

from __future__ import annotations

import struct

import pytest

from sipkit.analyze import analyze_file
from sipkit.analyze.reader import ReadStats, datagrams

PBX, PHONE, PUBLIC_PHONE = "185.7.0.9", "185.7.0.5", "185.7.7.7"  # public addresses
SDP = ("v=0\r\no=- 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\n"
       "m=audio {port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n{dir}")


def sip(start: str, call_id: str, cseq: str, *, via: str = f"{PHONE}:5060", branch="z9hG4bK1",
        extra: str = "", body: str = "", from_tag="ft", to_tag="", transport="UDP") -> bytes:
    to = f"<sip:200@{PBX}>" + (f";tag={to_tag}" if to_tag else "")
    head = (f"{start}\r\nVia: SIP/2.0/{transport} {via};branch={branch}\r\n"
            f"From: <sip:100@{PBX}>;tag={from_tag}\r\nTo: {to}\r\nCall-ID: {call_id}\r\n"
            f"CSeq: {cseq}\r\n{extra}")
    if body:
        head += "Content-Type: application/sdp\r\n"
    return (head + f"Content-Length: {len(body)}\r\n\r\n" + body).encode()


def resp(status: str, req: bytes, to_tag="tt", extra="", body="") -> bytes:
    """A response to ``req``: its Via, From, Call-ID and CSeq, our To tag."""
    lines = req.split(b"\r\n\r\n", 1)[0].decode().split("\r\n")[1:]
    keep = [x for x in lines if x.split(":", 1)[0] in ("Via", "From", "Call-ID", "CSeq")]
    to = next(x for x in lines if x.startswith("To:")) + (f";tag={to_tag}" if to_tag else "")
    if body:
        extra += "Content-Type: application/sdp\r\n"
    return (f"SIP/2.0 {status}\r\n" + "\r\n".join(keep) + f"\r\n{to}\r\n{extra}"
            f"Content-Length: {len(body)}\r\n\r\n{body}").encode()


def rtp(seq: int) -> bytes:
    return struct.pack("!BBHII", 0x80, 0, seq, seq * 160, 0x1234) + b"\xff" * 160


class Cap:
    """Builds a capture with scapy: UDP datagrams, TCP segments, fragmented IP."""

    def __init__(self):
        self.pkts, self.t = [], 1000.0
        self.seq: dict[tuple, int] = {}

    def udp(self, src, sport, dst, dport, data, dt=0.01, frag: int | None = None):
        from scapy.layers.inet import IP, UDP, fragment
        from scapy.layers.inet6 import IPv6, IPv6ExtHdrFragment, fragment6
        from scapy.layers.l2 import Ether
        from scapy.packet import Raw

        self.t += dt
        if ":" in src:
            ip = IPv6(src=src, dst=dst) / (IPv6ExtHdrFragment() if frag else ())
        else:
            ip = IP(src=src, dst=dst)
        pkt = ip / UDP(sport=sport, dport=dport) / Raw(data)
        if frag and ":" in src:
            parts = [Ether() / p for p in fragment6(pkt, frag)]
        elif frag:
            parts = [Ether() / p for p in fragment(pkt, frag)]
        else:
            parts = [Ether() / pkt]
        for p in parts:
            p.time = self.t
        self.pkts += parts

    def tcp(self, src, sport, dst, dport, data, dt=0.01, syn=False):
        from scapy.layers.inet import IP, TCP
        from scapy.layers.l2 import Ether
        from scapy.packet import Raw

        self.t += dt
        key = (src, sport, dst, dport)
        if syn:
            self.seq[key] = 7000
            p = Ether() / IP(src=src, dst=dst) / TCP(sport=sport, dport=dport, flags="S",
                                                      seq=6999)
            p.time = self.t
            self.pkts.append(p)
        seq = self.seq.setdefault(key, 4_294_967_000)  # wraps around 2**32 mid-stream
        p = Ether() / IP(src=src, dst=dst) / TCP(sport=sport, dport=dport, flags="PA",
                                                  seq=seq) / Raw(data)
        p.time = self.t
        self.pkts.append(p)
        self.seq[key] = (seq + len(data)) % 2**32

    def write(self, path, pcapng=False):
        from scapy.utils import wrpcap, wrpcapng

        (wrpcapng if pcapng else wrpcap)(str(path), self.pkts)
        return str(path)


def checks(path) -> dict:
    return {c.id: c for c in analyze_file(path).checks}


def register_exchange(cap: Cap, call_id="reg1", final="200 OK", auth_rounds=1, src=PHONE):
    req = sip(f"REGISTER sip:{PBX} SIP/2.0", call_id, "1 REGISTER", via=f"{src}:5060",
              branch="z9hG4bKr0")
    cap.udp(src, 5060, PBX, 5060, req)
    cap.udp(PBX, 5060, src, 5060, resp("401 Unauthorized", req, extra='WWW-Authenticate: '
                                       'Digest realm="pbx", nonce="n1"\r\n'))
    for i in range(auth_rounds):
        req = sip(f"REGISTER sip:{PBX} SIP/2.0", call_id, f"{i + 2} REGISTER",
                  via=f"{src}:5060", branch=f"z9hG4bKr{i + 1}",
                  extra='Authorization: Digest username="100", realm="pbx", nonce="n1", '
                        'uri="sip:pbx", response="ffffeeeeddddccccbbbbaaaa99998888"\r\n')
        cap.udp(src, 5060, PBX, 5060, req)
        status = final if i == auth_rounds - 1 else "401 Unauthorized"
        cap.udp(PBX, 5060, src, 5060, resp(status, req, extra='WWW-Authenticate: Digest '
                                           'realm="pbx", nonce="n1"\r\n'))


def call(cap: Cap, call_id="call1", *, caller=PHONE, callee=PBX, caller_media=None,
         rtp_to_callee=20, rtp_to_caller=20, final="200 OK", ack=True):
    cm = caller_media or caller
    inv = sip(f"INVITE sip:200@{callee} SIP/2.0", call_id, "1 INVITE", via=f"{caller}:5060",
              branch="z9hG4bKi1", body=SDP.format(ip=cm, port=4000, dir=""))
    cap.udp(caller, 5060, callee, 5060, inv)
    cap.udp(callee, 5060, caller, 5060, resp("100 Trying", inv, to_tag=""))
    body = SDP.format(ip=callee, port=6000, dir="") if final.startswith("200") else ""
    cap.udp(callee, 5060, caller, 5060, resp(final, inv, body=body))
    if final.startswith("200") and ack:
        cap.udp(caller, 5060, callee, 5060, sip(f"ACK sip:200@{callee} SIP/2.0", call_id,
                                                "1 ACK", branch="z9hG4bKa1", to_tag="tt",
                                                via=f"{caller}:5060"))
    for i in range(max(rtp_to_callee, rtp_to_caller)):
        if i < rtp_to_callee:
            cap.udp(cm, 4000, callee, 6000, rtp(i), dt=0.02)
        if i < rtp_to_caller:
            cap.udp(callee, 6000, cm, 4000, rtp(i), dt=0.0)


def test_good_registration_and_call_pass(tmp_path):
    cap = Cap()
    register_exchange(cap)
    call(cap)
    got = checks(cap.write(tmp_path / "ok.pcapng", pcapng=True))
    assert {k: v.status for k, v in got.items()} == {
        "capture": "pass", "auth_loop": "pass", "registration": "pass", "call_setup": "pass",
        "one_way_audio": "pass", "nat_rewrite": "pass", "retransmissions": "pass",
        "sdp_private_address": "pass"}
    rows = {r["call_id"]: r for r in got["capture"].details["dialogs"]}
    assert rows["call1"]["rtp_to_callee"] == 20 and rows["call1"]["rtp_to_caller"] == 20
    assert rows["call1"]["final"] == "200 OK" and rows["reg1"]["packets"] == 4
    assert abs(rows["call1"]["seconds"] - 0.43) < 0.005  # pcapng times: SIP, then 20 ms RTP


def test_wrong_password_and_auth_loop(tmp_path):
    cap = Cap()
    register_exchange(cap, "bad", final="403 Forbidden")
    register_exchange(cap, "loop", final="401 Unauthorized", auth_rounds=4)
    got = checks(cap.write(tmp_path / "bad.pcap"))
    reg, loop = got["registration"], got["auth_loop"]
    assert reg.status == "fail" and "403 Forbidden" in reg.summary and "wrong password" in \
        reg.summary
    assert loop.status == "fail" and "4 authenticated REGISTERs, 4 rejected" in loop.summary
    assert [c.id for c in analyze_file(str(tmp_path / "bad.pcap")).checks][:3] == \
        ["capture", "auth_loop", "registration"]
    assert any(e.summary.startswith("REGISTER") for e in loop.evidence)  # ladder rows


def test_auth_loop_across_call_ids(tmp_path):
    cap = Cap()
    for i in range(3):  # a phone that takes a new Call-ID per attempt
        register_exchange(cap, f"try{i}", final="403 Forbidden")
    loop = checks(cap.write(tmp_path / "x.pcap"))["auth_loop"]
    assert loop.status == "fail" and "over 3 Call-IDs" in loop.summary


def test_call_failures_and_meaning(tmp_path):
    cap = Cap()
    call(cap, "c404", final="404 Not Found", rtp_to_callee=0, rtp_to_caller=0)
    cap.udp(PHONE, 5060, PBX, 5060, sip(f"INVITE sip:300@{PBX} SIP/2.0", "lost", "1 INVITE"))
    register_exchange(cap)
    cap.t += 40  # the capture goes on past Timer B: the INVITE really got no answer
    register_exchange(cap, "reg2")
    got = checks(cap.write(tmp_path / "x.pcap"))
    cs = got["call_setup"]
    assert cs.status == "fail" and "never got a final answer" in cs.summary
    assert any("404 Not Found — unknown user or number" in e for e in cs.details["examples"])
    assert cs.details["failed"] == 1 and cs.details["invite_no_final"] == 1


def test_user_outcomes_are_not_faults(tmp_path):
    cap = Cap()
    call(cap, "busy", final="486 Busy Here", rtp_to_callee=0, rtp_to_caller=0)
    cs = checks(cap.write(tmp_path / "x.pcap"))["call_setup"]
    assert cs.status == "warn" and "486 Busy Here — busy here" in cs.summary


def test_one_way_audio_and_no_rtp_at_all(tmp_path):
    cap = Cap()
    call(cap, rtp_to_caller=0)
    media = checks(cap.write(tmp_path / "x.pcap"))["one_way_audio"]
    assert media.status == "fail" and "no RTP from the callee" in media.summary
    assert "20 RTP packets caller→callee, 0 callee→caller" in media.summary
    cap = Cap()
    call(cap, rtp_to_caller=0, rtp_to_callee=0)
    assert checks(cap.write(tmp_path / "y.pcap"))["one_way_audio"].status == "skip"


def test_private_sdp_and_nat_rewrite(tmp_path):
    # the phone is behind NAT: Via and SDP say 192.168.1.20, packets come from PUBLIC_PHONE
    cap2 = Cap()
    req = sip(f"INVITE sip:200@{PBX} SIP/2.0", "natcall", "1 INVITE", via="192.168.1.20:5060",
              body=SDP.format(ip="192.168.1.20", port=4000, dir=""))
    cap2.udp(PUBLIC_PHONE, 40123, PBX, 5060, req)
    cap2.udp(PBX, 5060, PUBLIC_PHONE, 40123, resp("200 OK", req, body=SDP.format(
        ip=PBX, port=6000, dir="")))
    got = checks(cap2.write(tmp_path / "nat.pcap"))
    assert got["sdp_private_address"].status == "warn"
    assert "c=192.168.1.20" in got["sdp_private_address"].summary
    nat = got["nat_rewrite"]
    assert nat.status == "warn" and "Via sent-by 192.168.1.20:5060" in nat.summary
    assert f"{PUBLIC_PHONE}:40123" in nat.summary


def test_nat_seen_in_via_received(tmp_path):
    cap = Cap()
    req = sip(f"OPTIONS sip:{PBX} SIP/2.0", "opt", "1 OPTIONS", via="192.168.1.20:5060")
    cap.udp("192.168.1.20", 5060, PBX, 5060, req)
    ok = resp("200 OK", req).replace(b"branch=z9hG4bK1", b"branch=z9hG4bK1;received="
                                     + PUBLIC_PHONE.encode() + b";rport=40123")
    cap.udp(PBX, 5060, "192.168.1.20", 5060, ok)
    nat = checks(cap.write(tmp_path / "x.pcap"))["nat_rewrite"]
    assert nat.status == "warn" and f"as {PUBLIC_PHONE}:40123" in nat.summary


def test_retransmission_storm_and_2xx_without_ack(tmp_path):
    cap = Cap()
    req = sip(f"OPTIONS sip:{PBX} SIP/2.0", "storm", "1 OPTIONS")
    for dt in (0, 0.5, 1, 2, 4):
        cap.udp(PHONE, 5060, PBX, 5060, req, dt=dt)
    call(cap, "noack", ack=False, rtp_to_callee=0, rtp_to_caller=0)
    ok = cap.pkts[-1]
    for dt in (0.5, 1, 2):
        ok = ok.copy()
        cap.t += dt
        ok.time = cap.t
        cap.pkts.append(ok)
    got = checks(cap.write(tmp_path / "x.pcap"))
    rt = got["retransmissions"]
    assert rt.status == "warn" and rt.details["requests"] == 1
    assert rt.details["ok_without_ack"] == 1
    assert "OPTIONS transaction sent 5 times" in rt.summary
    assert "requests" not in got  # the capture ends within 32 s of the OPTIONS: unknown
    assert got["call_setup"].status == "warn" and "never ACKed" in got["call_setup"].summary


def test_fragmented_udp_ipv4_and_ipv6(tmp_path):
    big = "a=x-pad:" + "p" * 3000 + "\r\n"
    cap = Cap()
    inv = sip(f"INVITE sip:200@{PBX} SIP/2.0", "frag4", "1 INVITE",
              body=SDP.format(ip=PHONE, port=4000, dir=big))
    cap.udp(PHONE, 5060, PBX, 5060, inv, frag=1200)
    inv6 = sip("INVITE sip:200@[2001:db8::9] SIP/2.0", "frag6", "1 INVITE", via="[2001:db8::5]",
               body=SDP.format(ip=PHONE, port=4002, dir=big))
    cap.udp("2001:db8::5", 5060, "2001:db8::9", 5060, inv6, frag=1280)
    path = cap.write(tmp_path / "frag.pcap")
    stats = ReadStats()
    got = list(datagrams(path, stats))
    assert stats.ip_fragments >= 6 and stats.reassembled == 2
    assert [d.payload for d in got] == [inv, inv6]
    assert checks(path)["capture"].details["sip_messages"] == 2


def test_tcp_several_messages_per_segment_and_across_segments(tmp_path):
    cap = Cap()
    reqs = [sip(f"OPTIONS sip:{PBX} SIP/2.0", f"t{i}", "1 OPTIONS", transport="TCP",
                branch=f"z9hG4bKt{i}") for i in range(3)]
    stream = b"\r\n\r\n" + b"".join(reqs)  # a keep-alive first
    cut1, cut2 = len(reqs[0]) // 2, len(reqs[0]) + len(reqs[1]) + 10
    cap.tcp(PHONE, 40000, PBX, 5060, stream[:cut1], syn=True)
    cap.tcp(PHONE, 40000, PBX, 5060, stream[cut1:cut2])
    cap.tcp(PHONE, 40000, PBX, 5060, stream[cut2:])
    # out of order: the last segment arrives first, then the middle one, then a duplicate of it
    cap.pkts[-2], cap.pkts[-1] = cap.pkts[-1], cap.pkts[-2]
    cap.pkts.append(cap.pkts[-1].copy())
    replies = b"".join(resp("200 OK", r) for r in reqs)
    cap.tcp(PBX, 5060, PHONE, 40000, replies[:100])  # no SYN seen, seq near 2**32: wraps
    cap.tcp(PBX, 5060, PHONE, 40000, replies[100:])
    got = checks(cap.write(tmp_path / "tcp.pcap"))
    cap_ = got["capture"].details
    assert cap_["sip_messages"] == 6 and cap_["parse_errors"] == 0
    assert {r["final"] for r in cap_["dialogs"]} == {"200 OK"}


def test_truncated_and_corrupt_files(tmp_path):
    cap = Cap()
    register_exchange(cap)
    call(cap)
    for name, pcapng in (("a.pcap", False), ("a.pcapng", True)):
        path = cap.write(tmp_path / name, pcapng=pcapng)
        data = open(path, "rb").read()
        cut = tmp_path / f"cut-{name}"
        cut.write_bytes(data[: len(data) * 2 // 3])
        rep = analyze_file(str(cut))
        c = rep.get("capture")
        assert c.status == "warn" and c.details["truncated"] and "partial" in c.summary
        assert rep.get("registration").status == "pass"  # what was read is analysed
    junk = tmp_path / "junk.pcap"
    junk.write_bytes(b"\x00" * 100)
    with pytest.raises(ValueError, match="not a pcap"):
        analyze_file(str(junk))
    garbage = tmp_path / "garbage.pcap"  # a valid header, then noise
    garbage.write_bytes(open(tmp_path / "a.pcap", "rb").read()[:24] + bytes(range(256)) * 8)
    assert analyze_file(str(garbage)).get("capture").status == "warn"


def test_malformed_sip_is_counted_not_fatal(tmp_path):
    cap = Cap()
    cap.udp(PHONE, 5060, PBX, 5060, b"INVITE sip:x SIP/2.0\r\nCSeq: nonsense\r\n\r\n")
    cap.udp(PHONE, 5060, PBX, 5060, b"OPTIONS \xff\xfe SIP/2.0\r\n\r\n")
    register_exchange(cap)
    got = checks(cap.write(tmp_path / "x.pcap"))
    assert got["capture"].details["parse_errors"] == 2
    assert got["registration"].status == "pass"


def test_ladder_evidence_masks_uri_passwords_and_ringing_is_not_a_failure(tmp_path):
    cap = Cap()
    inv = sip(f"INVITE sip:300@{PBX} SIP/2.0", "ring", "1 INVITE")
    cap.udp(PHONE, 5060, PBX, 5060, inv)
    cap.udp(PBX, 5060, PHONE, 5060, resp("180 Ringing", inv))  # the capture stops here
    inv = sip(f"INVITE sip:200:Uri-Secret-9@{PBX} SIP/2.0", "c404", "1 INVITE")
    cap.udp(PHONE, 5060, PBX, 5060, inv)
    cap.udp(PBX, 5060, PHONE, 5060, resp("100 Trying", inv, to_tag=""))
    cap.udp(PBX, 5060, PHONE, 5060, resp("404 Not Found", inv))
    rep = analyze_file(cap.write(tmp_path / "x.pcap"))
    cs = rep.get("call_setup")
    assert cs.status == "fail" and cs.details["unfinished"] == 1 and "404" in cs.summary
    assert [e.summary for e in cs.evidence] == [
        f"INVITE sip:200:<redacted>@{PBX} SIP/2.0", "SIP/2.0 100 Trying",
        "SIP/2.0 404 Not Found"]
    assert [e.direction for e in cs.evidence] == ["out", "in", "in"]
    assert "Uri-Secret-9" not in rep.model_dump_json()


def test_state_stays_bounded_on_a_long_capture():
    from sipkit.analyze.diagnose import MAX_ROWS, Findings
    from sipkit.analyze.dialogs import Tracker
    from sipkit.analyze.reader import Datagram

    findings = Findings()
    tracker = Tracker(findings.add)
    peak = 0
    for i in range(5000):  # one REGISTER exchange every 2 s of capture time, ~3 h
        req = sip(f"REGISTER sip:{PBX} SIP/2.0", f"r{i}", "1 REGISTER", branch=f"z9hG4bK{i}")
        tracker.feed(Datagram(i * 2.0, PHONE, 5060, PBX, 5060, "udp", req))
        tracker.feed(Datagram(i * 2.0 + 0.01, PBX, 5060, PHONE, 5060, "udp",
                              resp("200 OK", req)))
        peak = max(peak, len(tracker.dialogs))
    tracker.close()
    assert peak <= 33  # only what was active in the last IDLE_SECONDS is live
    assert len(findings.rows) == MAX_ROWS and findings.totals["register_ok"] == 5000


def test_exchanges_cut_off_by_the_end_of_the_capture_are_not_failures(tmp_path):
    cap = Cap()
    req = sip(f"REGISTER sip:{PBX} SIP/2.0", "cut", "1 REGISTER")
    cap.udp(PHONE, 5060, PBX, 5060, req)
    cap.udp(PBX, 5060, PHONE, 5060, resp("401 Unauthorized", req))
    got = checks(cap.write(tmp_path / "x.pcap"))
    assert got["registration"].status == "skip" and got["registration"].details["unfinished"] == 1
    req2 = sip(f"REGISTER sip:{PBX} SIP/2.0", "later", "1 REGISTER")
    cap.udp(PHONE, 5060, PBX, 5060, req2, dt=5)  # 5 s on, the client never answered the 401
    got = checks(cap.write(tmp_path / "y.pcap"))
    reg = got["registration"]
    assert reg.status == "fail" and "never answered the challenge" in reg.summary
    assert reg.details["unfinished"] == 1  # the last REGISTER, just sent


def test_answers_whose_request_came_before_the_capture_are_not_judged(tmp_path):
    # A 408 retransmitted after the capture started (seen in the lab: a re-INVITE the far end
    # ignored) says nothing about a call this capture saw; the REGISTER after it still counts.
    cap = Cap()
    inv = sip(f"INVITE sip:200@{PBX} SIP/2.0", "early", "7 INVITE", to_tag="tt")
    cap.udp(PBX, 5060, PHONE, 5060, resp("408 Request Timeout", inv))
    cap.udp(PBX, 5060, PHONE, 5060, resp("408 Request Timeout", inv), dt=0.5)
    register_exchange(cap)
    got = checks(cap.write(tmp_path / "x.pcap"))
    assert "call_setup" not in got and got["registration"].status == "pass"
    assert got["capture"].status == "pass"
    assert got["capture"].details["answers_without_request"] == 1
    assert "1 Call-ID(s) with answers only" in got["capture"].summary
    # the same answer with its INVITE in the capture is a refused call
    cap = Cap()
    cap.udp(PHONE, 5060, PBX, 5060, inv)
    cap.udp(PBX, 5060, PHONE, 5060, resp("408 Request Timeout", inv))
    got = checks(cap.write(tmp_path / "y.pcap"))
    assert got["call_setup"].status == "fail" and "408" in got["call_setup"].summary


@pytest.mark.parametrize("answers, flagged", [
    (["408 Request Timeout"], True),  # the far end dropped the re-INVITE (seen in the lab)
    (["488 Not Acceptable Here"], True),
    (["407 Proxy Authentication Required"], False),  # challenged: resent by design
    (["491 Request Pending", "200 OK"], False),  # glare, then success
    (["488 Not Acceptable Here", "200 OK"], False),  # a later re-INVITE succeeded
])
def test_refused_reinvite_in_an_answered_call(tmp_path, answers, flagged):
    cap = Cap()
    call(cap, rtp_to_callee=3, rtp_to_caller=3)
    for i, status in enumerate(answers, 2):
        reinv = sip(f"INVITE sip:200@{PBX} SIP/2.0", "call1", f"{i} INVITE", to_tag="tt",
                    branch=f"z9hG4bKre{i}", body=SDP.format(ip=PHONE, port=4000, dir=""))
        cap.udp(PHONE, 5060, PBX, 5060, reinv)
        cap.udp(PBX, 5060, PHONE, 5060, resp(status, reinv))
    got = checks(cap.write(tmp_path / "re.pcap"))
    setup = got["call_setup"]
    assert (setup.status == "warn") is flagged, setup.summary
    if flagged:
        assert "re-INVITE was refused" in setup.summary and answers[0][:3] in setup.summary
        assert setup.details["reinvite_failed"] == 1
    else:
        assert setup.status == "pass" and setup.details["answered"] == 1


def test_dialog_outcomes_use_the_shared_vocabulary():
    """analyze speaks of a dialog's first transaction in net.outcome's words, as checks and
    probes do."""
    from sipkit.analyze.dialogs import Dialog
    from sipkit.net.outcome import Outcome

    d = Dialog(call_id="c", kind="OPTIONS", first=0, last=1, src="a:1", dst="b:2",
               transport="udp")
    assert d.outcome == Outcome.NO_ANSWER.value
    d.provisionals = 1
    assert d.outcome == Outcome.PROVISIONAL_ONLY.value
    d.finals.append((200, "OK"))
    assert d.outcome == Outcome.ANSWERED.value and d.row(None)["outcome"] == "answered"
