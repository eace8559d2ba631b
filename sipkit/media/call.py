"""Run one test call in a worker process and judge its audio.

    result = await run_call(CallParams(target="sip:echo@203.0.113.5", local_ip="192.0.2.10"),
                            timeout=20)

``run_call`` never raises for anything the call, the network or pjsip does: a worker that
crashes (a pjsip assertion is SIGABRT), hangs or prints garbage gives a ``CallResult`` with
status "error" and the reason. Bad ``CallParams`` fail earlier, when the model is built.

Thresholds live in ``params.thresholds`` (defaults: loss < 1 %, jitter < 30 ms, MOS ≥ 3.6;
see ``Thresholds``). The MOS is sipkit.media.mos's E-model; the verdicts are
sipkit.media.verdict's.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys

from pydantic import ValidationError

from ..net.addresses import parse_ip
from ..redact import redact_text
from ..sip.uri import SipUri
from .model import CallParams, CallResult, SipMessage, Thresholds
from .verdict import host_of, judge
from .worker import READY_MARK, RESULT_MARK, SIP_MARK

STARTUP_S = 5.0  # interpreter + pjsua2 import, on a slow machine
TEARDOWN_S = 4.0  # after the result: hang up, un-REGISTER (≤ 2 s), destroy


def _with_transport(uri: str, transport: str, loose_route: bool = False) -> str:
    """Add ;transport= (for tcp/tls) and ;lr (for a proxy) when the URI lacks them."""
    parsed = SipUri.parse(uri)
    if transport != "udp" and "transport" not in parsed.params and parsed.scheme == "sip":
        parsed.params["transport"] = transport
    if loose_route and "lr" not in parsed.params:
        parsed.params["lr"] = None
    return str(parsed)


def worker_input(params: CallParams) -> bytes:
    """The worker's stdin: the one place the password is revealed."""
    data = params.model_dump(exclude={"password", "thresholds"})
    data["target"] = _with_transport(params.target, params.transport)
    if params.registrar:
        data["registrar"] = _with_transport(params.registrar, params.transport)
    if params.proxy:
        data["proxy"] = _with_transport(params.proxy, params.transport, loose_route=True)
    data["password"] = params.password.get_secret_value() if params.password else None
    return json.dumps(data).encode()


def signalling_ip_of(params: CallParams) -> str | None:
    """The address SIP goes to (the proxy, else the target), when it is an IP literal."""
    host = SipUri.parse(params.proxy or params.target).host
    return host if parse_ip(host) else None


async def _result_line(stdout: asyncio.StreamReader, sip: list[SipMessage],
                       on_ready=None) -> str | None:
    """The worker's result line; None at EOF without one (it died). SIP lines on the way
    are appended to ``sip``; a READY line (answer mode) calls ``on_ready()``."""
    while True:
        raw = await stdout.readline()
        if not raw:
            return None
        line = raw.decode(errors="replace").rstrip("\r\n")
        if line.startswith(RESULT_MARK):
            return line
        if line.startswith(READY_MARK) and on_ready is not None:
            on_ready()
        _sip_line(line, sip)


def _sip_line(line: str, sip: list[SipMessage]) -> None:
    if line.startswith(SIP_MARK):
        try:
            sip.append(SipMessage.model_validate_json(line[len(SIP_MARK):]))
        except ValidationError:
            pass  # a cut or garbled log line is not worth failing the call for


def _terminate(proc: asyncio.subprocess.Process) -> None:
    """Ask an answer-mode worker to stop waiting (it un-registers, then reports)."""
    if proc.returncode is None:
        try:
            proc.terminate()
        except ProcessLookupError:
            pass


