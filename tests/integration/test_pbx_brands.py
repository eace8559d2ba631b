"""Know the PBX, against real Kamailio brand variants (sipkit.lab.brands): every brand is
fingerprinted, its 403 and ban verdicts carry the knowledge base's brand-specific fix, an
unknown PBX keeps the generic wording, and the ban verdict fires against a rate-banning
address and not against a plain silent one."""

from __future__ import annotations

import asyncio
import itertools

import pytest

from sipkit.checks.base import Facts, RunOptions
from sipkit.checks.runner import run_checks
from sipkit.lab.brands import BAN_AFTER, EXTRA_MODES, MODES, VARIANTS, BrandLab
from sipkit.pbx.knowledge import lookup
from sipkit.pbx.pacing import CHECK_REQUEST_BUDGET
from sipkit.settings import load_site

pytestmark = pytest.mark.lab
PASSWORD = "brand-lab-secret-9d1e"
_sources = itertools.count(160)  # each run its own source address: ban counters never mix


@pytest.fixture(scope="module")
def brands(lab, tmp_path_factory):
    blab = BrandLab(tmp_path_factory.mktemp("brands"), lab.prefix).start()
    yield blab
    blab.stop()


def site_for(ip: str, source: str):
    return load_site(None, {
        "agent_uuid": "3c90c3cc-0d44-4b50-8888-8dd25736052a", "phone_number": "+12084439178",
        "registrar_server": ip, "username_extension": "100", "pbx_password": PASSWORD,
        "allowed_ip": ip, "check.allow_private_registrar": "true",
        "check.connector_server": "198.51.100.7", "check.source_ip": source})


def run(brands, key: str, mode: str, only=("register",), timeout: float = 1.0):
    source = brands.ip(next(_sources))
    site = site_for(brands.address(key, mode), source)
    facts = Facts()
    opts = RunOptions(timeout=timeout, source_ip=source, t1=0.25)
    report = asyncio.run(run_checks(site, opts, only=only, facts=facts))
    return report, facts


KNOWN = [v for v in VARIANTS if v.expected_brand is not None]


@pytest.mark.parametrize("variant", KNOWN, ids=lambda v: v.key)
def test_fingerprint_and_forbidden(brands, variant):
    report, _ = run(brands, variant.key, "forbid")
    assert report.pbx is not None and report.pbx["brand"] == variant.expected_brand, report.pbx
    if variant.product:
        assert report.pbx["product"] == variant.product, report.pbx
    assert report.pbx["evidence"]
    assert report.pbx["front_end"] == variant.front_end, report.pbx
    reg = report.get("register")
    assert reg.status == "fail" and reg.details["final_status"] == 403, reg
    entry = lookup(variant.expected_brand, "register_forbidden", variant.product)
    if entry is None:  # no brand text: the generic wording stays
        assert "pbx_knowledge" not in reg.details
        assert "check username_extension and pbx_password" in reg.hint
    else:
        know = reg.details["pbx_knowledge"]
        assert know["symptom"] == "register_forbidden" and know["source"]["title"]
        assert reg.hint == entry.filled({"ext": "100", "auth_user": "100",
                                         "connector": "198.51.100.7",
                                         "source": reg.details.get("seen_as", "")})[1] \
            or "198.51.100.7" in reg.hint or "{connector}" not in entry.fix
        assert reg.details["pbx_knowledge"]["generic_hint"].startswith("check username")
    assert report.get(BAN_ID) is None
    assert PASSWORD not in report.model_dump_json()


BAN_ID = "ban"


