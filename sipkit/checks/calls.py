"""What the call checks share: the worker call, the local address, the verdict words.

A call check places one test call with everything an AI agent's calls need checked on the way
(``call_features``): a test tone whose return is analysed, DTMF digits (RFC 4733, else SIP
INFO), a hold and resume; with ``check.long_call_seconds`` the same call runs long. Opt-in
extras run after it (``extra_calls``): the codec audit and N simultaneous calls. ``judge_audio``
turns all of it into one result: the worst verdict decides, each with its cause and fix.
"""

from __future__ import annotations

import asyncio
import socket

from ..media.call import run_call
from ..media.model import (
    ACK_LOST,
    AUDIO_NOT_SIGNAL,
    AUDIO_SILENT,
    BYE_AT_32S,
    BYE_UNANSWERED,
    DTMF_NOT_NEGOTIATED,
    DTMF_NOT_RETURNED,
    HOLD_FAILED,
    JITTER_HIGH,
    LOSS_HIGH,
    MEDIA_LATCHED,
    MOS_LOW,
    PRIVATE_SDP,
    SESSION_REFRESH_FAILED,
    CallParams,
    CallResult,
    Thresholds,
)
from ..media.verdict import digits_returned
from ..media.worker import NO_IPV6
from ..net.addresses import uri_host
from ..report import CheckResult
from ..sip.errors import SipParseError
from ..sip.message import Response, parse
from ..sip.sdp import parse_sdp
from .base import CheckContext, Target
from .sipio import tap_for


def call_target(targets: list[Target]) -> Target:
    """The first IPv4 target, else the first: the media engine has no IPv6, and a dual-stack
    PBX should still get its test call."""
    return next((t for t in targets if ":" not in t.ip), targets[0])


def outbound_target(ctx: CheckContext, what: str) -> Target | CheckResult:
    """The answering server to call through (IPv4 first), or the skip that says why not."""
    targets = ctx.answering_targets
    if not targets:
        return ctx.result("skip", f"no {what} address answered")
    t = call_target(targets)
    return ipv6_skip(ctx, t.ip) or t


def ipv6_skip(ctx: CheckContext, ip: str) -> CheckResult | None:
    """IPv6 targets: a skip that says why (the media engine cannot), not a failed call."""
    if ":" not in ip:
        return None
    return ctx.result("skip", f"{NO_IPV6}; the signalling checks cover IPv6",
                      "if the server also has an IPv4 address, run the calls against it "
                      "(--set registrar_server=<that address>)")


def local_ip_towards(ctx: CheckContext, ip: str) -> str:
    """--source-ip, else the address the kernel would send from (no packet is sent)."""
    if ctx.options.source_ip:
        return ctx.options.source_ip
    family = socket.AF_INET6 if ":" in ip else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as s:
        s.connect((ip, 9))
        return s.getsockname()[0]


def tls_params(ctx: CheckContext) -> dict:
    """TLS calls verify the peer like everything else: system store or --ca-file, unless
    --insecure."""
    ca = ctx.options.ca_file or ctx.site.check.ca_file
    return {"verify_tls": not ctx.options.insecure, "ca_file": str(ca) if ca else None}


def thresholds(ctx: CheckContext) -> Thresholds:
    c = ctx.site.check
    return Thresholds(max_loss_pct=c.max_loss_pct, max_jitter_ms=c.max_jitter_ms,
                      min_mos=c.min_mos)


TONE_HZ = 1004.0  # the classic test tone: not a sub-multiple of 8 kHz, survives G.711
DIGITS = "159#"  # four digits, one per keypad column and row: ~1 s of RFC 4733 events
AUDIT_CODECS = ("PCMU", "PCMA", "G722", "opus")  # what a connector speaks, best known first
AUDIT_SECONDS = 0.6


def _opt(site, name: str, default):
    """A check: option that a trunk's check section may not have."""
    return getattr(getattr(site, "check", None), name, default)


