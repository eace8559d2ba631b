"""The check runner: selection, dependency skips, a crashing check is contained."""

from __future__ import annotations

import asyncio
import sys
import types

import pytest

from sipkit import checks
from sipkit.checks import runner
from sipkit.checks.base import RunOptions
from sipkit.errors import UsageError
from sipkit.settings import Site

SITE = Site(agent_uuid="3c90c3cc-0d44-4b50-8888-8dd25736052a", phone_number="+12084439178",
            registrar_server="pbx.example.com", username_extension="100",
            pbx_password="Sup3r-secret", allowed_ip="198.51.100.7")


def _module(name, depends, body):
    mod = types.ModuleType(f"sipkit.checks.{name}")
    mod.ID, mod.TITLE, mod.DEPENDS = name, name, depends
    mod.run = body
    sys.modules[mod.__name__] = mod
    return mod


@pytest.fixture
def fake_registry(monkeypatch):
    def ok(cid):
        async def run(ctx):
            return ctx.result("pass", "fine")
        return run

    async def bad(ctx):
        return ctx.result("fail", "broken", "fix b")

    async def boom(ctx):
        raise RuntimeError("kaboom with Sup3r-secret inside")

    _module("fa", (), ok("fa"))
    _module("fb", ("fa",), bad)
    _module("fc", ("fb",), ok("fc"))
    _module("fd", (), boom)
    monkeypatch.setattr(checks, "REGISTRY", {"fa": "fa", "fb": "fb", "fc": "fc", "fd": "fd"})
    monkeypatch.setattr(runner, "REGISTRY", checks.REGISTRY)
    yield
    for n in ("fa", "fb", "fc", "fd"):
        sys.modules.pop(f"sipkit.checks.{n}", None)


def test_dependency_failure_skips_dependents(fake_registry):
    rep = asyncio.run(runner.run_checks(SITE, RunOptions()))
    by = {c.id: c for c in rep.checks}
    assert by["fc"].status == "skip" and "fb fail" in by["fc"].summary
    assert rep.exit_code() == 3  # fd errored: sipkit broke


def test_crash_is_contained_and_redacted(fake_registry):
    rep = asyncio.run(runner.run_checks(SITE, RunOptions(verbose=1), only=["fd"]))
    (fd,) = rep.checks
    assert fd.status == "error" and "kaboom" in fd.summary
    assert "Sup3r-secret" not in rep.model_dump_json()


def test_only_pulls_prerequisites_and_skip_marks(fake_registry):
    ids, _ = runner.select(only=["fc"])
    assert ids == ["fa", "fb", "fc"]
    rep = asyncio.run(runner.run_checks(SITE, RunOptions(), skip=["fa"], only=["fb"]))
    by = {c.id: c for c in rep.checks}
    assert by["fa"].status == "skip" and "--skip" in by["fa"].summary
    assert by["fb"].status == "skip" and "fa skip" in by["fb"].summary


def test_unknown_ids_are_usage_errors(fake_registry):
    with pytest.raises(UsageError, match="nope"):
        runner.select(only=["nope"])


def test_the_runner_owns_id_and_timing(monkeypatch):
    """A check cannot misname or mistime itself: the runner sets both."""
    async def liar(ctx):
        res = ctx.result("pass", "fine")
        return res.model_copy(update={"id": "someone_else", "duration_ms": -5})

    _module("fe", (), liar)
    monkeypatch.setattr(checks, "REGISTRY", {"fe": "fe"})
    monkeypatch.setattr(runner, "REGISTRY", checks.REGISTRY)
    try:
        (fe,) = asyncio.run(runner.run_checks(SITE, RunOptions())).checks
    finally:
        sys.modules.pop("sipkit.checks.fe", None)
    assert fe.id == "fe" and fe.duration_ms >= 0


def test_a_trunk_never_gets_connector_checks():
    """The connector-only checks are skipped with the reason for a trunk, never run."""
    from sipkit.settings import TrunkSite

    trunk = TrunkSite(kind="sip_trunk", name="t", phone_number="+12084439178",
                      gateway="192.0.2.1", username="u", password="pw-Secret-1")
    rep = asyncio.run(runner.run_checks(trunk, RunOptions(timeout=0.2), only=["config"],
                                        skip=[]))
    assert [c.id for c in rep.checks] == ["config"]
    ids, _ = runner.select()
    for cid in ("allowed_ip", "call_inbound", "normalizer", "register"):
        assert runner.not_for_kind(checks.load(cid), "sip_trunk"), cid
        assert runner.not_for_kind(checks.load(cid), "pbx_extension") is None
    assert "allowed_ip" in runner.not_for_kind(checks.load("allowed_ip"), "sip_trunk")
