"""The hostile-peer fuzzer, CI-sized: a few hundred seeded registrars that answer
plausible-but-odd SIP (tests/hostile.py), each run of the register check held to the
invariants of issue 11. `make fuzz` runs thousands (SIPKIT_FUZZ_SEEDS) and prints the figures
recorded in docs/reliability.md.

- no check ends in ``error`` (the CLI never exits 3);
- at most one authenticated REGISTER, unless after stale=true, a 423 or a 2xx that proved
  the password;
- the test binding is removed whenever one was made (the peer saw sipkit ask);
- no secret (the password, the digest responses and cnonces sipkit sent) in the JSON, the
  human report, the JUnit file or the pcap.
"""

from __future__ import annotations

import asyncio
import json
import os
import random

import yaml

from tests.conftest import _prefix
from tests.fuzzing import PASSWORD, figures, leaks, run_seeds, site_data
from tests.hostile import HostileRegistrar, Plan

SEEDS = int(os.environ.get("SIPKIT_FUZZ_SEEDS", "150"))  # x2 transports: 300 runs
FIRST_SEED = int(os.environ.get("SIPKIT_FUZZ_FIRST_SEED", "0"))
CLI_SEEDS = int(os.environ.get("SIPKIT_FUZZ_CLI_SEEDS", "6"))
IP = f"{_prefix()}.77"  # this session's loopback block; ports are ephemeral


def test_register_check_holds_against_hostile_registrars(tmp_path):
    seeds = range(FIRST_SEED, FIRST_SEED + SEEDS)
    outcomes = asyncio.run(run_seeds(seeds, ("udp", "tcp"), IP, pcap_dir=tmp_path))
    bad = [(o.seed, o.transport, o.problems, o.result.summary[:120]) for o in outcomes
           if o.problems]
    statuses = {s: sum(1 for o in outcomes if o.result.status == s)
                for s in ("pass", "warn", "fail", "skip", "error")}
    figures("register in-process", seeds=SEEDS, runs=len(outcomes),
             messages=sum(o.messages for o in outcomes), problems=len(bad), **statuses)
    assert len(outcomes) == 2 * SEEDS
    assert not bad, f"{len(bad)} of {len(outcomes)} runs broke an invariant: {bad[:8]}"
    # The fuzzer reaches the verdicts it is meant to: not all one kind.
    assert statuses["pass"] and statuses["warn"] and statuses["fail"], statuses


def _cli_seeds(n: int) -> list[int]:
    """Seeds whose registrar grants a binding and misbehaves around it (reflects digest
    values, breaks after the 200, garbles Vias), plus random ones: the CLI's share."""
    picked, seed = [], 10_000
    while len(picked) < n // 2:
        plan = Plan.draw(random.Random(seed))
        if (plan.first == "challenge" and plan.auth[0] == "ok"
                and (plan.reflect or plan.via_extra or plan.brk != "none")):
            picked.append(seed)
        seed += 1
    return picked + list(range(20_000, 20_000 + n - len(picked)))


def test_cli_never_exits_3_nor_leaks_against_hostile_registrars(run_sipkit, tmp_path):
    results = []
    for seed in _cli_seeds(CLI_SEEDS):
        with HostileRegistrar(seed, IP, "udp") as peer:
            site = tmp_path / f"site-{seed}.yaml"
            site.write_text(yaml.safe_dump(site_data(IP, peer.address[1])))
            pcap, junit = tmp_path / f"{seed}.pcap", tmp_path / f"{seed}.xml"
            proc = run_sipkit("check", "-c", str(site), "--json", "--timeout", "1.5",
                              "--skip", "call_inbound,call_outbound", "--pcap", str(pcap),
                              "--junit", str(junit), "-vv", timeout=120)
        assert proc.returncode in (0, 1), (seed, proc.returncode, proc.stdout[-2000:],
                                           proc.stderr[-2000:])
        report = json.loads(proc.stdout)
        errors = [c["id"] for c in report["checks"] if c["status"] == "error"]
        assert not errors, (seed, errors)
        assert not peer.books.violations(), (seed, peer.books.violations())
        texts = [proc.stdout, proc.stderr, junit.read_text(), pcap.read_bytes()]
        assert not leaks(texts, {PASSWORD} | peer.books.digest_values), seed
        results.append(proc.returncode)
    figures("register through the CLI", seeds=len(results),
             exit_1=results.count(1), exit_0=results.count(0))
    assert len(results) == CLI_SEEDS


def test_the_hostile_registrar_is_hostile():
    """The plans reach every mutation family the issue lists, over the CI seeds."""
    plans = [Plan.draw(random.Random(s)) for s in range(FIRST_SEED, FIRST_SEED + SEEDS)]
    assert {p.first for p in plans} >= {"challenge", "bad_challenge", "ok_without_auth", "503"}
    steps = {s for p in plans for s in p.auth}
    assert steps >= {"ok", "stale_ok", "stale_bad", "423", "401_no_challenge", "403_reflect"}
    assert {p.via_top for p in plans} >= {"bare_rport", "rport_unicode", "received_text"}
    assert any(p.via_extra for p in plans) and any(p.duplicate for p in plans)
    assert any(p.overlong for p in plans) and any(p.reflect for p in plans)
    assert {p.contact_expires for p in plans} >= {"²", "⁶⁰"}
    assert {p.brk for p in plans} >= {"close", "drop_next", "silent_after"}

