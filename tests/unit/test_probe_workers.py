"""The parent's reading of a helper's output (probe.workers.split_summary): blocks of whole
lines pass on untouched; only a summary line at a line's start is taken out."""

import json

from sipkit.probe.workers import SUMMARY_KEY, split_summary

SUMMARY = SUMMARY_KEY + b'{"ok": 3}}\n'


def test_lines_pass_on_and_the_summary_is_taken_out():
    lines = b'{"target": "a"}\n{"target": "b"}\n'
    assert split_summary(lines) == (lines, None)
    assert split_summary(lines + SUMMARY) == (lines, {"ok": 3})
    assert split_summary(SUMMARY) == (b"", {"ok": 3})
    assert split_summary(lines + SUMMARY + b"late\n") == (lines + b"late\n", {"ok": 3})


def test_a_reason_phrase_quoting_the_key_is_not_a_summary():
    # text mode prints a hostile server's reason phrase as it came
    fail = b"FAIL 192.0.2.1:5060 options 599 " + SUMMARY_KEY + b'{"ok": 9}}\n'
    assert split_summary(fail) == (fail, None)
    assert split_summary(fail + SUMMARY) == (fail, {"ok": 3})
    # in JSON mode the same phrase is inside a string, its quotes escaped
    line = json.dumps({"reason": SUMMARY.decode()}).encode() + b"\n"
    assert split_summary(line + SUMMARY) == (line, {"ok": 3})
