"""The lab's far end for the call checks: a pjsua2 UAS in its own process.

    python -m sipkit.lab.farend --ip 127.0.0.60 --port 5060 [--codecs PCMA] [--no-telephone-event]
        [--media echo|silence|tone] [--send-digits 456] [--echo-digits] [--max-calls 2]
        [--sdp-ip 127.0.0.61] [--report events.jsonl]

What SIPp cannot do for these checks: negotiate telephone-event (RFC 4733) and report the digits
it receives, answer only with chosen codecs, answer re-INVITEs (hold/resume, session-timer
refreshes) as a real UA, refuse calls over a channel limit, and put an address in its SDP other
than the one its RTP comes from (a far end behind NAT that a latching peer still reaches).

``--media echo`` returns what it hears (the call's own port transmits to itself on the
conference bridge); ``silence`` sends RTP full of silence (a broken transcoder, comfort noise);
``tone`` sends a 440 Hz tone of its own (audio, but not the caller's signal).

Events go to ``--report`` as JSON lines: {"event": "ready"}, {"event": "call", "state": ...},
{"event": "digit", "digit": "5", "method": "rfc4733"|"sip_info"}, {"event": "refused", ...}.
One Python thread owns the Endpoint and pumps it (research/lab.md §4); SIGTERM ends it.
"""

from __future__ import annotations

import argparse
import json
import re
import signal
import sys
import time

from ..media.worker import account_config, endpoint_config

PUMP_MS = 10


def strip_telephone_event(sdp: str) -> str:
    """The SDP without telephone-event: its rtpmap/fmtp lines and its payload types on m=."""
    pts = set(re.findall(r"^a=rtpmap:(\d+) telephone-event", sdp, re.MULTILINE))
    if not pts:
        return sdp
    lines = []
    for line in sdp.split("\r\n"):
        m = re.match(r"^a=(?:rtpmap|fmtp):(\d+)\b", line)
        if m and m.group(1) in pts:
            continue
        if line.startswith("m=audio "):
            head = line.split(" ")
            line = " ".join(head[:3] + [pt for pt in head[3:] if pt not in pts])
        lines.append(line)
    return "\r\n".join(lines)


class Report:
    def __init__(self, path: str | None):
        self.out = open(path, "a", buffering=1) if path else None  # noqa: SIM115 - lives as long

    def __call__(self, event: str, **kw) -> None:
        if self.out:
            self.out.write(json.dumps({"event": event, "ts": time.time(), **kw}) + "\n")


