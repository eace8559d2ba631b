"""Hostile site files: each a clear SettingsError (exit 2) naming the problem, in bounded
memory, never another exception; and a seeded corpus of mangled files held to the same."""

from __future__ import annotations

import codecs
import os
import random
from pathlib import Path

import pytest

from sipkit.errors import SettingsError
from sipkit.settings import Site, load_site
from sipkit.sitefile import MAX_FIELD_CHARS
from tests.fuzzing import figures

ROOT = Path(__file__).resolve().parents[2]
GOOD = """agent_uuid: 3c90c3cc-0d44-4b50-8888-8dd25736052a
phone_number: "+12084439178"
registrar_server: pbx.example.com
username_extension: "100"
pbx_password: s3cret-pw
allowed_ip: 203.0.113.10
setup_mode: both
connection_type: udp
port: 5060
normalizer: {default_prefix: "0", condition_length: "10", condition_prefix: "5"}
check:
  connector_server: auto
  outbound_test_number: "5321234567"
"""


def load_text(tmp_path: Path, data: bytes | str, name: str = "site.yaml"):
    path = tmp_path / name
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return load_site(path, env={})


def problem(tmp_path, data, name="site.yaml") -> str:
    with pytest.raises(SettingsError) as err:
        load_text(tmp_path, data, name)
    assert err.value.exit_code == 2
    return str(err.value)


def test_the_good_file_loads(tmp_path):
    assert isinstance(load_text(tmp_path, GOOD), Site)


def _laughs(first: str, level: str, width: int = 9, levels: int = 9) -> str:
    """``first`` anchored as a0, then each level ``width`` references to the one before."""
    lines = [f"a0: &a0 {first}"]
    for i in range(1, levels):
        lines.append(f"a{i}: &a{i} " + level.format(", ".join([f"*a{i - 1}"] * width)))
    return GOOD + "\n".join(lines) + "\n"


@pytest.mark.parametrize("text", [
    _laughs('["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]', "[{}]"),
    _laughs("{k0: 1, k1: 1, k2: 1, k3: 1}", "{{<<: [{}]}}", width=8, levels=8),
], ids=["aliases", "merge-keys"])
def test_billion_laughs_is_refused_in_bounded_memory(tmp_path, text, peak_memory):
    msg, peak = peak_memory(problem, tmp_path, text)
    assert "expands to more than" in msg and "aliases" in msg
    assert peak < 50 * 1024 * 1024, peak  # the expansion is 9^9 values: never built


def test_a_few_aliases_are_fine(tmp_path):
    text = GOOD.replace("allowed_ip: 203.0.113.10", "allowed_ip: &ip 203.0.113.10")
    assert load_text(tmp_path, text).allowed_ip == "203.0.113.10"


@pytest.mark.parametrize("text,key,lines", [
    (GOOD + "pbx_password: other\n", "pbx_password", "lines 5 and 14"),
    (GOOD + "  outbound_test_number: '1'\n", "outbound_test_number", "lines 13 and 14"),
    ("port: 1\nport: 1\n", "port", "lines 1 and 2"),
])
def test_a_key_given_twice_is_refused_naming_both_lines(tmp_path, text, key, lines):
    msg = problem(tmp_path, text)
    assert f"{key}: is given twice ({lines})" in msg


def test_a_json_key_given_twice_is_refused_naming_both_lines(tmp_path):
    msg = problem(tmp_path, '{"port": "5060",\n"registrar_server": "x",\n"port": "5061"}',
                  "site.json")
    assert "port: is given twice (lines 1 and 3)" in msg


@pytest.mark.parametrize("data,words", [
    (GOOD.encode("utf-16"), "UTF-16 LE"),
    (GOOD.encode("utf-16-be"), "UTF-16 BE (no byte-order mark)"),
    (GOOD.encode("utf-16-le"), "UTF-16 LE (no byte-order mark)"),
    (codecs.BOM_UTF16_BE + GOOD.encode("utf-16-be"), "UTF-16 BE"),
    (GOOD.encode("utf-32"), "UTF-32 LE"),
    (bytes(range(256)) * 4, "binary data"),
    (GOOD.replace("both", "b\xf6th").encode("latin-1"), "not UTF-8: byte 0xf6 on line 7"),
])
def test_binary_and_utf16_are_refused_naming_the_encoding(tmp_path, data, words):
    msg = problem(tmp_path, data)
    assert words in msg and "UTF-8" in msg


def test_a_utf8_bom_is_fine(tmp_path):
    assert isinstance(load_text(tmp_path, codecs.BOM_UTF8 + GOOD.encode()), Site)


@pytest.mark.parametrize("name,text", [
    ("site.yaml", "x: " + "[" * 5000 + "]" * 5000),
    ("site.yaml", "\n".join(" " * i + f"k{i}:" for i in range(3000))),
    ("site.json", '{"x": ' + "[" * 5000 + "]" * 5000 + "}"),
    ("site.yaml", "\n".join(["x:"] + ["  " * i + "- " for i in range(1, 40)])),
])
def test_deep_nesting_is_refused(tmp_path, name, text):
    # wrapped to short lines, so it is the depth (not the line length) that is refused
    text = "\n".join(text[i:i + 60] for i in range(0, len(text), 60)) if "\n" not in text \
        else text
    msg = problem(tmp_path, text, name)
    assert "nested" in msg or "deep" in msg or "not valid" in msg