def budget(options, site) -> float:
    seconds = _opt(site, "long_call_seconds", None) or site.check.call_seconds
    extra = 0.0
    if _opt(site, "codec_audit", False):
        extra += len(AUDIT_CODECS) * (AUDIT_SECONDS + 12)
    if _opt(site, "concurrent_calls", None):
        extra += site.check.call_seconds + 20
    return seconds + 45 + extra


def outbound_params(ctx: CheckContext, t: Target, number: str, *, register: bool) -> CallParams:
    """A call to ``number`` through the endpoint's server ``t``, as the connector (``register``:
    a REGISTER first) or the agent through a trunk calls out: From the endpoint's user, answered
    with its digest credentials, with the call checks' features."""
    ep = ctx.endpoint
    tp = ";transport=tls" if t.transport == "tls" else ""
    return CallParams(
        target=f"sip:{number}@{t.hostport}{tp}", transport=t.transport,
        local_ip=local_ip_towards(ctx, t.ip),
        from_uri=f"sip:{ep.username or 'sipkit'}@{uri_host(ep.sip_domain)}",
        registrar=f"sip:{t.hostport}{tp}" if register else None,
        username=ep.digest_username or None,
        password=ep.password.get_secret_value() if ep.password else None,
        setup_timeout=max(5.0, ctx.options.timeout * 2), **tls_params(ctx),
        **call_features(ctx.site))


def call_features(site) -> dict:
    """The CallParams fields a call check adds to a plain call (none of them by default in
    ``place``: the verify and probe helpers' calls stay plain)."""
    dtmf = _opt(site, "dtmf", "auto")
    return {"tone_hz": TONE_HZ, "dtmf": None if dtmf == "off" else DIGITS,
            "hold": _opt(site, "hold_resume", True),
            "seconds": _opt(site, "long_call_seconds", None) or site.check.call_seconds}


async def place(ctx: CheckContext, params: CallParams, signalling_ip: str,
                timeout: float | None = None, on_ready=None) -> CallResult:
    """One call, its SIP tapped into the ladder and --pcap. ``on_ready``: answer mode's hook
    (sipkit.media.call.run_call). Cancelling the task (Ctrl-C) stops the worker."""
    verb = "answering as" if params.answer else "calling"
    ctx.note(f"{verb} {params.target} over {params.transport.upper()} from {params.local_ip}"
             + (f", registered as {params.username}" if params.registrar else ""))
    params = params.model_copy(update={"thresholds": thresholds(ctx)})
    result = await run_call(params, timeout, signalling_ip=signalling_ip, on_ready=on_ready)
    tap = tap_for(ctx)  # the call's SIP (pjsua's message log): ladder rows and --pcap packets
    for message in result.sip:
        tap(*message.tap_args())
    ctx.record("media", f"call {result.status}"
               + (f" {result.code} {result.reason}" if result.code else "")
               + (f"; {result.codec}; RTP sent {result.tx.packets}, received {result.rx.packets}"
                  if result.status == "answered" else "")
               + (f"; {result.error}" if result.error else ""))
    return result


def media_summary(r: CallResult) -> str:
    parts = [f"answered in {r.answer_ms:.0f} ms" if r.answer_ms is not None else "answered"]
    if r.codec:
        parts.append(r.codec)
    parts.append(f"RTP sent {r.tx.packets} / received {r.rx.packets}")
    if r.rx.packets:
        parts.append(f"loss {r.rx.loss_pct:.1f} %")
        if r.rx.jitter_ms_mean is not None:
            parts.append(f"jitter {r.rx.jitter_ms_mean:.1f} ms")
    if r.rtt_ms is not None:
        parts.append(f"RTT {r.rtt_ms:.1f} ms" if r.rtt_ms < 10 else f"RTT {r.rtt_ms:.0f} ms")
    if r.mos is not None:
        parts.append(f"MOS {r.mos:.2f}")
    return ", ".join(parts)