@pytest.mark.parametrize("variant", KNOWN, ids=lambda v: v.key)
def test_ban_verdict_is_brand_specific(brands, variant):
    report, _ = run(brands, variant.key, "ban")
    ban = report.get(BAN_ID)
    assert ban is not None and ban.status == "fail", [c.summary for c in report.checks]
    assert f"banned by the PBX's intrusion protection after {BAN_AFTER} requests" in ban.summary
    assert ban.details["after_requests"] == BAN_AFTER and ban.details["mode"] == "silent"
    assert ban.details["confirmed_by_options"] is True  # one OPTIONS more, unanswered too
    # the register check's own verdict stays a fail; only its cause and fix get specific
    reg = report.get("register")
    assert reg.status == "fail"
    fp_brand = report.pbx["brand"]
    entry = lookup(fp_brand, "ban", report.pbx.get("product")) or (
        lookup(report.pbx["front_end"], "ban") if report.pbx.get("front_end") else None)
    if entry is None:
        assert "wait for the ban to expire" in ban.hint
    else:
        assert ban.details["pbx_knowledge"]["source"]["title"] == entry.source_title
        assert "198.51.100.7" in ban.hint or "{connector}" not in entry.fix
        assert reg.details["pbx_knowledge"]["symptom"] == "ban"
        assert "see the ban verdict" in reg.summary and reg.hint == ban.hint


SYMPTOM_MODE = {"register_forbidden": "forbid", "ban": "ban", "register_silent": "regsilent",
                "auth_rejected": "reauth", "register_not_found": "notfound"}


def _lab_path(entry):
    """The (variant, mode) of the brand lab that produces this entry's brand and symptom."""
    mode = SYMPTOM_MODE[entry.symptom]
    for v in KNOWN:
        if v.expected_brand == entry.brand and (entry.product is None or v.product == entry.product) \
                and (mode in MODES or (v.key, mode) in EXTRA_MODES):
            return v, mode
    return None


def _entries():
    from sipkit.pbx.knowledge import load

    return load()[0]


def test_every_knowledge_base_entry_has_a_lab_path():
    missing = [(e.brand, e.product, e.symptom) for e in _entries() if _lab_path(e) is None]
    assert not missing, f"knowledge-base entries no lab variant exercises: {missing}"


@pytest.mark.parametrize("entry", _entries(),
                         ids=lambda e: f"{e.brand}-{e.product or 'all'}-{e.symptom}")
def test_every_knowledge_base_path_runs(brands, entry):
    variant, mode = _lab_path(entry)
    report, facts = run(brands, variant.key, mode)
    assert report.pbx["brand"] == entry.brand, report.pbx
    target = report.get(BAN_ID) if entry.symptom == "ban" else report.get("register")
    assert target is not None and target.status == "fail", [c.summary for c in report.checks]
    know = target.details.get("pbx_knowledge")
    assert know is not None, target
    assert (know["brand"], know["product"], know["symptom"]) == (entry.brand, entry.product,
                                                                  entry.symptom)
    assert know["source"]["title"] == entry.source_title
    ban = report.get(BAN_ID)
    values = {"ext": "100", "auth_user": "100", "connector": "198.51.100.7",
              "source": facts.requests.sent[0].local,
              "after": ban.details["after_requests"] if ban else None}
    cause, fix = entry.filled(values)
    assert target.hint == fix and cause in target.summary
    assert "{" not in target.hint, target.hint  # every placeholder filled
    # a REGISTER-only silence is not a ban: the confirming OPTIONS was answered
    assert (ban is None) == (entry.symptom != "ban")


def test_unknown_pbx_keeps_generic_wording(brands):
    report, _ = run(brands, "unknown", "forbid")
    assert report.pbx["brand"] is None and report.pbx["label"] == "unknown PBX"
    reg = report.get("register")
    assert reg.status == "fail" and "pbx_knowledge" not in reg.details
    assert reg.hint.startswith("check username_extension and pbx_password")
    banned, _ = run(brands, "unknown", "ban")
    ban = banned.get(BAN_ID)
    assert ban is not None and "wait for the ban to expire" in ban.hint
    assert "pbx_knowledge" not in ban.details


def test_plain_silent_port_is_not_a_ban(brands):
    report, facts = run(brands, "silent", "silent", only=("transport",))
    assert report.get("transport").status == "fail"
    assert report.get(BAN_ID) is None
    assert report.pbx is None
    assert facts.requests.count() >= 1 and not facts.requests.answers()


