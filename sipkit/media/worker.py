"""One pjsua2 test call, in a process of its own: ``python -m sipkit.media.worker``.

Protocol: the parent writes the call's parameters as one JSON object on stdin (the password,
when there is one, travels only this way: never argv, never the environment) and reads one
``SIPKIT-RESULT {json}`` line from stdout; everything else on stdout/stderr is noise
(``libCreate`` prints before logging is configured; an assertion prints to stderr).

Why a process (research/lab.md §4): pjsip asserts (SIGABRT) on some peer behaviours (the
"Unable to send ACK!" assertion when a record-routing proxy and the transport disagree), a
second ``Endpoint`` in one process aborts, and calling pjsua2 from a thread pjlib does not
know aborts. Here one Python thread owns the Endpoint: ``threadCnt = 0`` and this thread pumps
``libHandleEvents``, so every callback runs in it; whatever pjsip does, the agent survives.

Other pitfalls handled here: the null audio device (no sound card; its clock drives the
bridge), ``noVad`` (else silence sends no RTP), media bound to the local address *and*
advertised as it (by default RTP binds 0.0.0.0 and SDP names eth0), registration never retried
(a wrong password must not lock the site out), our binding removed afterwards, and
``libDestroy(PJSUA_DESTROY_NO_NETWORK)`` for a fast exit.
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import sys
import time

RESULT_MARK = "SIPKIT-RESULT "
SIP_MARK = "SIPKIT-SIP "  # one line per SIP message sent or received, as it happens
READY_MARK = "SIPKIT-READY "  # answer mode: registered, waiting for the call (then the parent
# asks for it); SIGTERM then means "stop waiting" and the worker still un-registers
MAX_SIP = 400  # messages reported per call: a 401 loop must not flood the parent
# pjsua's message log (level 4): "TX 1230 bytes Request msg INVITE/cseq=1 (tdta0x..) to UDP
# 192.0.2.1:5060:" then the message itself.
_MSG_LOG = re.compile(r"\b(TX|RX) (\d+) bytes \w+ msg \S+ \(\w+\) (?:to|from) (UDP|TCP|TLS)6? "
                      r"\[?([0-9A-Fa-f.:]+)\]?:(\d+):\n")
PUMP_MS = 10
# pjsua2-python's wheel is built without PJ_HAS_IPV6: IPv6 SIP transports open, but an account
# with IPv6 media aborts (pjsua_acc.c assertion) and IPv4 media cannot bind "::1" (PJ_ERESOLVE).
NO_IPV6 = ("IPv6 test calls are not possible with this media engine: the pjsua2-python wheel is "
           "built without IPv6 media support")
TIMELINE_S = 0.5  # one point of the media timeline per half second
STATS_EVERY_S = 0.25  # a far-end BYE destroys the stream: keep the last numbers we saw
DTMF_AT_S = 0.3  # after the answer: the far end's media is up by then
DTMF_AT = 0.45  # of the call's seconds: the digits go after the tone had its time
DIGIT_S = 0.2  # pjsua's 160 ms event + the gap between digits
HOLD_AT = (0.8, 0.9)  # of the call's seconds: hold, then resume
HOLD_WAIT_S = 3.0  # for a hold or resume re-INVITE to complete


def endpoint_config(pj, user_agent: str):
    """A pjsua2 EpConfig for a test UA: no pjsua worker thread (the caller pumps, and with
    threadCnt 0 every callback is queued to the main thread: lab.md, pjsua2 threading)."""
    cfg = pj.EpConfig()
    cfg.uaConfig.threadCnt = 0
    cfg.uaConfig.mainThreadOnly = True
    cfg.uaConfig.userAgent = user_agent
    return cfg


def account_config(pj, id_uri: str, bind: str, *, public: str | None = None,
                   port_base: int = 40000, port_range: int = 1000, slots: int = 4000):
    """A pjsua2 AccountConfig for a test UA (the worker, and the lab's UAs): no NAT rewriting
    of Contact, Via or SDP (sipkit reports what the path does, it does not repair it), no
    codec-locking re-INVITE (noise on a customer's PBX; simple UASes such as SIPp drop the
    call on it), and media bound to ``bind`` on a random even port so concurrent UAs start
    apart; SDP c= says ``public`` (default ``bind``)."""
    acfg = pj.AccountConfig()
    acfg.idUri = id_uri
    acfg.natConfig.contactRewriteUse = 0
    acfg.natConfig.viaRewriteUse = 0
    acfg.natConfig.sdpNatRewriteUse = 0
    acfg.natConfig.sipOutboundUse = 0
    acfg.mediaConfig.lockCodecEnabled = False
    mt = acfg.mediaConfig.transportConfig
    mt.boundAddress = bind
    mt.publicAddress = public or bind  # else pjsua picks the default interface
    mt.port = port_base + 2 * random.randrange(0, slots)
    mt.portRange = port_range
    return acfg


def _emit(result: dict) -> None:
    sys.stdout.write(RESULT_MARK + json.dumps(result) + "\n")
    sys.stdout.flush()


def _ms(t0: float) -> float:
    return round((time.monotonic() - t0) * 1000, 1)


def _direction(s, remote_report: bool) -> dict:
    """One RtcpStreamStat as our Direction. For tx, loss and jitter come from the far end's
    RTCP receiver reports (RFC 3550 §6.4.1): without them they are unknown, not zero."""
    known = remote_report
    total = s.pkt + s.loss
    return {"packets": s.pkt, "bytes": s.bytes,
            "loss": s.loss if known else None,
            "loss_pct": (round(100.0 * s.loss / total, 2) if total else 0.0) if known else None,
            "jitter_ms_mean": round(s.jitterUsec.mean / 1000, 2) if known and s.jitterUsec.n
            else None,
            "jitter_ms_max": round(s.jitterUsec.max / 1000, 2) if known and s.jitterUsec.n
            else None}


def run(params: dict) -> dict:  # noqa: C901 - one linear call script reads best in one place
    import pjsua2 as pj

    t0 = time.monotonic()
    out: dict = {"status": "error", "verdicts": []}
    if ":" in params["local_ip"]:
        out["error"] = NO_IPV6
        _emit(out)
        os._exit(0)
    ep = pj.Endpoint()
    ep.libCreate()
    state = {"ep": ep, "acc": None, "call": None, "plan": None}
    cfg = endpoint_config(pj, "sipkit-media")
    # Only the SIP message log is kept (the writer sees what is at or under consoleLevel):
    # it is the test call's evidence, for the ladder and for --pcap.
    sip_log = _sip_log(pj)
    state["log"] = sip_log  # pjsua2 keeps a bare pointer: the writer must outlive libDestroy
    cfg.logConfig.writer = sip_log
    cfg.logConfig.level = cfg.logConfig.consoleLevel = 4
    cfg.logConfig.msgLogging = True
    cfg.medConfig.noVad = True  # a null device is silence: keep RTP flowing through it
    cfg.medConfig.ecTailLen = 0
    if (params.get("test_hook") or "").startswith("tx_drop_pct="):
        cfg.medConfig.txDropPct = int(params["test_hook"].split("=", 1)[1])  # simulated loss
    ep.libInit(cfg)
    ep.audDevManager().setNullDev()

    codecs = [c.upper() for c in params.get("codecs") or []]
    if codecs:
        available = {ci.codecId.split("/")[0].upper(): ci.codecId for ci in ep.codecEnum2()}
        missing = [c for c in codecs if c.split("/")[0] not in available]
        if missing:
            out["error"] = (f"codec {', '.join(missing)} is not available; this engine has "
                            f"{', '.join(sorted(available))}")
            return _finish(state, out)
        for cid in available.values():
            ep.codecSetPriority(cid, 0)  # 0 = disabled: offer only what was asked, in order
        for i, c in enumerate(codecs):
            ep.codecSetPriority(available[c.split("/")[0]], 255 - i)

    transport = params.get("transport", "udp")
    local = params["local_ip"]
    tcfg = pj.TransportConfig()
    tcfg.boundAddress = local
    tcfg.port = 0
    kind = {"udp": pj.PJSIP_TRANSPORT_UDP, "tcp": pj.PJSIP_TRANSPORT_TCP,
            "tls": pj.PJSIP_TRANSPORT_TLS}[transport]
    if local and ":" in local:
        kind = {"udp": pj.PJSIP_TRANSPORT_UDP6, "tcp": pj.PJSIP_TRANSPORT_TCP6,
                "tls": pj.PJSIP_TRANSPORT_TLS6}[transport]
    if transport == "tls":
        tcfg.tlsConfig.method = pj.PJSIP_TLSV1_2_METHOD  # the wheel's OpenSSL 1.0.2 has no 1.3
        tcfg.tlsConfig.verifyServer = bool(params.get("verify_tls", True))
        if params.get("ca_file"):
            tcfg.tlsConfig.CaListFile = params["ca_file"]
    try:
        tp = ep.transportCreate(kind, tcfg)
    except pj.Error as exc:
        out["error"] = f"cannot open a {transport.upper()} socket on {local}: {exc.reason}"
        return _finish(state, out)
    # TCP/TLS: the listener's port (the connection's own port is not in pjsua's log)
    sip_log.local = ep.transportGetInfo(tp).localName
    ep.libStart()

    def pump(cond, timeout: float, tick=None) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end and not STOP:
            ep.libHandleEvents(PUMP_MS)
            if tick:
                tick()
            if cond():
                return True
        return False

    class Acc(pj.Account):
        def __init__(self):
            super().__init__()
            self.code = None
            self.reason = None
            self.on_incoming = None  # answer mode takes the call here

        def onRegState(self, prm):
            self.code, self.reason = prm.code, prm.reason

        def onIncomingCall(self, prm):
            # pjsua2 refuses (500) an incoming call no Call object took in this callback
            if self.on_incoming is not None:
                self.on_incoming(prm)

    class TestCall(pj.Call):
        def __init__(self, acc, call_id=pj.PJSUA_INVALID_ID):
            super().__init__(acc, call_id)
            self.started = time.monotonic()
            self.states: list[str] = []
            self.code = self.reason = None
            self.first_1xx = self.answered = self.answered_at_mono = None
            self.heard_peer = False  # a SIP response came from the network (not pjsip itself)
            self.peer = None  # "ip:port" that response came from
            self.stats: dict = {}
            self.media_idx = None
            self.media_status = None  # pjsua's view of the audio: "active", "local_hold", ...
            self.digits: list[dict] = []  # DTMF received: digit, method, ms after the answer
            self.info_codes: list[int] = []  # final answers to our SIP INFO (DTMF)
            self.reinvite_codes: list[int] = []  # final answers to our re-INVITEs (hold)
            self.tx_event_pt = -1  # telephone-event payload type we send with; -1: none
            self.plan = None  # a MediaPlan: the tone, the recorder

        def _saw(self, e) -> None:
            """Note a SIP response that came from the network (not pjsip's own 408/503)."""
            if e.type != pj.PJSIP_EVENT_TSX_STATE:
                return
            body = e.body.tsxState
            if body.type == pj.PJSIP_EVENT_RX_MSG and body.tsx.method == "INVITE":
                self.heard_peer = True
                self.peer = self.peer or body.src.rdata.srcAddress or None
                if 100 <= body.tsx.statusCode < 200 and self.first_1xx is None:
                    self.first_1xx = _ms(self.started)

        def onCallState(self, prm):
            # The final answer to the first INVITE arrives here, not in onCallTsxState.
            self._saw(prm.e)
            ci = self.getInfo()
            self.states.append(ci.stateText)
            if ci.stateText != "DISCONNECTED" or "CONFIRMED" not in self.states:
                # after a confirmed call, the BYE's status is not the call's answer
                self.code, self.reason = ci.lastStatusCode, ci.lastReason
            if ci.stateText in ("CONNECTING", "CONFIRMED") and self.answered is None:
                self.answered = _ms(self.started)
                self.answered_at_mono = time.monotonic()

        def onCallTsxState(self, prm):
            # Provisional responses (100 Trying included) of the INVITE transaction.
            self._saw(prm.e)
            e = prm.e
            if e.type != pj.PJSIP_EVENT_TSX_STATE or self.answered is None:
                return
            body = e.body.tsxState
            tsx = body.tsx
            # a final answer to a request of ours, as it arrives (not the later TERMINATED)
            if (tsx.role == pj.PJSIP_ROLE_UAC and body.type == pj.PJSIP_EVENT_RX_MSG
                    and tsx.statusCode >= 200):
                codes = {"INFO": self.info_codes, "INVITE": self.reinvite_codes}.get(tsx.method)
                if codes is not None and len(codes) < 32:
                    codes.append(tsx.statusCode)

        def onDtmfDigit(self, prm):
            method = "sip_info" if prm.method == pj.PJSUA_DTMF_METHOD_SIP_INFO else "rfc4733"
            if len(self.digits) < 64:
                self.digits.append({"digit": prm.digit, "method": method,
                                    "ms": _ms(self.answered_at_mono or self.started)})

        def onCallMediaState(self, prm):
            ci = self.getInfo()
            for i, mi in enumerate(ci.media):
                if mi.type != pj.PJMEDIA_TYPE_AUDIO:
                    continue
                self.media_status = _MEDIA_STATUS.get(mi.status, str(mi.status))
                if mi.status not in (pj.PJSUA_CALL_MEDIA_ACTIVE, pj.PJSUA_CALL_MEDIA_LOCAL_HOLD,
                                     pj.PJSUA_CALL_MEDIA_REMOTE_HOLD):
                    continue
                self.media_idx = i
                aud = self.getAudioMedia(i)  # after a re-INVITE: possibly a new bridge port
                adm = ep.audDevManager()
                source = self.plan.tone if self.plan and self.plan.tone else \
                    adm.getCaptureDevMedia()
                source.startTransmit(aud)
                aud.startTransmit(adm.getPlaybackDevMedia())
                if self.plan:
                    self.plan.record(aud)
                try:
                    self.tx_event_pt = self.getStreamInfo(i).audTxEventPt
                except pj.Error:
                    pass

        def onStreamDestroyed(self, prm):
            self.snapshot()

        def snapshot(self):
            if self.media_idx is None:
                return
            try:
                self.stats = _stream_stats(pj, self, self.media_idx)
            except pj.Error:
                pass  # the stream is gone; keep the last snapshot

    acfg = account_config(pj, params.get("from_uri")
                          or f"sip:sipkit@{f'[{local}]' if ':' in local else local}", local)
    acfg.sipConfig.transportId = tp
    if params.get("username"):
        acfg.sipConfig.authCreds.append(pj.AuthCredInfo(
            "digest", "*", params["username"], 0, params.get("password") or ""))
    if params.get("proxy"):
        acfg.sipConfig.proxies.append(params["proxy"])
    if params.get("registrar"):
        acfg.regConfig.registrarUri = params["registrar"]
        acfg.regConfig.timeoutSec = 60
        acfg.regConfig.retryIntervalSec = 0  # one attempt: never lock the site out
        acfg.regConfig.registerOnAdd = True
    else:
        acfg.regConfig.registerOnAdd = False
    acc = Acc()
    state["acc"] = acc
    acc.create(acfg)

    if params.get("registrar"):
        pump(lambda: acc.code is not None, params.get("setup_timeout", 10))
        out["registration"] = acc.code
        out["registration_reason"] = acc.reason
        if acc.code is None or not 200 <= acc.code < 300:
            out["error"] = (f"registration failed: {acc.code} {acc.reason}" if acc.code
                            else "registration failed: no answer from the registrar")
            return _finish(state, out)

    if params.get("answer"):
        return _answer(pj, TestCall, state, out, params, pump)
    call = TestCall(acc)
    state["call"] = call
    plan = MediaPlan(pj, params.get("tone_hz"))
    state["plan"] = plan  # the tone and recorder outlive the call, die before libDestroy
    call.plan = plan
    try:
        call.makeCall(params["target"], pj.CallOpParam(True))
    except pj.Error as exc:  # e.g. PJ_ERESOLVE: raised synchronously (lab.md §4)
        out["error"] = f"cannot place the call: {exc.reason}"
        return _finish(state, out)
    done = pump(lambda: "CONFIRMED" in call.states or "DISCONNECTED" in call.states,
                params.get("setup_timeout", 10))
    if STOP:
        out["error"] = "cancelled"
        if "DISCONNECTED" not in call.states:
            call.hangup(pj.CallOpParam(True))  # CANCEL before the answer, BYE after it
            STOP.clear()  # pump again, for the CANCEL's or BYE's answer
            pump(lambda: "DISCONNECTED" in call.states, 1.5)
        return _finish(state, out)
    out["code"], out["reason"] = call.code or None, call.reason or None
    out["provisional_ms"] = call.first_1xx
    out["answer_ms"] = call.answered
    out["response_received"] = call.heard_peer
    out["signalling_peer"] = call.peer
    if "CONFIRMED" not in call.states:
        if not done:
            out["status"] = "no_answer"
            out["reason"] = out["reason"] or "no final answer in time"
        elif call.heard_peer and call.code and call.code >= 300:
            out["status"] = "rejected"
        else:  # pjsip's own 408/503: timeout, refused, TLS failure — the peer said nothing
            out["status"] = "no_answer"
        return _finish(state, out)

    out["status"] = "answered"
    plan.mark("answered", time.monotonic())
    if params.get("test_hook") == "abort_after_answer":
        os.abort()  # a pjsip assertion in mid-call, for the tests
    _media(pj, call, out, params, pump, plan)
    out["seconds_total"] = round(time.monotonic() - t0, 2)
    return _finish(state, out)


def _answer(pj, make_call, state: dict, out: dict, params: dict, pump) -> dict:
    """Answer mode (``answer``): registered, say so (READY_MARK), take the first INVITE,
    answer it, keep media up for ``seconds`` and report like a placed call. The INVITE itself
    (who sent it, when) is in the SIP lines. Only one call: pjsua2 refuses any other."""
    import signal

    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(True))
    acc = state["acc"]

    def take(prm) -> None:
        if state["call"] is None:
            state["call"] = make_call(acc, prm.callId)
            ring = pj.CallOpParam()
            ring.statusCode = 180
            state["call"].answer(ring)

    acc.on_incoming = take
    sys.stdout.write(READY_MARK + json.dumps({"registration": out.get("registration")}) + "\n")
    sys.stdout.flush()
    wait = params.get("wait_timeout", 20)
    pump(lambda: state["call"] is not None or bool(stop), wait)
    call = state["call"]
    if call is None:
        out["status"] = "no_answer"
        out["reason"] = "stopped waiting" if stop else f"no call arrived in {wait:.0f} s"
        return _finish(state, out)
    t_invite = call.started
    ok = pj.CallOpParam()
    ok.statusCode = 200
    try:
        call.answer(ok)
    except pj.Error as exc:  # the caller gave up (CANCEL) between the INVITE and now
        out["error"] = f"cannot answer the call: {exc.reason}"
        return _finish(state, out)
    pump(lambda: "CONFIRMED" in call.states or "DISCONNECTED" in call.states,
         params.get("setup_timeout", 10))
    if "CONFIRMED" not in call.states:
        out["status"] = "no_answer"
        out["code"], out["reason"] = call.code or None, "the caller did not confirm our 200 OK"
        return _finish(state, out)
    out["status"], out["code"] = "answered", 200
    out["answer_ms"] = _ms(t_invite)  # INVITE in -> ACK in
    _media(pj, call, out, params, pump, stop=stop)
    return _finish(state, out)


def _media(pj, call, out: dict, params: dict, pump, plan=None, stop=()) -> None:
    """An answered call, placed or answered: media for ``seconds`` with the tone, digits and
    hold/resume the params ask for (stats sampled; the far end may hang up first; a
    non-empty ``stop`` or STOP ends it), then our hang-up; the numbers go into ``out``."""
    if plan is None:
        plan = MediaPlan(pj, None)  # answer mode: no tone of ours, nothing recorded
    media_start = time.monotonic()
    next_stats = [media_start]
    timeline: list[dict] = []  # packets each way so far, every TIMELINE_S (the --html chart)

    def tick():
        now = time.monotonic()
        if now >= next_stats[0]:
            call.snapshot()
            next_stats[0] = now + STATS_EVERY_S
            if call.stats and (not timeline or now - media_start - timeline[-1]["t_s"]
                               >= TIMELINE_S):
                timeline.append({"t_s": round(now - media_start, 2),
                                 "tx": {"packets": call.stats["tx"]["packets"]},
                                 "rx": {"packets": call.stats["rx"]["packets"]}})

    seconds = params.get("seconds", 3)

    def ended() -> bool:
        return "DISCONNECTED" in call.states or bool(stop)

    def until(at: float) -> bool:
        """Pump until ``at`` seconds into the media (True: the call ended first)."""
        return pump(ended, max(0.0, media_start + at - time.monotonic()), tick)

    # The tone alone first (the audio verdict is judged on it), then the digits, then hold
    # and resume at the end: after an in-call re-INVITE pjmedia may keep a raw echo's return
    # undecoded, so only RTP counters prove that media resumed.
    steps = []  # (at seconds, what)
    if params.get("dtmf"):
        steps.append((max(DTMF_AT_S, DTMF_AT * seconds), "dtmf"))
    if params.get("hold"):
        steps += [(HOLD_AT[0] * seconds, "hold"), (HOLD_AT[1] * seconds, "resume")]
    hold: dict = {}
    before_hold: dict = {}
    for at, what in sorted(steps):
        if until(at) or ended() or STOP or stop:
            break
        now = time.monotonic()
        if what == "dtmf":
            out["dtmf"] = _send_dtmf(pj, call, params["dtmf"])
            # events replace audio while they last (~200 ms a digit), then the echo's delay
            plan.exclude(now, now + DIGIT_S * len(params["dtmf"]) + 0.3)
        elif what == "hold":
            call.snapshot()
            before_hold = dict(call.stats)  # the call's figures: the hold restarts the stream
            hold.update(_hold(pj, call, pump, ended, tick, resume=False))
            plan.exclude(now, now + 3600)
        elif what == "resume":
            hold.update(_hold(pj, call, pump, ended, tick, resume=True))
            plan.mark("resumed", time.monotonic())
    if not ended() and not STOP and not stop:
        until(seconds)
    if STOP:
        out["error"] = "cancelled"
        STOP.clear()  # from here on pump again: the BYE, the un-REGISTER
    out["timeline"] = timeline
    out["media_seconds"] = round(time.monotonic() - media_start, 2)
    out["ended_by"] = "remote" if "DISCONNECTED" in call.states else "local"
    call.snapshot()
    out.update(before_hold or call.stats)
    if hold:
        hold["rx_end"] = call.stats.get("rx", {}).get("packets", 0)
        out["hold"] = hold
    if params.get("dtmf"):
        out.setdefault("dtmf", {"sent": "", "method": None, "error": "the call ended first"})
    if params.get("dtmf") or call.digits:
        out.setdefault("dtmf", {})
        out["dtmf"].update(received=call.digits, info_codes=call.info_codes,
                           telephone_event=call.tx_event_pt >= 0)
    if not call.stats:
        out["error"] = "the call was answered but no audio stream was set up"
    if "DISCONNECTED" not in call.states:
        call.hangup(pj.CallOpParam(True))
        pump(lambda: "DISCONNECTED" in call.states, 2)
    if plan.started is not None:
        out["audio"] = plan.analyse()


def _send_dtmf(pj, call, digits: str) -> dict:
    """RFC 4733 events when telephone-event was negotiated, else SIP INFO
    (application/dtmf-relay); which one is the finding."""
    out = {"sent": digits, "method": None, "error": None}
    for method, name in ((pj.PJSUA_DTMF_METHOD_RFC2833, "rfc4733"),
                         (pj.PJSUA_DTMF_METHOD_SIP_INFO, "sip_info")):
        if name == "rfc4733" and call.tx_event_pt < 0:
            continue  # pjmedia would refuse: the answer has no telephone-event
        prm = pj.CallSendDtmfParam()
        prm.digits, prm.method = digits, method
        try:
            call.sendDtmf(prm)
        except pj.Error as exc:
            out["error"] = exc.reason
            continue
        out["method"], out["error"] = name, None
        break
    return out


def _hold(pj, call, pump, ended, tick, resume: bool) -> dict:
    """A re-INVITE to sendonly (RFC 3264 §8.4; pjsua's default hold) or back to sendrecv;
    wait until pjsua's media state says it took."""
    key = "resume" if resume else "hold"
    rx = call.stats.get("rx", {}).get("packets", 0)
    prm = pj.CallOpParam(True)
    try:
        if resume:
            prm.opt.flag = pj.PJSUA_CALL_UNHOLD
            call.reinvite(prm)
        else:
            call.setHold(prm)
    except pj.Error as exc:
        return {f"{key}_ok": False, f"{key}_error": exc.reason, f"rx_at_{key}": rx}
    want = "active" if resume else "local_hold"
    t, sent = time.monotonic(), len(call.reinvite_codes)
    pump(lambda: ended() or len(call.reinvite_codes) > sent, HOLD_WAIT_S, tick)
    pump(lambda: ended() or call.media_status == want, 0.5, tick)  # media update after the 2xx
    code = call.reinvite_codes[sent] if len(call.reinvite_codes) > sent else None
    call.snapshot()
    return {f"{key}_ok": code is not None and 200 <= code < 300 and call.media_status == want
            and not ended(), f"{key}_code": code, f"{key}_ms": _ms(t),
            f"{key}_state": call.media_status,
            f"rx_at_{key}": call.stats.get("rx", {}).get("packets", 0)}


_MEDIA_STATUS = {0: "none", 1: "active", 2: "local_hold", 3: "remote_hold", 4: "error"}


class MediaPlan:
    """What the call sends instead of the null device's silence (a tone), and the recorder of
    what it hears, analysed afterwards (sipkit.media.audio)."""

    def __init__(self, pj, tone_hz: float | None):
        self.tone = self.recorder = None
        self.marks: dict[str, float] = {}
        self.excluded: list[tuple[float, float]] = []
        self.tone_hz = tone_hz
        self.dir = None  # made with the recording, removed after its analysis
        self._pj = pj
        self.started: float | None = None  # when the recording began
        if not tone_hz:
            return
        self.tone = pj.ToneGenerator()
        self.tone.createToneGenerator()
        desc = pj.ToneDesc()
        desc.freq1, desc.freq2, desc.on_msec, desc.off_msec = int(tone_hz), 0, 1000, 0
        desc.volume = 0  # pjmedia's default amplitude
        tones = pj.ToneDescVector()
        tones.append(desc)
        self.tone.play(tones, True)

    def record(self, aud) -> None:
        """Record what ``aud`` (the call's audio) plays, from its first media on: sample 0 is
        then this moment, whatever the ringing took."""
        if self.tone_hz is None:
            return
        if self.recorder is None and self.started is None:
            import tempfile

            self.dir = tempfile.mkdtemp(prefix="sipkit-call-")
            self.path = os.path.join(self.dir, "rx.wav")
            self.recorder = self._pj.AudioMediaRecorder()
            self.recorder.createRecorder(self.path)
            self.started = time.monotonic()
        if self.recorder is not None:
            aud.startTransmit(self.recorder)

    def mark(self, name: str, when: float) -> None:
        if self.started is not None:
            self.marks[name] = round(when - self.started, 3)

    def exclude(self, start: float, end: float) -> None:
        if self.started is not None:
            self.excluded.append((start - self.started, end - self.started))

    def cleanup(self) -> None:
        import shutil

        if self.dir:
            shutil.rmtree(self.dir, ignore_errors=True)

    def analyse(self) -> dict:
        from .audio import WARMUP_S, analyse, read_wav

        self.recorder = None  # no more frames: the call is over
        try:
            samples, rate = read_wav(self.path)
            return analyse(samples, rate, self.tone_hz,
                           start_s=max(0.0, self.marks.get("answered", 0)) + WARMUP_S,
                           marks={k: v for k, v in self.marks.items() if k != "answered"},
                           exclude=self.excluded)
        except (OSError, ValueError) as exc:
            return {"error": f"cannot read the recording: {exc}"}
        finally:
            self.cleanup()


def _stream_stats(pj, call, idx: int) -> dict:
    si = call.getStreamInfo(idx)
    st = call.getStreamStat(idx)
    mti = call.getMedTransportInfo(idx)
    rt = st.rtcp
    # txStat.updateCount counts the far end's receiver reports about our stream.
    out = {"codec": f"{si.codecName}/{si.codecClockRate}",
           "remote_media": si.remoteRtpAddress or None,
           "local_media": mti.localRtpName or None,
           "rtp_source": mti.srcRtpName or None,
           "tx": _direction(rt.txStat, rt.txStat.updateCount > 0),
           "rx": _direction(rt.rxStat, True),
           "rtcp_reports": rt.txStat.updateCount,
           "rtt_ms": round(rt.rttUsec.mean / 1000, 2) if rt.rttUsec.n else None,
           "jbuf_delay_ms": st.jbuf.avgDelayMsec}
    return out


def _sip_log(pj):
    """A pjsua2 log writer that forwards each logged SIP message to the parent as a
    ``SIP_MARK`` line (and drops every other log line)."""

    class SipLog(pj.LogWriter):
        def __init__(self):
            super().__init__()
            self.local, self.sent = "", 0

        def write(self, entry) -> None:
            m = _MSG_LOG.search(entry.msg)
            if m is None or self.sent >= MAX_SIP:
                return
            self.sent += 1
            size = int(m.group(2))
            data = entry.msg[m.end():].encode("utf-8", "surrogateescape")[:size]
            host, _, port = self.local.rpartition(":")
            sys.stdout.write(SIP_MARK + json.dumps({
                "direction": "out" if m.group(1) == "TX" else "in", "ts": time.time(),
                "transport": m.group(3).lower(), "remote": [m.group(4), int(m.group(5))],
                "local": [host.strip("[]"), int(port or 0)],
                "data": data.decode("latin-1")}) + "\n")
            sys.stdout.flush()

    return SipLog()


def _finish(state: dict, out: dict) -> dict:
    """Emit first (a crash in teardown must not lose the result), then tear down: hang up,
    remove our registration (never leave a stale binding on the customer's PBX), destroy."""
    _emit(out)
    try:
        import pjsua2 as pj

        ep, acc = state["ep"], state["acc"]
        ep.hangupAllCalls()
        if acc is not None and out.get("registration") and 200 <= out["registration"] < 300:
            acc.code = None
            acc.setRegistration(False)
            end = time.monotonic() + 2
            while acc.code is None and time.monotonic() < end:
                ep.libHandleEvents(PUMP_MS)
        state["call"] = None  # drop Call before Account, Account before the Endpoint
        if state.get("plan") is not None:
            state["plan"].cleanup()  # a call that never got media leaves no recording behind
        state["plan"] = None
        if acc is not None:
            acc.shutdown()
        state["acc"] = None
        ep.libDestroy(pj.PJSUA_DESTROY_NO_NETWORK)
    finally:
        os._exit(0)


STOP: list[int] = []  # SIGTERM from the parent (Ctrl-C there): end the call now, cleanly


def main() -> None:
    # The terminal's Ctrl-C reaches the whole process group: the parent decides, and asks for
    # a clean stop with SIGTERM (pump() returns, the call hangs up, _finish un-registers).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, lambda *_: STOP.append(1))
    try:
        params = json.loads(sys.stdin.read())
        if not isinstance(params, dict) or not params.get("target") or not params.get("local_ip"):
            raise ValueError("the worker needs a JSON object with target and local_ip")
    except ValueError as exc:
        _emit({"status": "error", "error": f"bad worker input: {exc}", "verdicts": []})
        os._exit(2)
    hook = params.get("test_hook") or ""
    if hook == "abort":
        os.abort()  # what a pjsip assertion does to the process
    if hook == "hang":
        time.sleep(3600)
    try:
        run(params)
    except Exception as exc:  # noqa: BLE001 - report, never a traceback with params in it
        _emit({"status": "error", "error": f"{type(exc).__name__}: {exc}", "verdicts": []})
        os._exit(1)


if __name__ == "__main__":
    main()