def answer_codecs(r: CallResult) -> list[str]:
    """The codecs of the far end's answer, in its order of preference (RFC 3264 §6.1)."""
    for m in r.sip:
        if m.direction != "in" or "application/sdp" not in m.data[:2000].lower():
            continue
        try:
            msg = parse(m.data.encode("latin-1"))
            if isinstance(msg, Response) and 200 <= msg.status < 300 and \
                    msg.cseq[1] == "INVITE" and msg.body:
                audio = parse_sdp(msg.body).audio()
                return [c for c in audio.codecs if not c.lower().startswith(
                    ("telephone-event", "cn/"))] if audio else []
        except SipParseError:
            continue
    return []


def dtmf_facts(r: CallResult) -> dict | None:
    """How this far end takes key presses: RFC 4733 events, SIP INFO, or in-band only."""
    if r.dtmf is None:
        return None
    allow = (r.dialog or {}).get("allow") or []
    codes = r.dtmf.get("info_codes") or []
    info_ok = bool(codes) and all(200 <= c < 300 for c in codes)  # each digit's INFO taken
    mode = ("rfc4733" if r.dtmf.get("telephone_event") else
            "sip_info" if "INFO" in allow or info_ok else "inband_only")
    received = "".join(d["digit"] for d in r.dtmf.get("received") or [])
    return {"mode": mode, "sent": r.dtmf.get("sent"), "sent_as": r.dtmf.get("method"),
            "received": received, "returned": digits_returned(r.dtmf),
            "info_codes": r.dtmf.get("info_codes") or [], "error": r.dtmf.get("error")}


def _extras_summary(r: CallResult) -> str:
    parts = []
    d = dtmf_facts(r)
    if d and d["mode"] == "rfc4733":
        parts.append(f"DTMF {d['sent']} sent as RFC 4733"
                     + (", returned" if d["returned"] else "")
                     + (f", received {d['received']}" if d["received"] and not d["returned"]
                        else ""))
    a = r.audio or {}
    if a.get("tone_share_judged") is not None:
        parts.append(f"test tone back in {100 * a['tone_share_judged']:.0f} % of the audio")
    if r.hold and r.hold.get("hold_ok") and r.hold.get("resume_ok"):
        parts.append("hold/resume OK")
    dlg = r.dialog or {}
    if r.media_seconds >= 20:
        parts.append(f"held {r.media_seconds:.0f} s"
                     + (f", session timer {dlg['session_expires']} s"
                        if dlg.get("session_expires") else ""))
    return "; ".join(parts)


AUDIO_PROBLEMS = {
    "no_audio": ("no audio in either direction",
                 "RTP is blocked both ways: open the RTP port range (UDP) between this site and "
                 "the cloud, and disable the SIP ALG"),
    # one_way_audio, by the side that is missing (CallResult.one_way_missing)
    "rx": ("one-way audio: RTP sent, none received",
           "the far end's RTP does not reach this site: allow inbound UDP to the RTP ports, and "
           "check no NAT/ALG rewrites the SDP address"),
    "tx": ("one-way audio: RTP received, none sent",
           "this side sends no RTP: check the local media configuration"),
}
_QUALITY_FIX = ("check the path's loss and jitter (Wi-Fi, saturated uplink, QoS); thresholds "
                "are in the check: section")
_ACK_FIX = ("the ACK goes to the Contact (and Record-Route) of the PBX's 200 OK: make the PBX "
            "put an address there that this side can reach (its NAT / external address "
            "settings), and disable any SIP ALG on the way")
_DTMF_FIX = ("enable RFC 4733 (a.k.a. RFC 2833) DTMF, telephone-event, on the PBX for this "
             "extension or trunk (Asterisk/FreePBX: dtmf_mode=rfc4733)")


def _ack_path(dlg: dict) -> str:
    """Where the ACK went: the 200 OK's Record-Route (RFC 3261 §12.1.2), else its Contact."""
    if dlg.get("record_route"):
        return f" (it goes by the 200 OK's Record-Route {dlg['record_route'][-1]})"
    if dlg.get("contact"):
        return f" (it goes to the 200 OK's Contact {dlg['contact']})"
    return ""


