"""The YAML files beside the site file (probes.yaml, targets.yaml, reflector.yaml, the token
file) are read with the site file's bounds and their own limits: an alias bomb, a key given
twice, deep nesting, UTF-16 and an over-size file are each a clear SettingsError (exit 2)."""

from __future__ import annotations

import codecs
from dataclasses import replace
from pathlib import Path

import pytest

from sipkit.errors import SettingsError
from sipkit.probe.config import LIMITS as PROBES
from sipkit.probe.config import ProbeConfig, load_config
from sipkit.probe import targets
from sipkit.probe.targets import TargetReader
from sipkit.reflector.config import load_config as load_reflector
from sipkit.reflector.tokens import TokenBook

CONFIG = ProbeConfig.model_validate({"modules": {"m": {"prober": "options"},
                                                 "n": {"prober": "tls"}}})
PROBES_YAML = "modules:\n  m: {prober: options, timeout: 2s}\n  n: {prober: tls}\n"


def laughs(key: str = "x", indent: str = "", levels: int = 9) -> str:
    """A billion laughs (9^9 values) under ``key``: each level nine references to the last."""
    lines = [f"{indent}{key}:", f"{indent}  a0: &a0 [{', '.join(['lol'] * 9)}]"]
    lines += [f"{indent}  a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]"
              for i in range(1, levels)]
    return "\n".join(lines) + "\n"


def deep(levels: int = 100) -> str:
    return "[" * levels + "]" * levels


def write(tmp_path: Path, data: str | bytes, name: str) -> Path:
    path = tmp_path / name
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def refused(load, path: Path) -> str:
    with pytest.raises(SettingsError) as err:
        load(path)
    assert err.value.exit_code == 2 and err.value.problems
    return str(err.value)


def read_targets(path: Path):
    return list(TargetReader(path, CONFIG))


def reflector_yaml(tmp_path: Path) -> str:
    for name in ("c.pem", "k.pem", "tokens.yaml"):
        (tmp_path / name).write_text("- name: a\n  token: t\n" if name == "tokens.yaml" else "x")
    return (f"public_ip: 192.0.2.1\ntls_cert: {tmp_path / 'c.pem'}\n"
            f"tls_key: {tmp_path / 'k.pem'}\ntokens: {tmp_path / 'tokens.yaml'}\n")


# -- probes.yaml -------------------------------------------------------------------------

def test_probes_yaml_keeps_yaml_typing(tmp_path):
    cfg = load_config(write(tmp_path, PROBES_YAML + "max_parallel_calls: 3\n", "p.yaml"))
    assert cfg.max_parallel_calls == 3 and cfg.modules["m"].timeout == 2.0


def test_probes_yaml_alias_bomb_is_refused_in_bounded_memory(tmp_path, peak_memory):
    path = write(tmp_path, PROBES_YAML + laughs(), "p.yaml")
    msg, peak = peak_memory(refused, load_config, path)
    assert "expands to more than" in msg and "aliases" in msg
    assert peak < 50 * 1024 * 1024, peak  # 9^9 values: never built


def test_probes_yaml_key_twice_names_the_key_and_both_lines(tmp_path):
    path = write(tmp_path, PROBES_YAML + "  m: {prober: dns}\n", "p.yaml")
    assert "m: is given twice (lines 2 and 4)" in refused(load_config, path)


def test_probes_yaml_deep_nesting_is_refused(tmp_path):
    path = write(tmp_path, PROBES_YAML + f"x: {deep()}\n", "p.yaml")
    assert f"nested more than {PROBES.max_depth} levels" in refused(load_config, path)


@pytest.mark.parametrize("encoding,words", [("utf-16", "UTF-16 LE text"),
                                            ("utf-16-le", "UTF-16 LE (no byte-order mark)")])
def test_probes_yaml_in_utf16_is_refused_naming_the_encoding(tmp_path, encoding, words):
    msg = refused(load_config, write(tmp_path, PROBES_YAML.encode(encoding), "p.yaml"))
    assert words in msg and "UTF-8" in msg


def test_probes_yaml_may_be_bigger_than_a_site_file_but_not_over_its_limit(tmp_path):
    big = PROBES_YAML + "# a comment line of a generated file\n" * 30_000  # ~1.1 MB
    assert load_config(write(tmp_path, big, "p.yaml")).modules.keys() == {"m", "n"}
    over = PROBES_YAML + "#" * PROBES.max_bytes + "\n"
    msg = refused(load_config, write(tmp_path, over, "p.yaml"))
    assert f"bytes; a probes file is at most {PROBES.max_bytes:,}" in msg


def test_probe_run_with_an_alias_bomb_exits_2_without_a_traceback(tmp_path, run_sipkit):
    cfg = write(tmp_path, PROBES_YAML + laughs(), "bad.yaml")
    targets = write(tmp_path, "targets:\n  - {target: 127.0.0.1, module: m}\n", "t.yaml")
    proc = run_sipkit("probe", "run", "-c", str(cfg), "-t", str(targets))
    assert proc.returncode == 2, proc.stderr
    assert "expands to more than" in proc.stderr and "Traceback" not in proc.stderr


# -- targets.yaml: each path that YAML loads ---------------------------------------------

FAST = "targets:\n  - {target: a, module: m}\n"  # then a multi-line entry: _entry loads it
SHAPES = {
    # the first entry not on one line: the composer streams the file (_composed)
    "composed": "targets:\n  - target: a\n    module: m\n",
    "entry": FAST + "  - target: b\n    module: m\n",
    # not the streaming shape (a document marker first): the file is loaded whole (_whole)
    "whole": "---\ntargets:\n  - target: a\n    module: m\n",
}