async def _stop(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        try:
            proc.kill()
        except ProcessLookupError:
            pass
    await proc.wait()


async def _hang_up(proc: asyncio.subprocess.Process) -> None:
    """Cancelled (Ctrl-C): ask the worker to end the call now (SIGTERM), and give it the time
    to hang up and remove its registration before it is killed."""
    if proc.returncode is not None:
        return
    try:
        proc.terminate()
        await asyncio.wait_for(asyncio.shield(proc.wait()), TEARDOWN_S + 2)
    except (ProcessLookupError, TimeoutError, asyncio.CancelledError):
        pass


def _error(message: str, secrets: list[str], sip: list[SipMessage] = ()) -> CallResult:
    return CallResult(status="error", error=redact_text(message, secrets), sip=list(sip))


async def run_call(params: CallParams, timeout: float | None = None, *,
                   signalling_ip: str | None = None,
                   thresholds: Thresholds | None = None,
                   on_ready=None) -> CallResult:
    """Place the call in ``python -m sipkit.media.worker``, wait at most ``timeout`` seconds
    (default: setup_timeout + seconds + STARTUP_S), judge the result.

    ``signalling_ip`` (default: where the INVITE's responses came from, else the proxy's or
    target's IP literal) is the address we sent SIP to, for the private-SDP verdict.
    ``thresholds`` overrides ``params.thresholds``. The worker gets ``TEARDOWN_S`` after its
    result to hang up and un-register before it is killed.

    Answer mode (``params.answer``): ``on_ready(stop)`` is called once the worker has
    registered and waits for the call; calling ``stop()`` makes it give up waiting (it still
    un-registers).
    """
    if isinstance(timeout, Thresholds):  # the pre-issue-5 call shape: run_call(p, thresholds)
        thresholds, timeout = timeout, None
    thresholds = thresholds or params.thresholds
    timeout = timeout or params.setup_timeout + params.seconds + STARTUP_S + (
        params.setup_timeout + params.wait_timeout if params.answer else 0)
    secrets = [params.password.get_secret_value()] if params.password else []
    sip: list[SipMessage] = []  # what the call sent and received, even if the worker dies
    try:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "sipkit.media.worker", stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    except OSError as exc:
        return _error(f"cannot start the call worker: {exc.strerror}", secrets)
    stderr = asyncio.ensure_future(proc.stderr.read())  # drained all along: never blocks
    try:
        proc.stdin.write(worker_input(params))
        await proc.stdin.drain()
        proc.stdin.close()
        ready = None if on_ready is None else (lambda: on_ready(lambda: _terminate(proc)))
        line = await asyncio.wait_for(_result_line(proc.stdout, sip, ready), timeout)
    except ConnectionError:  # it died before reading its input: the exit status says why
        line = None
    except (TimeoutError, asyncio.CancelledError) as exc:
        if isinstance(exc, asyncio.CancelledError):
            await _hang_up(proc)
        await _stop(proc)
        stderr.cancel()
        if isinstance(exc, asyncio.CancelledError):
            raise
        return _error(f"the call worker did not finish in {timeout:.0f} s (killed)", secrets,
                      sip)
    # The result is out; the worker now hangs up and removes its registration. Let it
    # finish (a killed worker would leave its binding on the PBX), within reason.
    rest = asyncio.ensure_future(proc.stdout.read())
    try:
        await asyncio.wait_for(proc.wait(), TEARDOWN_S)
    except TimeoutError:
        await _stop(proc)
    for tail_line in (await rest).decode(errors="replace").splitlines():
        _sip_line(tail_line, sip)  # the BYE's answer, the un-REGISTER
    err = await stderr
    if line is None:
        rc = proc.returncode
        how = (f"killed by {signal.Signals(-rc).name}" if rc is not None and rc < 0
               else f"exit code {rc}")
        tail = err.decode(errors="replace").strip().splitlines()[-3:]
        return _error(f"the media engine (pjsua2) crashed: {how}"
                      + (f" — {' / '.join(tail)[-300:]}" if tail else ""), secrets, sip)
    try:
        result = CallResult.model_validate_json(line[len(RESULT_MARK):])
    except ValidationError as exc:
        return _error(f"the call worker gave a malformed result ({exc.error_count()} "
                      "problems)", secrets, sip)
    if result.error:
        result.error = redact_text(result.error, secrets)
    if result.reason:
        result.reason = redact_text(result.reason, secrets)
    result.sip = sip
    result.signalling_ip = (signalling_ip or host_of(result.signalling_peer)
                            or signalling_ip_of(params))
    return judge(result, thresholds)


def run_call_sync(params: CallParams, timeout: float | None = None, **kw) -> CallResult:
    """``run_call`` for code without an event loop (scripts, the probe's threads)."""
    return asyncio.run(run_call(params, timeout, **kw))
