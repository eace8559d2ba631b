"""Run the selected checks concurrently, each as soon as its dependencies are done."""

from __future__ import annotations

import asyncio
import time
import traceback
from collections.abc import Callable, Iterable

from ..errors import UsageError
from ..redact import Redactor
from ..report import CheckResult, Report
from ..settings import AnySite
from . import REGISTRY, load
from .base import ALL_KINDS, CheckContext, Facts, RunOptions

KIND_WORDS = {"pbx_extension": "a PBX extension", "sip_trunk": "a SIP trunk"}

# on_event(check_id, "start" | "done", result_or_None); used for live progress.
EventFn = Callable[[str, str, CheckResult | None], None]


def select(only: Iterable[str] = (), skip: Iterable[str] = (),
           registry: dict[str, str] | None = None) -> tuple[list[str], set[str]]:
    """Checks to run in report order, and those skipped on request.

    ``--only X`` also runs what X depends on: a REGISTER needs the address DNS found.
    ``registry`` is the group: ``REGISTRY`` (check) or ``VERIFY`` (verify).
    """
    registry = REGISTRY if registry is None else registry
    only, skip = set(only), set(skip)
    unknown = (only | skip) - set(registry)
    if unknown:
        raise UsageError(f"unknown check id(s): {', '.join(sorted(unknown))}. "
                         f"Known: {', '.join(registry)}")
    wanted = set(registry)
    if only:
        wanted = set(only).union(*(_closure(cid) for cid in only))
    return [c for c in registry if c in wanted], skip


def _closure(cid: str, soft: bool = False) -> set[str]:
    """What ``cid`` depends on, transitively (with ``soft``: its AFTER checks too)."""
    def edges(c: str) -> tuple[str, ...]:
        mod = load(c)
        return tuple(mod.DEPENDS) + (tuple(getattr(mod, "AFTER", ())) if soft else ())

    out: set[str] = set()
    stack = list(edges(cid))
    while stack:
        dep = stack.pop()
        if dep not in out:
            out.add(dep)
            stack.extend(edges(dep))
    return out


def secrets_of(site: AnySite) -> list[str]:
    return site.secrets()


def not_for_kind(mod, kind: str) -> str | None:
    """Why a check does not apply to this target kind (None: it applies)."""
    kinds = getattr(mod, "KINDS", ALL_KINDS)
    if kind in kinds:
        return None
    why = getattr(mod, "NOT_FOR", {}).get(kind)
    return f"not for {KIND_WORDS.get(kind, kind)}" + (f": {why}" if why else "")


async def run_checks(site: AnySite, options: RunOptions, only: Iterable[str] = (),
                     skip: Iterable[str] = (), on_event: EventFn | None = None,
                     redactor: Redactor | None = None, recorder=None,
                     facts: Facts | None = None, registry: dict[str, str] | None = None
                     ) -> Report:
    """Run the checks on ``site``'s first endpoint (a trunk's secondary gateway has a check
    of its own). ``facts`` lets a re-run (after --create) start from what a run learnt."""
    ids, skipped = select(only, skip, registry)
    modules = {cid: load(cid) for cid in ids}  # import up front: no check pays for another's
    redactor = redactor or Redactor(secrets_of(site))
    facts = facts if facts is not None else Facts()
    started = time.monotonic()
    report = Report(target=site.public_view(),
                    options={"insecure": options.insecure, "timeout_s": options.timeout,
                             "nameserver": options.nameserver, "source_ip": options.source_ip})
    futures: dict[str, asyncio.Future[CheckResult]] = {
        cid: asyncio.get_running_loop().create_future() for cid in ids}

    async def one(cid: str) -> CheckResult:
        mod = modules[cid]
        if cid in skipped:
            return CheckResult(id=cid, status="skip", summary="skipped on request (--skip)")
        why_not = not_for_kind(mod, site.kind)
        if why_not:
            return CheckResult(id=cid, status="skip", summary=why_not)
        direct: dict[str, CheckResult] = {}
        for dep in mod.DEPENDS:
            if dep in futures:
                direct[dep] = await futures[dep]
        blocked = [d for d, r in direct.items() if not r.ok]
        if blocked:
            why = ", ".join(f"{d} {direct[d].status}" for d in blocked)
            return CheckResult(id=cid, status="skip", summary=f"not run: {why}")
        # AFTER: run after these and see their results, whatever they were (a soft order).
        for dep in getattr(mod, "AFTER", ()):
            if dep in futures:
                await futures[dep]
        if on_event:
            on_event(cid, "start", None)
        # A check sees every prerequisite's result, direct or not (all are done by now).
        seen = {d: futures[d].result() for d in _closure(cid, soft=True)
                if d in futures and futures[d].done()}
        ctx = CheckContext.for_site(site, options, redactor, results=seen, recorder=recorder,
                                    facts=facts)
        t0 = time.monotonic()
        try:
            # A hard cap so one stuck peer cannot hang the run; checks keep their own,
            # shorter timeouts per exchange.
            result = await asyncio.wait_for(mod.run(ctx), timeout=mod_budget(mod, options, site))
        except TimeoutError:
            result = ctx.result("error", "the check did not finish in time",
                                "re-run with -v; if it repeats, report it with the JSON output")
        except Exception as exc:  # a sipkit bug: keep the run going, say so, no secrets
            tb = redactor("".join(traceback.format_exception(exc)))
            if options.verbose:
                ctx.note("traceback", tb)
            result = ctx.result("error", redactor(f"sipkit error: {type(exc).__name__}: {exc}"),
                                "this is a bug in sipkit: please report it with the -v --json "
                                "output")
        # The runner owns the id and the timing: a check cannot misname or mistime itself.
        return result.model_copy(update={"id": cid,
                                         "duration_ms": round((time.monotonic() - t0) * 1000, 2)})

    async def wrapped(cid: str) -> None:
        result = await one(cid)
        futures[cid].set_result(result)
        if on_event:
            on_event(cid, "done", result)

    await asyncio.gather(*(wrapped(cid) for cid in ids))
    report.checks = [futures[cid].result() for cid in ids]
    # The one post-pass: the PBX's brand, brand-specific causes/fixes, the ban verdict.
    from ..pbx.apply import apply as know_the_pbx

    await know_the_pbx(report, site, facts, options)
    return report.finish((time.monotonic() - started) * 1000)


def mod_budget(mod, options: RunOptions, site: AnySite) -> float:
    budget = getattr(mod, "BUDGET", None)
    if callable(budget):
        return float(budget(options, site))
    return float(budget or max(10.0, 6 * options.timeout))
