"""The lab's cloud side of one connector: ``python -m sipkit.lab.cloud_agent``.

What the real SIP connector server does for a PBX extension connector, with a real UA
(pjsua2, one process per connector, started and stopped by the API sandbox):

- registers **to** the PBX as the connector's extension with the connector's credentials,
  from the connector server's own address; pjsua refreshes the binding before it expires and
  retries a failed registration every ``RETRY_S``; un-registers on stdin EOF or SIGTERM;
- answers every INVITE the PBX sends to that binding with the agent stand-in: the call's
  audio is looped back (the conference bridge port transmits to itself), so the caller hears
  its own RTP; pjsua sends RTCP, so the caller gets loss and RTT from this side;
- places an outbound call through the PBX (digest auth with the same credentials) when the
  sandbox writes ``{"cmd": "call", "id": ..., "to": "<dialled number>", "seconds": N}``.

Protocol: the first stdin line is the JSON config (the password travels only this way);
each later line a command. Each stdout line ``AGENT {json}`` is an event the sandbox keeps:
``{"event": "registration", "code", "reason", "challenged", "expires"}`` and
``{"event": "call", "id", "state": "dialling|ringing|answered|ended|failed", "code",
"reason"}``. Every call is hung up after ``MAX_CALL_S`` whatever happens (no call stays up
because a test died), and on exit.

The threading rules of research/lab.md §4: ``threadCnt = 0``, this thread pumps
``libHandleEvents``; stdin is read by a plain thread that only queues lines.
"""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import sys
import threading
import time

from ..media.worker import account_config, endpoint_config

MARK = "AGENT "
RETRY_S = 10  # a refused or unanswered registration is tried again after this
EXPIRES_S = 120  # asked for; pjsua re-registers before the granted time runs out
MAX_CALL_S = 60.0
# "RX 512 bytes Response msg 401/REGISTER/cseq=2 (rdata0x..)": a challenge to our REGISTER
_CHALLENGE = re.compile(r"\bRX \d+ bytes Response msg (401|407)/REGISTER/")


def emit(**event) -> None:
    sys.stdout.write(MARK + json.dumps(event) + "\n")
    sys.stdout.flush()


def _reader(lines: queue.Queue) -> None:
    for line in sys.stdin:
        lines.put(line)
    lines.put(None)  # EOF: the sandbox is gone or deleted the connector


