"""`sipkit normalize`: output, --explain, --json, --config, and exit 2 on bad input.

Most cases run the real entry point in-process (``sipkit.cli.main.main``: same code path as
the console script, minus the interpreter start); two run it as a subprocess, as a user does.
"""

from __future__ import annotations

import json

import pytest
import yaml

from sipkit.cli.main import main

RULE = ["--default-prefix", "0", "--condition-length", "10", "--condition-prefix", "5"]


def run(capsys, *args):
    rc = main(["normalize", *args])
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_one_result_per_line(capsys):
    rc, out, err = run(capsys, *RULE, "5321234567", "(532) 123-45-67", "212 443 91 78",
                       "+905321234567")
    assert rc == 0 and err == ""
    assert out.splitlines() == ["05321234567", "05321234567", "2124439178", "+905321234567"]


def test_explain_shows_each_condition(capsys):
    rc, out, _ = run(capsys, *RULE, "--explain", "5321234567", "4321234567")
    assert rc == 0
    assert "rule: put 0 in front of a number without + when it has 10 digits and it starts " \
           "with 5" in out
    assert "5321234567 → 05321234567  (changed)" in out
    assert "  - 10 digits: condition_length 10 holds" in out
    assert "  - does not start with 5: condition_prefix 5 fails" in out


def test_explain_rule_without_condition_applies_to_every_number(capsys):
    rc, out, err = run(capsys, "--default-prefix", "0", "--explain", "123")
    assert rc == 0 and "always (no condition set)" in out and "every number" in out
    assert "applies again to its own result" in err  # the note goes to stderr


def test_json(capsys):
    rc, out, _ = run(capsys, "--default-prefix", "0", "--condition-length", "4",
                     "--condition-prefix", "12345", "--json", "1234")
    data = json.loads(out)
    assert rc == 0 and data["rule"]["condition_prefix"] == "12345"
    assert data["results"][0] == {"original": "1234", "cleaned": "1234", "result": "1234",
                                  "applied": False, "matched": False,
                                  "reasons": data["results"][0]["reasons"]}
    assert "nothing can match" in data["problems"][0]


def test_problem_is_printed_to_stderr(capsys):
    rc, out, err = run(capsys, "--condition-length", "10", "5321234567")
    assert rc == 0 and out.strip() == "5321234567" and "default_prefix is empty" in err


@pytest.mark.parametrize("args,named", [
    (["--condition-length", "ten", "1"], "--condition-length"),
    (["--condition-prefix", "5a", "1"], "--condition-prefix"),
    (["--default-prefix", "0-", "1"], "--default-prefix"),
    (["--default-prefix", "0", "12ab"], "NUMBER"),
    (["1"], "--config"),  # no rule at all
])
def test_bad_input_exit_2_naming_it(capsys, args, named):
    rc, out, err = run(capsys, *args)
    assert rc == 2 and named in err and "Traceback" not in err + out


def test_no_number_is_a_usage_error(capsys):
    rc, _, err = run(capsys, *RULE)
    assert rc == 2 and "NUMBER" in err


def site_file(tmp_path, normalizer=None, suffix=".yaml"):
    data = {"agent_uuid": "3c90c3cc-0d44-4b50-8888-8dd25736052a",
            "phone_number": "+902124439178", "registrar_server": "pbx.example.com",
            "username_extension": "100", "pbx_password": "${SIPKIT_NORMALIZE_UNSET_PW}",
            "allowed_ip": "198.51.100.7"}
    if normalizer is not None:
        data["normalizer"] = normalizer
    p = tmp_path / f"site{suffix}"
    p.write_text(json.dumps(data) if suffix == ".json" else yaml.safe_dump(data))
    return p


def test_config_reads_only_the_normalizer(capsys, tmp_path):
    # the password variable is not set: normalize still works, it needs only the rule;
    # a quoted "05" in YAML keeps its leading zero
    p = site_file(tmp_path, {"default_prefix": "05", "condition_length": "7"})
    rc, out, _ = run(capsys, "-c", str(p), "1234567")
    assert rc == 0 and out.strip() == "051234567"
    p = site_file(tmp_path, {"default_prefix": "0", "condition_length": 10}, ".json")
    rc, out, _ = run(capsys, "-c", str(p), "5321234567")
    assert rc == 0 and out.strip() == "05321234567"


def test_config_without_normalizer_passes_numbers_unchanged(capsys, tmp_path):
    rc, out, err = run(capsys, "-c", str(site_file(tmp_path)), "5321234567")
    assert rc == 0 and out.strip() == "5321234567" and "no normalizer" in err


@pytest.mark.parametrize("content,named", [
    ({"normalizer": {"condition_length": "x"}}, "normalizer.condition_length"),
    ({"normalizer": {"prefix": "0"}}, "normalizer.prefix"),
    ({"normalizer": "0"}, "must be a mapping"),
])
def test_config_with_bad_normalizer_exit_2(capsys, tmp_path, content, named):
    p = tmp_path / "bad.yaml"
    p.write_text(yaml.safe_dump(content))
    rc, _, err = run(capsys, "-c", str(p), "1")
    assert rc == 2 and named in err


def test_config_unreadable_or_not_yaml_exit_2(capsys, tmp_path):
    rc, _, err = run(capsys, "-c", str(tmp_path / "missing.yaml"), "1")
    assert rc == 2 and "--config" in err
    p = tmp_path / "broken.yaml"
    p.write_text("normalizer: [\n")
    rc, _, err = run(capsys, "-c", str(p), "1")
    assert rc == 2 and "not valid YAML" in err


def test_config_and_options_together_exit_2(capsys, tmp_path):
    rc, _, err = run(capsys, "-c", str(site_file(tmp_path)), "--default-prefix", "0", "1")
    assert rc == 2 and "--config" in err and "--default-prefix" in err


def test_subprocess_as_a_user_runs_it(run_sipkit):
    proc = run_sipkit("normalize", *RULE, "--explain", "532 123 45 67")
    assert proc.returncode == 0 and "→ 05321234567" in proc.stdout
    proc = run_sipkit("normalize", "--condition-length", "0", "1")
    assert proc.returncode == 2 and "--condition-length" in proc.stderr
    assert "Traceback" not in proc.stderr