def _words(v: str, r: CallResult) -> tuple[str, str]:
    """(what happened, the fix) for a verdict, with this call's numbers in it."""
    dlg, a, hold = r.dialog or {}, r.audio or {}, r.hold or {}
    if v == ACK_LOST:
        return (f"the far end never got our ACK: it sent its 200 OK {dlg.get('ok_count')} "
                f"times{_ack_path(dlg)}", _ACK_FIX)
    if v == BYE_AT_32S:
        return (f"the far end hung up {dlg.get('far_bye_after_s'):.0f} s after answering: the "
                "32 s timeout of a 200 OK that was never acknowledged"
                + ("" if ACK_LOST in r.verdicts else _ack_path(dlg)), _ACK_FIX)
    if v == SESSION_REFRESH_FAILED:
        codes = [f"{x['method']} by {x['by']} → {x['status']}" for x in dlg.get("in_dialog", [])
                 if (x["status"] or 0) >= 300 and x["purpose"] == "refresh"]
        return (f"a session-timer refresh (RFC 4028) was refused ({', '.join(codes)}): the call "
                "ends when the session expires",
                "let in-dialog re-INVITE/UPDATE through (Contact, Record-Route, firewall), or "
                "turn session timers off on the PBX")
    if v == AUDIO_SILENT:
        return (f"RTP arrives but it is silence ({100 * a.get('nonsilent_share', 0):.0f} % "
                "non-silent): the agent would hear nothing",
                "a codec mismatch or a broken transcoder on the path, or comfort noise only: "
                "check the codecs the PBX and its trunk allow and any SBC/transcoder")
    if v == AUDIO_NOT_SIGNAL:
        share = a.get("tone_share_judged") or 0
        return (f"audio arrives but it is not our {a.get('tone_hz', TONE_HZ):.0f} Hz test tone "
                f"({100 * share:.0f} % of it)",
                "expected if the far end is not an echo; if it is, the path mangles audio "
                "(transcoding, a codec mismatch)")
    if v == MEDIA_LATCHED:
        return (f"the far end's RTP comes from {r.rtp_source} while its SDP names "
                f"{r.remote_media}: the call works only because this side latches on to the "
                "source", "fix the far end's NAT settings (its external media address) so its "
                "SDP names where its RTP comes from; a peer that does not latch gets no audio")
    if v == DTMF_NOT_NEGOTIATED:
        d = dtmf_facts(r) or {}
        codes = sorted(set(d.get("info_codes") or []), reverse=True)
        got = f" (our INFO got {', '.join(map(str, codes))})" if codes else ""
        how = {"sip_info": "the far end takes SIP INFO only" + got,
               "inband_only": f"no SIP INFO either{got}: in-band tones only"}.get(d.get("mode"), "")
        return ("DTMF not negotiated: the agent cannot hear key presses (no telephone-event "
                f"in the answer; {how})", _DTMF_FIX)
    if v == DTMF_NOT_RETURNED:
        d = dtmf_facts(r) or {}
        return (f"the echo returned our audio but not our key presses ({d.get('sent')} sent, "
                f"{d.get('received') or 'nothing'} back)",
                "something on the path drops RFC 4733 events or turns them into audio: check "
                "the DTMF passthrough of the transcoder or SBC")
    if v == HOLD_FAILED:
        step = "hold" if not hold.get("hold_ok") else "resume"
        code = hold.get(f"{step}_code")
        detail = (f"the {step} re-INVITE got {code}" if code and code >= 300 else
                  f"no answer to the {step} re-INVITE" if code is None and
                  not hold.get(f"{step}_ok") else "media did not resume")
        return (f"hold/resume failed: {detail}",
                "the far end must accept a re-INVITE to sendonly and back (RFC 3264 §8.4): "
                "check the PBX's re-INVITE and direct-media settings")
    return WARNINGS[v]