def test_the_three_loading_paths_read_good_files(tmp_path):
    for text in SHAPES.values():
        assert read_targets(write(tmp_path, text, "t.yaml"))[0] == ("a", "m", {})


@pytest.mark.parametrize("shape", list(SHAPES))
def test_targets_alias_bomb_is_refused(tmp_path, shape):
    # an entry with the bomb in its labels
    text = SHAPES[shape] + "  - target: c\n    module: m\n" + laughs("labels", "    ")
    msg = refused(read_targets, write(tmp_path, text, "t.yaml"))
    assert "expands to more than" in msg and "aliases" in msg


@pytest.mark.parametrize("shape,lines", [("composed", "lines 3 and 4"),
                                         ("entry", "lines 4 and 5"),
                                         ("whole", "lines 4 and 5")])
def test_targets_key_twice_names_the_key_and_both_file_lines(tmp_path, shape, lines):
    text = SHAPES[shape] + "    module: n\n"
    msg = refused(read_targets, write(tmp_path, text, "t.yaml"))
    assert f"module: is given twice ({lines})" in msg


@pytest.mark.parametrize("shape", list(SHAPES))
def test_targets_deep_nesting_is_refused(tmp_path, shape):
    text = SHAPES[shape] + f"    labels: {{x: {deep()}}}\n"
    assert "nested more than 16 levels" in refused(read_targets, write(tmp_path, text, "t.yaml"))


def test_targets_5000_deep_in_the_composer_is_refused_not_a_recursion_error(tmp_path):
    # the pure-Python composer recurses per level: this deep, before any bound can count
    text = SHAPES["composed"] + "    labels:\n" + "".join(
        f"      {c * 50}\n" for c in "[]" for _ in range(100))
    assert "nested too deeply" in refused(read_targets, write(tmp_path, text, "t.yaml"))


@pytest.mark.parametrize("data,words", [
    (codecs.BOM_UTF16_LE + FAST.encode("utf-16-le"), "UTF-16 LE text"),  # streamed
    (FAST.encode("utf-16-le"), "UTF-16 LE (no byte-order mark)"),  # not the shape: whole
    (FAST.replace("a,", "\xe4,").encode("latin-1"), "not UTF-8"),
])
def test_targets_in_another_encoding_are_refused_naming_it(tmp_path, data, words):
    msg = refused(read_targets, write(tmp_path, data, "t.yaml"))
    assert words in msg and "UTF-8" in msg


def test_only_what_is_loaded_whole_is_capped(tmp_path, monkeypatch):
    # the streaming path has no size limit (a fleet's file is as long as the fleet): with the
    # caps of the whole-file path lowered to 1 KB, 100 KB still stream, and the same entries
    # in a shape that is loaded whole are refused by size
    monkeypatch.setattr(targets, "WHOLE_LIMIT", 1024)
    monkeypatch.setattr(targets, "ENTRIES", replace(targets.ENTRIES, max_bytes=1024))
    entries = "".join(f"  - {{target: 10.0.{i >> 8}.{i & 255}, module: m}}\n"
                      for i in range(3000))
    streamed = write(tmp_path, "targets:\n" + entries, "t.yaml")
    assert streamed.stat().st_size > 100_000
    assert sum(1 for _ in TargetReader(streamed, CONFIG)) == 3000
    whole = write(tmp_path, "---\ntargets:\n" + entries, "w.yaml")
    assert "cannot be streamed" in refused(read_targets, whole)


def test_shared_anchors_across_many_entries_stay_within_the_budget(tmp_path):
    labels = ", ".join(f"k{i}: v{i}" for i in range(8))
    text = (f"targets:\n  - target: t0\n    module: m\n    labels: &l {{{labels}}}\n"
            + "".join(f"  - target: t{i}\n    module: m\n    labels: *l\n"
                      for i in range(1, 5000)))
    assert len(read_targets(write(tmp_path, text, "t.yaml"))) == 5000


# -- reflector.yaml and the token file ---------------------------------------------------

def test_reflector_yaml_is_bounded(tmp_path):
    good = reflector_yaml(tmp_path)
    assert load_reflector(write(tmp_path, good + "timeout: 2\n", "r.yaml")).timeout == 2
    cases = [(good + laughs(), "expands to more than"),
             (good + "public_ip: 192.0.2.2\n", "public_ip: is given twice (lines 1 and 5)"),
             (good + f"x: {deep()}\n", "nested more than 16 levels"),
             (good.encode("utf-16"), "UTF-16 LE text"),
             (good + "# c\n" * 70_000, "bytes; a reflector settings file is at most")]
    for data, words in cases:
        assert words in refused(load_reflector, write(tmp_path, data, "r.yaml")), words


def test_token_file_is_bounded_and_never_echoes_a_token(tmp_path):
    good = "- name: team-a\n  token: rfl_secret_value\n"
    assert TokenBook.load(write(tmp_path, good, "tok.yaml")).find("rfl_secret_value")
    cases = [("- name: a\n  sha256: ab\n" + laughs("- x"), "expands to more than"),
             (good + "  name: team-b\n", "name: is given twice (lines 1 and 3)"),
             (good + f"- {deep()}\n", "nested more than 16 levels"),
             (good.encode("utf-16"), "UTF-16 LE text"),
             (good + "  token: rfl_secret_value: [\n", "not valid YAML")]
    for data, words in cases:
        msg = refused(TokenBook.load, write(tmp_path, data, "tok.yaml"))
        assert words in msg and "rfl_secret_value" not in msg, (words, msg)
