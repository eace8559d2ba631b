"""What the two call checks share: the worker call, the local address, the verdict words."""

from __future__ import annotations

import socket

from ..media.call import run_call
from ..media.model import (
    BYE_UNANSWERED,
    JITTER_HIGH,
    LOSS_HIGH,
    MOS_LOW,
    PRIVATE_SDP,
    CallParams,
    CallResult,
    Thresholds,
)
from ..media.worker import NO_IPV6
from ..report import CheckResult
from .base import CheckContext, Target
from .sipio import tap_for


def call_target(targets: list[Target]) -> Target:
    """The first IPv4 target, else the first: the media engine has no IPv6, and a dual-stack
    PBX should still get its test call."""
    return next((t for t in targets if ":" not in t.ip), targets[0])


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


def budget(options, site) -> float:
    return site.check.call_seconds + 45


async def place(ctx: CheckContext, params: CallParams, signalling_ip: str,
                on_ready=None) -> CallResult:
    """``on_ready``: answer mode's hook (sipkit.media.call.run_call)."""
    verb = "answering as" if params.answer else "calling"
    ctx.note(f"{verb} {params.target} over {params.transport.upper()} from {params.local_ip}"
             + (f", registered as {params.username}" if params.registrar else ""))
    params = params.model_copy(update={"thresholds": thresholds(ctx)})
    result = await run_call(params, signalling_ip=signalling_ip, on_ready=on_ready)
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


def judge_audio(ctx: CheckContext, r: CallResult, summary: str, **details):
    details = {**details, "call": r.model_dump()}
    hard = [v for v in r.verdicts if v in ("no_audio", "one_way_audio")]
    if hard:
        key = "no_audio" if hard[0] == "no_audio" else (r.one_way_missing or "rx")
        words, fix = AUDIO_PROBLEMS[key]
        return ctx.result("fail", f"{summary}: {words} ({media_summary(r)})", fix,
                          **details)
    soft = [WARNINGS[v] for v in r.verdicts if v in WARNINGS]
    if soft:
        fixes = "; ".join(dict.fromkeys(fix for _, fix in soft))
        return ctx.result("warn", f"{summary}: {media_summary(r)}; "
                          + "; ".join(words for words, _ in soft), fixes, **details)
    return ctx.result("pass", f"{summary}: {media_summary(r)}", **details)