def test_refusing_ban_and_request_budget(brands):
    """A clean forbid run stays within the documented request budget."""
    report, facts = run(brands, "freepbx", "forbid", only=("register",))
    sent = report.pbx["requests_sent"]
    assert sent == facts.requests.count() <= CHECK_REQUEST_BUDGET
    assert "Authorization" not in repr(facts.requests.sent)  # request bytes are never kept


def _site_file(tmp_path, ip: str, source: str):
    import yaml

    path = tmp_path / "site.yaml"
    path.write_text(yaml.safe_dump({
        "agent_uuid": "3c90c3cc-0d44-4b50-8888-8dd25736052a", "phone_number": "+12084439178",
        "registrar_server": ip, "username_extension": "100", "pbx_password": PASSWORD,
        "allowed_ip": ip, "check": {"allow_private_registrar": True, "source_ip": source,
                                    "connector_server": "198.51.100.7"}}))
    return path


def test_cli_check_shows_the_pbx_in_json_and_text(brands, tmp_path, run_sipkit):
    from tests.conftest import report_of

    site = _site_file(tmp_path, brands.address("yeastar", "forbid"), brands.ip(next(_sources)))
    proc = run_sipkit("check", "-c", str(site), "--only", "register", "--timeout", "1", "--json")
    rep = report_of(proc)
    assert proc.returncode == 1
    assert rep["pbx"]["brand"] == "yeastar" and rep["pbx"]["product"] == "P-Series"
    reg = next(c for c in rep["checks"] if c["id"] == "register")
    assert "Allow Remote Registration" in reg["hint"] and reg["status"] == "fail"
    text = run_sipkit("check", "-c", str(site), "--only", "register", "--timeout", "1")
    assert "PBX: Yeastar P-Series 37.12.0.48" in text.stdout
    assert PASSWORD not in proc.stdout + text.stdout + proc.stderr + text.stderr


def test_cli_pbx_config_auto_uses_the_fingerprint(brands, tmp_path, run_sipkit):
    import json

    site = _site_file(tmp_path, brands.address("3cx", "forbid"), brands.ip(next(_sources)))
    proc = run_sipkit("pbx-config", "-c", str(site), "--pbx", "auto", "--json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["brand"] == "3cx" and out["fingerprint"]["brand"] == "3cx"
    assert any("Disallow registrations from outside" in s for s in out["steps"])
    assert PASSWORD not in proc.stdout
    bad = run_sipkit("pbx-config", "-c", str(site), "--pbx", "3cx", "--connector-ip", "nope")
    assert bad.returncode == 2 and "--connector-ip" in bad.stderr and "Traceback" not in bad.stderr
    unknown = _site_file(tmp_path, brands.address("unknown", "forbid"), brands.ip(next(_sources)))
    proc = run_sipkit("pbx-config", "-c", str(unknown), "--pbx", "auto")
    assert proc.returncode == 2 and "give --pbx BRAND" in proc.stderr


def test_refusing_ban(brands):
    """Answered 200, then 403 to the same kind of request: a ban by refusal."""
    from sipkit.lab.brands import REFUSE_AFTER

    report, _ = run(brands, "unknown", "refuse")
    ban = report.get(BAN_ID)
    assert ban is not None, [c.summary for c in report.checks]
    assert ban.details["mode"] == "refusing" and ban.details["after_requests"] == REFUSE_AFTER
    assert "started refusing (403" in ban.summary
    assert report.get("transport").status in ("pass", "warn")  # its verdict is unchanged


def test_request_budget_of_a_full_check(lab, run_sipkit):
    """A whole `sipkit check` of the lab PBX (every check, calls included) sends at most
    CHECK_REQUEST_BUDGET requests to the PBX: the number the README documents."""
    from tests.conftest import report_of

    env = lab.env()
    proc = run_sipkit("check", "-c", str(lab.site_file), "--json", env=env, timeout=120)
    rep = report_of(proc)
    sent = rep["pbx"]["requests_sent"]
    print(f"requests to the PBX in one full check: {sent}")
    assert 0 < sent <= CHECK_REQUEST_BUDGET, rep["pbx"]
    assert not any(c["id"] == BAN_ID for c in rep["checks"])