def main() -> None:  # one UA script: reads best in one place
    import pjsua2 as pj

    cfg_in = json.loads(sys.stdin.readline())
    stop: list[bool] = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(True))
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=_reader, args=(lines,), daemon=True).start()

    ep = pj.Endpoint()
    ep.libCreate()
    cfg = endpoint_config(pj, "sipkit-lab-cloud-agent")
    seen = {"challenged": False}

    class Log(pj.LogWriter):
        def write(self, entry) -> None:
            if _CHALLENGE.search(entry.msg):
                seen["challenged"] = True

    log = Log()
    cfg.logConfig.writer = log
    cfg.logConfig.level = cfg.logConfig.consoleLevel = 4
    cfg.logConfig.msgLogging = True
    cfg.medConfig.noVad = True
    cfg.medConfig.ecTailLen = 0
    ep.libInit(cfg)
    ep.audDevManager().setNullDev()
    bind = cfg_in["bind_ip"]
    tcfg = pj.TransportConfig()
    tcfg.boundAddress = bind
    transport = cfg_in.get("transport", "udp")
    if transport == "tls":
        tcfg.tlsConfig.method = pj.PJSIP_TLSV1_2_METHOD
        tcfg.tlsConfig.verifyServer = False  # the lab CA; the real cloud verifies
    tp = ep.transportCreate(pj.PJSIP_TRANSPORT_TLS if transport == "tls"
                            else pj.PJSIP_TRANSPORT_UDP, tcfg)
    ep.libStart()
    tparam = ";transport=tls" if transport == "tls" else ""
    registrar = f"sip:{cfg_in['registrar']}:{cfg_in['port']}{tparam}"
    calls: dict[str, Call] = {}

    class Account(pj.Account):
        def onRegState(self, prm):
            info = self.getInfo()
            emit(event="registration", code=prm.code, reason=prm.reason,
                 challenged=seen["challenged"], expires=prm.expiration,
                 active=info.regIsActive)
            seen["challenged"] = False
            seen["final"] = prm.code

        def onIncomingCall(self, prm):
            call = Call(self, "in-" + str(prm.callId), prm.callId)
            calls[call.cid] = call
            op = pj.CallOpParam()
            op.statusCode = 200
            call.answer(op)

    class Call(pj.Call):
        def __init__(self, acc, cid: str, call_id=pj.PJSUA_INVALID_ID):
            super().__init__(acc, call_id)
            self.cid, self.started, self.last = cid, time.monotonic(), None

        def onCallState(self, prm):
            ci = self.getInfo()
            state = {"EARLY": "ringing", "CONFIRMED": "answered",
                     "DISCONNECTED": "ended"}.get(ci.stateText)
            if state == "ended" and self.last != "answered" and not self.cid.startswith("in-"):
                state = "failed"
            if state and state != self.last:
                self.last = state
                emit(event="call", id=self.cid, state=state, code=ci.lastStatusCode,
                     reason=ci.lastReason)

        def onCallMediaState(self, prm):
            ci = self.getInfo()
            for i, mi in enumerate(ci.media):
                if mi.type == pj.PJMEDIA_TYPE_AUDIO and mi.status == pj.PJSUA_CALL_MEDIA_ACTIVE:
                    aud = self.getAudioMedia(i)
                    aud.startTransmit(aud)  # the agent stand-in: an echo

    acfg = account_config(pj, f"sip:{cfg_in['username']}@{cfg_in['domain']}", bind,
                          port_base=30000)
    acfg.sipConfig.transportId = tp
    acfg.sipConfig.authCreds.append(pj.AuthCredInfo(
        "digest", "*", cfg_in.get("auth_username") or cfg_in["username"], 0,
        cfg_in["password"]))
    acfg.regConfig.registrarUri = registrar
    acfg.regConfig.timeoutSec = EXPIRES_S
    acfg.regConfig.retryIntervalSec = RETRY_S
    acfg.regConfig.firstRetryIntervalSec = RETRY_S
    acc = Account()
    acc.create(acfg)

    def command(line: str) -> None:
        try:
            cmd = json.loads(line)
        except ValueError:
            return
        if cmd.get("cmd") != "call":
            return
        cid = str(cmd["id"])
        call = Call(acc, cid)
        calls[cid] = call
        call.max_s = float(cmd.get("seconds") or MAX_CALL_S)
        emit(event="call", id=cid, state="dialling", code=None, reason=None)
        try:
            call.makeCall(f"sip:{cmd['to']}@{cfg_in['registrar']}:{cfg_in['port']}{tparam}",
                          pj.CallOpParam(True))
        except pj.Error as exc:
            emit(event="call", id=cid, state="failed", code=None, reason=exc.reason)
            calls.pop(cid, None)

    running = True
    while running and not stop:
        ep.libHandleEvents(20)
        try:
            while True:
                line = lines.get_nowait()
                if line is None:
                    running = False
                    break
                command(line)
        except queue.Empty:
            pass
        now = time.monotonic()
        for cid, call in list(calls.items()):
            if call.last in ("ended", "failed"):
                calls.pop(cid)
            elif now - call.started > min(getattr(call, "max_s", MAX_CALL_S), MAX_CALL_S):
                try:  # nobody hung up: this side does, like a cloud's max call duration
                    call.hangup(pj.CallOpParam(True))
                except pj.Error:
                    pass
                call.started = now  # hang up once; DISCONNECTED follows
    ep.hangupAllCalls()
    end = time.monotonic() + 1
    while time.monotonic() < end and any(c.last not in ("ended", "failed") for c in
                                         calls.values()):
        ep.libHandleEvents(20)
    end = time.monotonic() + 2  # a REGISTER in flight: let it finish, or its binding stays
    while time.monotonic() < end and "final" not in seen:
        ep.libHandleEvents(20)
    try:
        if acc.getInfo().regIsActive:
            seen["final"] = None
            acc.setRegistration(False)  # our binding only (Expires 0 on our Contact)
            end = time.monotonic() + 2  # regIsActive drops at once: wait for the answer,
            while time.monotonic() < end and seen["final"] is None:  # challenge included
                ep.libHandleEvents(20)
    except pj.Error:
        pass
    calls.clear()
    acc.shutdown()
    ep.libDestroy(pj.PJSUA_DESTROY_NO_NETWORK)
    os._exit(0)


if __name__ == "__main__":
    main()
