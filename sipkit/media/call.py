"""Run one test call in a worker process and judge its audio."""

from __future__ import annotations

import asyncio
import json
import signal
import sys

from ..net.addresses import address_kind
from ..redact import redact_text
from .model import CallParams, CallResult, Thresholds
from .mos import mos
from .worker import RESULT_MARK

PACKETIZATION_MS = 20


def judge(result: CallResult, thresholds: Thresholds, signalling_ip: str | None) -> CallResult:
    """Add MOS and verdicts to an answered call's raw numbers."""
    if result.status != "answered":
        return result
    v = result.verdicts
    tx, rx = result.tx.packets, result.rx.packets
    if tx == 0 and rx == 0:
        v.append("no_audio")
    elif rx == 0:
        v.append("one_way_audio")  # we send, nothing comes back
    elif tx == 0:
        v.append("one_way_audio_outbound")
    if rx:
        delay = (result.rtt_ms or 0) / 2 + PACKETIZATION_MS + (result.jbuf_delay_ms or 0)
        result.mos = mos(delay, result.rx.loss_pct, result.codec or "PCMU")
        if result.rx.loss_pct > thresholds.max_loss_pct:
            v.append("loss_high")
        if (result.rx.jitter_ms_mean or 0) > thresholds.max_jitter_ms:
            v.append("jitter_high")
        if result.mos < thresholds.min_mos:
            v.append("mos_low")
    remote_ip = (result.remote_media or "").rsplit(":", 1)[0].strip("[]")
    if remote_ip and signalling_ip and address_kind(remote_ip) in ("private", "carrier-grade NAT") \
            and address_kind(signalling_ip) is None:
        v.append("private_sdp")
    return result


async def run_call(params: CallParams, thresholds: Thresholds | None = None,
                   timeout: float | None = None, signalling_ip: str | None = None) -> CallResult:
    """Never raises for what the call or pjsip does: a crash is a result with status error."""
    thresholds = thresholds or Thresholds()
    timeout = timeout or params.setup_timeout + params.seconds + 15
    secrets = [params.password] if params.password else []
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "sipkit.media.worker", stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        out, err = await asyncio.wait_for(proc.communicate(params.model_dump_json().encode()),
                                          timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        return CallResult(status="error", error=f"the call worker did not finish in {timeout:.0f} s")
    line = next((ln for ln in out.decode(errors="replace").splitlines()
                 if ln.startswith(RESULT_MARK)), None)
    if line is None:
        rc = proc.returncode
        how = (f"killed by {signal.Signals(-rc).name}" if rc is not None and rc < 0
               else f"exit code {rc}")
        tail = redact_text(err.decode(errors="replace").strip()[-300:], secrets)
        return CallResult(status="error", error=f"the media engine (pjsua2) crashed: {how}"
                          + (f" — {tail}" if tail else ""))
    data = json.loads(line[len(RESULT_MARK):])
    if data.get("error"):
        data["error"] = redact_text(data["error"], secrets)
    result = CallResult.model_validate(data)
    return judge(result, thresholds, signalling_ip)
