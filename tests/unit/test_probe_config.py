"""probes.yaml (typed sections, Prometheus durations, the first format migrated) and the
streaming targets reader, checked against YAML itself."""

from __future__ import annotations

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from sipkit.errors import SettingsError
from sipkit.probe.config import ProbeConfig, load_config, parse_duration, split_target
from sipkit.probe.targets import TargetReader, _fast_line
from tests.conftest import ROOT


@pytest.mark.parametrize("text,seconds", [("5s", 5), ("1m30s", 90), ("500ms", 0.5),
                                          ("2h", 7200), ("1d", 86400), ("0", 0), (3, 3),
                                          ("2.5", 2.5), (0.25, 0.25), ("1s500ms", 1.5)])
def test_durations_the_prometheus_way(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["５s", "1s1m", "nan", "inf", "-1", "5 s", "", "1m1m", True,
                                 None, [1], float("nan"), -3])
def test_bad_durations_are_refused(bad):
    with pytest.raises(ValueError):
        parse_duration(bad)


def test_the_shipped_probes_yaml_loads():
    config = load_config(ROOT / "probes" / "probes.yaml")
    assert config.modules["sip_register_100"].section.min_interval == 300
    assert {m.prober for m in config.modules.values()} >= {"options", "register", "tls", "dns",
                                                           "call"}


def test_first_format_still_loads_into_sections():
    cfg = ProbeConfig.model_validate({"modules": {
        "u": {"prober": "options", "transport": "tcp", "timeout": 3, "warn_rtt_ms": 150},
        "r": {"prober": "register", "username": "100", "password_env": "X", "min_interval": 60}}})
    assert cfg.modules["u"].section.transport == "tcp"
    assert cfg.modules["u"].section.warn_rtt == 0.15
    assert cfg.modules["r"].section.min_interval == 60 and cfg.modules["r"].section.username == "100"


def _problems(path) -> str:
    with pytest.raises(SettingsError) as err:
        load_config(path)
    return str(err.value)


def test_a_field_of_another_prober_is_named(tmp_path):
    p = tmp_path / "p.yaml"
    p.write_text("modules:\n  x: {prober: options, warn_days: 3}\n")
    msg = _problems(p)
    assert "warn_days" in msg and "tls" in msg and "modules.x" in msg


def test_a_section_of_another_prober_is_refused(tmp_path):
    p = tmp_path / "p.yaml"
    p.write_text("modules:\n  x: {prober: options, register: {username: a}}\n")
    assert "section 'register'" in _problems(p)


def test_a_bad_duration_names_the_field(tmp_path):
    p = tmp_path / "p.yaml"
    p.write_text("modules:\n  x: {prober: register, register: {min_interval: 5 minutes}}\n")
    msg = _problems(p)
    assert "modules.x.register.min_interval" in msg and "1m30s" in msg


@pytest.mark.parametrize("value", ["1.2.3.4:５０６０", "host:99999", "[::1", ":5060",
                                   "hóst.example:5060"])
def test_bad_targets(value):
    with pytest.raises(ValueError):
        split_target(value, "udp")


def test_uri_targets_give_their_hostport():
    assert split_target("sip:p000001@127.0.0.80:5060", "udp") == ("127.0.0.80", 5060)
    assert split_target("[::1]:5070", "udp") == ("::1", 5070)


CONFIG = ProbeConfig.model_validate({"modules": {"m": {"prober": "options"},
                                                 "n": {"prober": "dns"}}})
plain = st.text(alphabet="abcdefghijklmnopqrstuvwxyzYNTFO0123456789.-_~:@", min_size=1,
                max_size=12)
scalar = st.one_of(plain, plain.map(lambda s: f'"{s}"'), st.sampled_from(
    ["yes", "no", "on", "null", "~", "1e3", "0x1f", "12:30", "2001-01-01", "true", "'x'",
     "10.0.0.1:5060", "sip:100@pbx:5060", "1:2:3", "a:", "a::b", "190:20:30.15", "10.0.0.1",
     "1.2", "1.2:30", "1.2.", "1..2", "1.2.3:", "1:2.3.4", "1.2.3e4", "1_0.2.3"]))


@settings(max_examples=400, deadline=None)
@given(scalar, st.sampled_from(["m", "n", '"m"', "mm"]),
       st.lists(st.tuples(scalar, scalar), max_size=3))