def serve(args) -> None:  # noqa: C901 - one UA script reads best in one place
    import pjsua2 as pj

    report = Report(args.report)
    ep = pj.Endpoint()
    ep.libCreate()
    cfg = endpoint_config(pj, "sipkit-lab-farend")
    cfg.logConfig.level = cfg.logConfig.consoleLevel = 1
    cfg.medConfig.noVad = True  # silence must still be sent as RTP
    cfg.medConfig.ecTailLen = 0
    ep.libInit(cfg)
    ep.audDevManager().setNullDev()
    if args.codecs:
        wanted = [c.upper() for c in args.codecs.split(",")]
        for ci in ep.codecEnum2():
            name = ci.codecId.split("/")[0].upper()
            ep.codecSetPriority(ci.codecId, 255 - wanted.index(name) if name in wanted else 0)
    tcfg = pj.TransportConfig()
    tcfg.boundAddress = args.ip
    tcfg.port = args.port
    ep.transportCreate(pj.PJSIP_TRANSPORT_UDP, tcfg)
    ep.libStart()
    tone = None
    if args.media == "tone":
        tone = pj.ToneGenerator()
        tone.createToneGenerator()
        desc = pj.ToneDesc()
        desc.freq1, desc.freq2, desc.on_msec, desc.off_msec, desc.volume = 440, 0, 1000, 0, 0
        tones = pj.ToneDescVector()
        tones.append(desc)
        tone.play(tones, True)
    calls: dict[int, pj.Call] = {}  # active, by pjsua call id
    # Every Call object lives as long as the process: pjsua2's ~Call hangs up "its" call id,
    # and a late-collected object would hang up a newer call that reused the id.
    kept: list[pj.Call] = []

    class FarCall(pj.Call):
        def __init__(self, acc, call_id):
            super().__init__(acc, call_id)
            self.answered_at = None
            self.digits_sent = False

        def onCallSdpCreated(self, prm):
            if args.no_telephone_event:
                prm.sdp.wholeSdp = strip_telephone_event(prm.sdp.wholeSdp)

        def onCallState(self, prm):
            ci = self.getInfo()
            report("call", state=ci.stateText, call=ci.callIdString, code=ci.lastStatusCode)
            if ci.state == pj.PJSIP_INV_STATE_CONFIRMED and self.answered_at is None:
                self.answered_at = time.monotonic()
            if ci.state == pj.PJSIP_INV_STATE_DISCONNECTED:
                calls.pop(ci.id, None)

        def onCallMediaState(self, prm):
            ci = self.getInfo()
            for i, mi in enumerate(ci.media):
                if mi.type != pj.PJMEDIA_TYPE_AUDIO or mi.status != pj.PJSUA_CALL_MEDIA_ACTIVE:
                    continue
                aud = self.getAudioMedia(i)
                if args.media == "echo":
                    aud.startTransmit(aud)  # the bridge loops the call's port onto itself
                elif tone is not None:
                    tone.startTransmit(aud)
                else:  # the null device's silence: a port nobody feeds sends (almost) nothing
                    ep.audDevManager().getCaptureDevMedia().startTransmit(aud)
                report("media", call=ci.callIdString, dir=int(mi.dir))

        def onDtmfDigit(self, prm):
            method = "sip_info" if prm.method == pj.PJSUA_DTMF_METHOD_SIP_INFO else "rfc4733"
            report("digit", digit=prm.digit, method=method, call=self.getInfo().callIdString)
            if args.echo_digits:
                self._send(prm.digit)

        def _send(self, digits: str) -> None:
            try:
                self.dialDtmf(digits)
            except pj.Error as exc:
                report("dtmf_error", reason=exc.reason)

        def tick(self):
            if (args.send_digits and not self.digits_sent and self.answered_at is not None
                    and time.monotonic() - self.answered_at > 0.4):
                self.digits_sent = True
                self._send(args.send_digits)

    class FarAcc(pj.Account):
        def onIncomingCall(self, prm):
            call = FarCall(self, prm.callId)
            kept.append(call)
            op = pj.CallOpParam()
            if args.max_calls and len(calls) >= args.max_calls:
                op.statusCode = args.refuse_code
                report("refused", code=args.refuse_code, active=len(calls))
                call.hangup(op)
                return
            calls[call.getId()] = call
            op.statusCode = 180
            call.answer(op)
            op.statusCode = 200
            call.answer(op)

    # SDP c= may name --sdp-ip; RTP still comes from --ip (the latching tests)
    acfg = account_config(pj, f"sip:farend@{args.ip}:{args.port}", args.ip,
                          public=args.sdp_ip or args.ip, port_base=30000, port_range=500,
                          slots=2000)
    acfg.regConfig.registerOnAdd = False
    acc = FarAcc()
    acc.create(acfg)
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))
    report("ready", ip=args.ip, port=args.port)
    while not stop:
        ep.libHandleEvents(PUMP_MS)
        for call in list(calls.values()):
            call.tick()
    ep.hangupAllCalls()
    end = time.monotonic() + 0.5
    while time.monotonic() < end:
        ep.libHandleEvents(PUMP_MS)
    calls.clear()
    kept.clear()
    acc.shutdown()
    ep.libDestroy(pj.PJSUA_DESTROY_NO_NETWORK)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m sipkit.lab.farend")
    ap.add_argument("--ip", required=True)
    ap.add_argument("--port", type=int, default=5060)
    ap.add_argument("--codecs", help="answer only with these, e.g. PCMA or G722,PCMU")
    ap.add_argument("--no-telephone-event", action="store_true",
                    help="answer without telephone-event (RFC 4733)")
    ap.add_argument("--media", choices=("echo", "silence", "tone"), default="echo")
    ap.add_argument("--send-digits", default="", help="digits to send 0.4 s after the answer")
    ap.add_argument("--echo-digits", action="store_true", help="send back each digit received")
    ap.add_argument("--max-calls", type=int, default=0, help="refuse calls beyond this many")
    ap.add_argument("--refuse-code", type=int, default=486)
    ap.add_argument("--sdp-ip", help="the address its SDP names (default --ip)")
    ap.add_argument("--report", help="append events as JSON lines to this file")
    args = ap.parse_args(argv)
    if args.send_digits and not re.fullmatch(r"[0-9*#A-D]+", args.send_digits):
        ap.error("--send-digits takes 0-9, *, #, A-D")
    try:
        serve(args)
    except Exception as exc:  # noqa: BLE001 - a lab process: one line, not a traceback
        print(f"farend: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