def test_5000_deep_nesting_is_refused_as_too_deep(tmp_path):
    text = "[" * 5000 + "]" * 5000
    msg = problem(tmp_path, "\n".join(text[i:i + 60] for i in range(0, len(text), 60)))
    assert "nested too deeply" in msg


@pytest.mark.parametrize("text,field", [
    (GOOD.replace("s3cret-pw", "x" * 3_000_000), "pbx_password"),
    (GOOD + "  ca_file: |\n" + ("    " + "y" * 1000 + "\n") * 200, "check.ca_file"),
    (GOOD.replace("pbx.example.com", "a" * (MAX_FIELD_CHARS + 1)), "registrar_server"),
])
def test_a_field_of_megabytes_is_refused_naming_the_field(tmp_path, text, field):
    msg = problem(tmp_path, text)
    assert f"{field}:" in msg and f"{MAX_FIELD_CHARS:,}" in msg
    assert "xxxxxxxxxx" not in msg  # never echoes the value (it may be a password)


def test_an_environment_value_of_megabytes_is_refused_too(tmp_path):
    path = tmp_path / "site.yaml"
    path.write_text(GOOD.replace("s3cret-pw", "${PW}"))
    with pytest.raises(SettingsError) as err:
        load_site(path, env={"PW": "p" * 1_000_000})
    assert "pbx_password:" in str(err.value) and "characters long" in str(err.value)


def test_a_huge_file_is_refused_by_size(tmp_path):
    msg = problem(tmp_path, GOOD + ("# comment\n" * 40_000))
    assert "bytes; a site file is at most" in msg


# -- a seeded corpus of mangled files ------------------------------------------------------

def _mangle(rng: random.Random, text: str) -> bytes:
    data = bytearray(text.encode())
    for _ in range(rng.randint(1, 6)):
        how = rng.randrange(9)
        pos = rng.randrange(len(data) + 1)
        if how == 0 and data:
            data[min(pos, len(data) - 1)] = rng.randrange(256)
        elif how == 1:
            del data[pos:pos + rng.randint(1, 40)]
        elif how == 2:
            data[pos:pos] = rng.choice([b"&a ", b"*a", b"<<: *a\n", b"\t", b": ", b"- ", b"[",
                                        b"{", b"!!binary ", b"!!python/object:os.system ",
                                        b"\x00", b"\xef\xbb\xbf", "²".encode(), b"'", b'"',
                                        b"%YAML 1.1\n", b"---\n", b"? ", b"|\n", b"${X}"])
        elif how == 3:  # a line given twice
            lines = bytes(data).split(b"\n")
            i = rng.randrange(len(lines))
            lines.insert(rng.randrange(len(lines) + 1), lines[i])
            data = bytearray(b"\n".join(lines))
        elif how == 4:
            data[pos:pos] = b"x" * rng.choice([10, 5000, 300_000])
        elif how == 5:
            data[pos:pos] = b"[" * rng.randint(10, 3000)
        elif how == 6:
            data = bytearray(bytes(data).decode("utf-8", "replace").encode(
                rng.choice(["utf-16", "utf-16-le", "utf-32", "latin-1", "utf-8"]), "replace"))
        elif how == 7:
            data[pos:pos] = b"\nq: &q [" + b"*q, " * 3 + b"]\n"  # a recursive alias
        else:
            data = data[:pos]
    return bytes(data)


CORPUS = int(os.environ.get("SIPKIT_FUZZ_SITE_FILES", "400"))


def test_mangled_site_files_load_or_fail_cleanly(tmp_path):
    outcomes = {"loaded": 0, "refused": 0}
    for seed in range(CORPUS):
        rng = random.Random(seed)
        data = _mangle(rng, GOOD)
        try:
            load_text(tmp_path, data)
            outcomes["loaded"] += 1
        except SettingsError as exc:
            assert exc.problems and all(p.field and p.fix for p in exc.problems), seed
            assert "s3cret-pw" not in str(exc), seed
            outcomes["refused"] += 1
    figures("site files", files=CORPUS, errors=0, **outcomes)
    assert outcomes["refused"] > CORPUS // 4 and outcomes["loaded"] > 0, outcomes


@pytest.mark.parametrize("command", [["connector", "create"], ["trunk", "create"],
                                     ["normalize", "1"]], ids=["connector", "trunk", "normalize"])
@pytest.mark.parametrize("text", [
    _laughs("{k0: 1, k1: 1, k2: 1, k3: 1}", "{{<<: [{}]}}", width=8, levels=8),
    "\n".join("[" * 60 for _ in range(80)) + "\n" + "\n".join("]" * 60 for _ in range(80)),
], ids=["merge-laughs", "deep"])
def test_other_readers_of_site_files_refuse_hostile_ones_with_exit_2(tmp_path, monkeypatch,
                                                                     capsys, command, text):
    # `create` re-reads a refused file for its kind, `normalize` reads its normalizer: both
    # through the same bounded reader
    from sipkit.cli.main import main

    for var in ("SIPKIT_API_URL", "SIPKIT_API_TOKEN", "SIPKIT_API_TOKEN_FILE"):
        monkeypatch.delenv(var, raising=False)
    path = tmp_path / "site.yaml"
    path.write_text(text)
    head, tail = (command, []) if command[0] != "normalize" else (command[:1], command[1:])
    assert main([*head, "-c", str(path), *tail]) == 2
    err = capsys.readouterr().err
    assert "invalid settings" in err and "internal error" not in err