def test_fast_line_reads_what_yaml_reads(target, module, labels):
    """The one-line reader either agrees with libyaml or steps aside (None)."""
    body = ", ".join(f"{k}: {v}" for k, v in labels)
    line = f"- {{target: {target}, module: {module}" + (f", labels: {{{body}}}}}" if labels
                                                        else "}")
    fast = _fast_line(line)
    if fast is None:
        return
    try:
        expected = yaml.safe_load(line)[0]
    except yaml.YAMLError:
        pytest.fail(f"fast reader accepted what YAML refuses: {line}")
    expected.setdefault("labels", {})
    assert dict(zip(("target", "module", "labels"), fast)) == expected, line


def test_unquoted_host_port_targets_stream_on_the_fast_path():
    """``target: 10.0.0.1:5060`` (no quotes) is how people write it: it must not send a big
    file to YAML's pure-Python composer (about 100 times slower)."""
    line = "- {target: 10.0.0.1:5060, module: m, labels: {site: ist-1}}"
    assert _fast_line(line) == ("10.0.0.1:5060", "m", {"site": "ist-1"})
    assert _fast_line("- {target: 12:30, module: m}") is None  # YAML 1.1: the number 750


def _write(tmp_path, text: str):
    p = tmp_path / "t.yaml"
    p.write_text(text)
    return p


def test_reader_streams_every_shape(tmp_path):
    entries = [{"target": "10.0.0.1", "module": "m", "labels": {"a": "1"}},
               {"target": "h.example:5070", "module": "n"}]
    want = [("10.0.0.1", "m", {"a": "1"}), ("h.example:5070", "n", {})]
    for text in (yaml.safe_dump({"targets": entries}),  # block style
                 yaml.safe_dump({"targets": entries}, default_flow_style=None),
                 yaml.safe_dump({"targets": entries}, default_flow_style=True),  # one flow doc
                 ("# c\ntargets:\n  - {target: 10.0.0.1, module: m, labels: {a: '1'}}\n"
                  "  # comment\n\n  - {target: \"h.example:5070\", module: n}\n")):
        assert list(TargetReader(_write(tmp_path, text), CONFIG)) == want, text


def test_reader_shares_aliases(tmp_path):
    text = yaml.safe_dump({"targets": [{"target": "a", "module": "m"}] * 3})
    assert "*id001" in text
    assert len(list(TargetReader(_write(tmp_path, text), CONFIG))) == 3


@pytest.mark.parametrize("text,words", [
    ("targets:\n  - {target: a, module: zz}\n", ["line 2", "unknown module 'zz'", "m, n"]),
    ("targets:\n  - {target: a, module: m}\n  - {target: 5, module: m}\n",
     ["line 3", "targets[1].target"]),
    ("targets:\n  - {target: a, module: m}\nother: 1\n", ["line 3", "top-level"]),
    ("nothing: here\n", ["targets"]),
    ("targets:\n  - {target: a, module: m, labels: {x: yes}}\n", ["labels.x"]),
])
def test_reader_errors_name_the_line_and_field(tmp_path, text, words):
    with pytest.raises(SettingsError) as err:
        list(TargetReader(_write(tmp_path, text), CONFIG))
    for w in words:
        assert w in str(err.value), str(err.value)


def test_reader_refuses_binary(tmp_path):
    p = tmp_path / "t.yaml"
    p.write_bytes("targets:\n".encode("utf-16"))
    with pytest.raises(SettingsError):
        list(TargetReader(p, CONFIG))


@pytest.mark.parametrize("flag,value,word", [("--deadline", "5ms", "under 0.1 s"),
                                             ("--interval", "nan", "not a duration"),
                                             ("--deadline", "1m1h", "largest first")])
def test_cli_durations_are_checked(tmp_path, run_sipkit, flag, value, word):
    cfg = tmp_path / "p.yaml"
    cfg.write_text("modules:\n  m: {prober: options}\n")
    t = _write(tmp_path, "targets:\n  - {target: 127.0.0.1, module: m}\n")
    proc = run_sipkit("probe", "run", "-c", str(cfg), "-t", str(t), flag, value)
    assert proc.returncode == 2 and word in proc.stderr and "Traceback" not in proc.stderr