WARNINGS = {  # verdict: (what, fix) — the call worked, something is off
    PRIVATE_SDP: ("the answer's SDP carries a private media address while signalling is "
                  "public", "fix the NAT settings (external address) of the far end"),
    LOSS_HIGH: ("packet loss above the threshold", _QUALITY_FIX),
    JITTER_HIGH: ("jitter above the threshold", _QUALITY_FIX),
    MOS_LOW: ("MOS below the threshold", _QUALITY_FIX),
    BYE_UNANSWERED: ("our BYE got no answer, so the far end may keep the call up",
                     "in-dialog requests do not get through: check the Contact and "
                     "Record-Route addresses the PBX puts in its answer (NAT, SIP ALG, a "
                     "firewall on its signalling port)"),
}
FAILS = (ACK_LOST, BYE_AT_32S, SESSION_REFRESH_FAILED, AUDIO_SILENT)
SOFT = (AUDIO_NOT_SIGNAL, MEDIA_LATCHED, DTMF_NOT_RETURNED, HOLD_FAILED, *WARNINGS)


def dtmf_severity(site, role: str | None) -> str:
    """check.dtmf: required → fail, optional → warn; auto → fail on the inbound call (the
    caller's key presses the agent must hear), warn on the outbound one."""
    policy = _opt(site, "dtmf", "auto")
    if policy == "required" or (policy == "auto" and role == "inbound"):
        return "fail"
    return "warn"


def judge_audio(ctx: CheckContext, r: CallResult, summary: str, *, dtmf_role: str | None = None,
                extra_findings: list[dict] = (), **details):
    """The check's result for an answered call: the worst verdict decides (fail > warn), the
    summary names each problem, the hint each fix. ``extra_findings`` ({status, summary, hint,
    key, details}) come from the codec audit and the simultaneous calls."""
    details = {**details, "call": r.model_dump()}
    if (d := dtmf_facts(r)) is not None:
        details["dtmf"] = d
    if far := answer_codecs(r):
        details["far_end_codecs"] = far
    for f in extra_findings:
        details[f["key"]] = f["details"]
    hard = [v for v in r.verdicts if v in ("no_audio", "one_way_audio")]
    if hard:
        key = "no_audio" if hard[0] == "no_audio" else (r.one_way_missing or "rx")
        words, fix = AUDIO_PROBLEMS[key]
        return ctx.result("fail", f"{summary}: {words} ({media_summary(r)})", fix,
                          **details)
    found: list[tuple[str, str, str]] = []  # (status, words, fix)
    for v in r.verdicts:
        if v in FAILS or v in SOFT or v == DTMF_NOT_NEGOTIATED:
            status = ("fail" if v in FAILS else dtmf_severity(ctx.site, dtmf_role)
                      if v == DTMF_NOT_NEGOTIATED else "warn")
            found.append((status, *_words(v, r)))
    found += [(f["status"], f["summary"], f["hint"]) for f in extra_findings
              if f["status"] in ("fail", "warn")]
    extras = _extras_summary(r)
    good = [f["summary"] for f in extra_findings if f["status"] == "pass"]
    line = f"{summary}: {media_summary(r)}" + (f"; {extras}" if extras else "") + \
        "".join(f"; {g}" for g in good)
    if not found:
        return ctx.result("pass", line, **details)
    status = "fail" if any(f[0] == "fail" for f in found) else "warn"
    found.sort(key=lambda f: f[0] != "fail")
    fixes = "; ".join(dict.fromkeys(fix for _, _, fix in found))
    return ctx.result(status, line + "; " + "; ".join(w for _, w, _ in found), fixes,
                      **details)


# -- opt-in extra calls ---------------------------------------------------------------------
def _plain(params: CallParams, **update) -> CallParams:
    """A short extra call: no REGISTER (the main call did that; a PBX authenticates the
    INVITE), no tone, digits or hold."""
    return params.model_copy(update={"registrar": None, "tone_hz": None, "dtmf": None,
                                     "hold": False, **update})


