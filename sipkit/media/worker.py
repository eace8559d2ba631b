"""One pjsua2 test call, in a process of its own: ``python -m sipkit.media.worker``.

Reads CallParams as JSON on stdin, prints one ``SIPKIT-RESULT {json}`` line, exits. Why a
process: pjsip asserts (SIGABRT) on some peer behaviours, a second Endpoint in a process
aborts, and calling pjsua2 from an unregistered thread aborts (research/lab.md §4). Here one
Python thread owns the Endpoint (threadCnt 0, events pumped by hand), so every callback runs
in it, and whatever pjsip does, the agent survives.
"""

from __future__ import annotations

import json
import os
import sys
import time

RESULT_MARK = "SIPKIT-RESULT "


def _emit(result: dict) -> None:
    sys.stdout.write(RESULT_MARK + json.dumps(result) + "\n")
    sys.stdout.flush()


def run(params: dict) -> dict:  # noqa: C901 - one linear call script reads best in one place
    import pjsua2 as pj

    t0 = time.monotonic()
    out: dict = {"status": "error", "verdicts": []}
    ep = pj.Endpoint()
    ep.libCreate()
    cfg = pj.EpConfig()
    cfg.uaConfig.threadCnt = 0
    cfg.uaConfig.mainThreadOnly = False
    cfg.uaConfig.userAgent = "sipkit-media"
    cfg.logConfig.level = 0
    cfg.logConfig.consoleLevel = 0
    cfg.medConfig.noVad = True  # keep RTP flowing through silence
    cfg.medConfig.ecTailLen = 0
    ep.libInit(cfg)
    ep.audDevManager().setNullDev()

    transport = params.get("transport", "udp")
    tcfg = pj.TransportConfig()
    tcfg.boundAddress = params["local_ip"]
    tcfg.port = 0
    kind = {"udp": pj.PJSIP_TRANSPORT_UDP, "tcp": pj.PJSIP_TRANSPORT_TCP,
            "tls": pj.PJSIP_TRANSPORT_TLS}[transport]
    if transport == "tls":
        tcfg.tlsConfig.method = pj.PJSIP_TLSV1_2_METHOD
        tcfg.tlsConfig.verifyServer = bool(params.get("verify_tls"))
        if params.get("ca_file"):
            tcfg.tlsConfig.CaListFile = params["ca_file"]
    tp = ep.transportCreate(kind, tcfg)
    ep.libStart()

    def pump(cond, timeout: float) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            ep.libHandleEvents(10)
            if cond():
                return True
        return False

    class Acc(pj.Account):
        def __init__(self):
            super().__init__()
            self.code = None

        def onRegState(self, prm):
            self.code = prm.code

    class TestCall(pj.Call):
        def __init__(self, acc):
            super().__init__(acc)
            self.states: list[str] = []
            self.code = None
            self.reason = None
            self.first_1xx = None
            self.answered = None

        def onCallState(self, prm):
            ci = self.getInfo()
            self.states.append(ci.stateText)
            self.code, self.reason = ci.lastStatusCode, ci.lastReason
            now = (time.monotonic() - self.started) * 1000
            if ci.stateText == "EARLY" and self.first_1xx is None:
                self.first_1xx = now
            if ci.stateText in ("CONNECTING", "CONFIRMED") and self.answered is None:
                self.answered = now

        def onCallMediaState(self, prm):
            ci = self.getInfo()
            for i, mi in enumerate(ci.media):
                if mi.type == pj.PJMEDIA_TYPE_AUDIO and mi.status == pj.PJSUA_CALL_MEDIA_ACTIVE:
                    aud = self.getAudioMedia(i)
                    adm = ep.audDevManager()
                    adm.getCaptureDevMedia().startTransmit(aud)
                    aud.startTransmit(adm.getPlaybackDevMedia())

    acfg = pj.AccountConfig()
    local = params["local_ip"]
    acfg.idUri = params.get("from_uri") or f"sip:sipkit@{local}"
    acfg.sipConfig.transportId = tp
    acfg.natConfig.contactRewriteUse = 0
    acfg.natConfig.viaRewriteUse = 0
    acfg.natConfig.sdpNatRewriteUse = 0
    acfg.mediaConfig.transportConfig.boundAddress = local
    acfg.mediaConfig.transportConfig.publicAddress = local
    acfg.mediaConfig.transportConfig.port = 40000
    acfg.mediaConfig.transportConfig.portRange = 1000
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
    acc.create(acfg)

    if params.get("registrar"):
        pump(lambda: acc.code is not None, 5)
        out["registration"] = acc.code
        if acc.code is None or not 200 <= acc.code < 300:
            out["status"] = "error"
            out["error"] = f"registration failed ({acc.code or 'no answer'})"
            return _finish(ep, acc, None, out)

    call = TestCall(acc)
    call.started = time.monotonic()
    try:
        call.makeCall(params["target"], pj.CallOpParam(True))
    except pj.Error as exc:
        out["error"] = f"cannot place the call: {exc.reason}"
        return _finish(ep, acc, None, out)
    done = pump(lambda: "CONFIRMED" in call.states or "DISCONNECTED" in call.states,
                params.get("setup_timeout", 10))
    out["code"], out["reason"] = call.code, call.reason
    out["provisional_ms"] = round(call.first_1xx, 1) if call.first_1xx is not None else None
    out["answer_ms"] = round(call.answered, 1) if call.answered is not None else None
    if "CONFIRMED" not in call.states:
        out["status"] = "rejected" if done and call.code and call.code >= 300 else "no_answer"
        if not done:
            call.hangup(pj.CallOpParam(True))
            pump(lambda: "DISCONNECTED" in call.states, 2)
        return _finish(ep, acc, call, out)

    out["status"] = "answered"
    media_start = time.monotonic()
    pump(lambda: "DISCONNECTED" in call.states, params.get("seconds", 3))
    out["media_seconds"] = round(time.monotonic() - media_start, 2)
    try:
        si = call.getStreamInfo(0)
        out["codec"] = f"{si.codecName}/{si.codecClockRate}"
        out["remote_media"] = si.remoteRtpAddress
        st = call.getStreamStat(0)
        for label, s in (("tx", st.rtcp.txStat), ("rx", st.rtcp.rxStat)):
            total = s.pkt + s.loss
            out[label] = {"packets": s.pkt, "bytes": s.bytes, "loss": s.loss,
                          "loss_pct": round(100.0 * s.loss / total, 2) if total else 0.0,
                          "jitter_ms_mean": round(s.jitterUsec.mean / 1000, 2) if s.pkt else None,
                          "jitter_ms_max": round(s.jitterUsec.max / 1000, 2) if s.pkt else None}
        if st.rtcp.rttUsec.n:
            out["rtt_ms"] = round(st.rtcp.rttUsec.mean / 1000, 2)
        out["local_media"] = f"{local}"
        out["jbuf_delay_ms"] = st.jbuf.avgDelayMsec
    except pj.Error as exc:
        out["error"] = f"no media stream: {exc.reason}"
    if "DISCONNECTED" not in call.states:
        call.hangup(pj.CallOpParam(True))
        pump(lambda: "DISCONNECTED" in call.states, 3)
    out["seconds_total"] = round(time.monotonic() - t0, 2)
    return _finish(ep, acc, call, out)


def _finish(ep, acc, call, out: dict) -> dict:
    """Emit first (a crash in teardown must not lose the result), then tear down: hang up,
    remove our registration (never leave a stale binding on the customer's PBX), destroy."""
    _emit(out)
    try:
        import pjsua2 as pj

        ep.hangupAllCalls()
        if acc is not None and out.get("registration") and 200 <= out["registration"] < 300:
            acc.code = None
            acc.setRegistration(False)
            end = time.monotonic() + 2
            while acc.code is None and time.monotonic() < end:
                ep.libHandleEvents(10)
        if acc is not None:
            acc.shutdown()
        ep.libDestroy(pj.PJSUA_DESTROY_NO_NETWORK)
    finally:
        os._exit(0)


def main() -> None:
    params = json.loads(sys.stdin.read())
    if params.get("test_hook") == "abort":
        os.abort()  # what a pjsip assertion does to the process
    try:
        run(params)
    except Exception as exc:  # noqa: BLE001 - report, never a traceback with params in it
        _emit({"status": "error", "error": f"{type(exc).__name__}: {exc}", "verdicts": []})
        os._exit(1)


if __name__ == "__main__":
    main()