async def codec_audit(ctx: CheckContext, params: CallParams, signalling_ip: str) -> dict:
    """Offer each of AUDIT_CODECS alone (RFC 3264: the answer either takes it or refuses the
    call, usually 488) in short sequential calls."""
    rows = []
    for codec in AUDIT_CODECS:
        r = await place(ctx, _plain(params, codecs=[codec], seconds=AUDIT_SECONDS),
                        signalling_ip)
        if r.status == "error" and r.error and "not available" in r.error:
            rows.append({"codec": codec, "result": "not in this media engine"})
        elif r.status == "answered" and r.codec:
            rows.append({"codec": codec, "result": "accepted", "answered_with": r.codec,
                         "mos": r.mos})
        elif r.status == "answered":  # a 2xx whose SDP has none of it: no stream (RFC 3264 §6)
            rows.append({"codec": codec, "result": "refused", "code": r.code,
                         "reason": "answered without it in the SDP", "status": r.status})
        else:
            rows.append({"codec": codec, "result": "refused", "code": r.code,
                         "reason": r.reason, "status": r.status})
    accepted = [x["codec"] for x in rows if x["result"] == "accepted"]
    tried = [x["codec"] for x in rows if x["result"] != "not in this media engine"]
    refused = [f"{x['codec']} ({x.get('code') or x.get('status')}"
               + (", not in its answer" if x.get("status") == "answered" else "") + ")"
               for x in rows if x["result"] == "refused"]
    details = {"codecs": rows, "accepted": accepted}
    if not accepted:
        return {"key": "codec_audit", "status": "fail", "details": details,
                "summary": "no common codec: the far end refused each of "
                           f"{', '.join(refused)} (the 488 case)",
                "hint": "enable G.711 (PCMU/PCMA) or G.722 on the PBX for this extension or "
                        "trunk: the connector speaks " + ", ".join(AUDIT_CODECS)}
    return {"key": "codec_audit", "status": "pass", "details": details,
            "summary": f"codecs accepted alone: {', '.join(accepted)} of {', '.join(tried)}"
                       + (f" (refused: {', '.join(refused)})" if refused else "")}


async def concurrent_calls(ctx: CheckContext, params: CallParams, signalling_ip: str,
                           n: int) -> dict:
    """N calls at once through the same path; where the far end stops answering is its
    channel limit (486 Busy Here, 503, 480, 403 are how PBXs say so)."""
    results = await asyncio.gather(*(place(ctx, _plain(params), signalling_ip)
                                     for _ in range(n)))
    rows = [{"status": r.status, "code": r.code, "reason": r.reason, "mos": r.mos,
             "verdicts": r.verdicts, "rx_packets": r.rx.packets} for r in results]
    ok = [r for r in results if r.status == "answered" and r.two_way_audio]
    refused = [r for r in results if r.status != "answered"]
    details = {"requested": n, "connected": len(ok), "calls": rows}
    moses = [r.mos for r in ok if r.mos is not None]
    if not refused and len(ok) == n:
        low = [r for r in ok if set(r.verdicts) & {LOSS_HIGH, JITTER_HIGH, MOS_LOW}]
        text = (f"{n} simultaneous calls connected, MOS {min(moses):.2f}–{max(moses):.2f}"
                if moses else f"{n} simultaneous calls connected")
        if low:
            return {"key": "concurrent", "status": "warn", "details": details,
                    "summary": text + f"; {len(low)} of them below the quality thresholds",
                    "hint": "the uplink or the PBX does not carry " + str(n) +
                            " calls cleanly: " + _QUALITY_FIX}
        return {"key": "concurrent", "status": "pass", "details": details, "summary": text}
    how = ", ".join(sorted({f"{r.code} {r.reason}" if r.code else r.status for r in refused}))
    return {"key": "concurrent", "status": "fail", "details": details,
            "summary": f"only {len(ok)} of {n} simultaneous calls connected; the others got "
                       f"{how}: a channel limit of {len(ok)}",
            "hint": f"raise the channel (call) limit of this extension or trunk on the PBX to "
                    f"at least {n}, or lower the connector's simultaneous calls to {len(ok)}"}


async def extra_calls(ctx: CheckContext, params: CallParams, signalling_ip: str) -> list[dict]:
    """The opt-in parts, after the main call answered: check.codec_audit,
    check.concurrent_calls."""
    out = []
    if _opt(ctx.site, "codec_audit", False):
        out.append(await codec_audit(ctx, params, signalling_ip))
    if n := _opt(ctx.site, "concurrent_calls", None):
        out.append(await concurrent_calls(ctx, params, signalling_ip, n))
    return out
