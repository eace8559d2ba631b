"""Reading a site file safely: bytes on disk -> one plain mapping, or a SettingsError.

A site file is a few hundred bytes of YAML (or JSON) that someone may have mangled or crafted.
Whatever is in it costs bounded time and memory and ends as exit 2 with the field named:

- binary or UTF-16/UTF-32 input is refused naming the encoding (not a UnicodeDecodeError);
- a file over ``MAX_FILE_BYTES`` or a line over ``MAX_FIELD_CHARS`` is refused before YAML
  parses it (PyYAML reads a multi-megabyte scalar one character at a time), naming the key on
  that line;
- a key given twice is refused with both line numbers (YAML 1.2 §3.2.1.1 says keys are
  unique; PyYAML silently keeps the last one, so ``pbx_password`` twice would test the wrong
  one);
- aliases are allowed but their expansion is bounded (``MAX_NODES``): a "billion laughs" of
  nested ``*a`` references is refused instead of exploding in everything that walks the data;
- nesting deeper than ``MAX_DEPTH`` is refused (5,000 levels would be a RecursionError).
"""

from __future__ import annotations

import codecs
import json
import re
from pathlib import Path
from typing import Any

import yaml

from .errors import FieldProblem, SettingsError

MAX_FILE_BYTES = 256 * 1024  # a site file is under 2 KB; this leaves room for comments
MAX_FIELD_CHARS = 4096  # one value (a password, a path, a host name)
MAX_NODES = 10_000  # mappings, lists and scalars after alias expansion
MAX_DEPTH = 16  # the schema nests 2 levels (check.*, normalizer.*)
_READ_CAP = 64 * 1024 * 1024  # never read more than this to find out a file is too big

_BOMS = [(codecs.BOM_UTF32_LE, "UTF-32 LE"), (codecs.BOM_UTF32_BE, "UTF-32 BE"),
         (codecs.BOM_UTF16_LE, "UTF-16 LE"), (codecs.BOM_UTF16_BE, "UTF-16 BE")]
_KEY_ON_LINE = re.compile(r'^\s*(?:-\s+)?["\']?([A-Za-z0-9_.-]{1,64})["\']?\s*:')
_SAVE = "save it as UTF-8 text (in most editors: Save As, encoding UTF-8)"


def _problem(field: str, problem: str, fix: str) -> FieldProblem:
    return FieldProblem(field, problem, fix)


class StringLoader(yaml.SafeLoader):
    """YAML with every scalar a string but null: `0100` stays "0100", `+1208...` keeps its +.
    Refuses a key given twice (naming both lines) and a document whose aliases expand past
    MAX_NODES (before construction: merge keys of merge keys blow up inside PyYAML itself)."""

    def construct_document(self, node):
        _bound_nodes(node)
        return super().construct_document(node)

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen: dict[str, int] = {}
            for key_node, _ in node.value:  # own keys only: before merge keys are flattened
                if key_node.tag == "tag:yaml.org,2002:merge" or not isinstance(
                        key_node, yaml.ScalarNode):
                    continue
                key, line = key_node.value, key_node.start_mark.line + 1
                if key in seen:
                    raise DuplicateKey(key, seen[key], line)
                seen[key] = line
        return super().construct_mapping(node, deep=deep)


class TooBig(Exception):
    """The composed YAML graph expands past MAX_NODES or MAX_DEPTH."""


def _bound_nodes(root) -> None:
    """Visit the node graph as construction would (every alias expanded), with a budget."""
    count = 0
    stack = [(root, 0)]
    while stack:
        node, depth = stack.pop()
        count += 1
        if count > MAX_NODES:
            raise TooBig(f"expands to more than {MAX_NODES:,} values (YAML aliases referring "
                         "to aliases?)")
        if depth > MAX_DEPTH:
            raise TooBig(f"is nested more than {MAX_DEPTH} levels deep")
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                stack += [(k, depth + 1), (v, depth + 1)]
        elif isinstance(node, yaml.SequenceNode):
            stack += [(v, depth + 1) for v in node.value]


StringLoader.yaml_implicit_resolvers = {
    ch: [(tag, rx) for tag, rx in resolvers if tag == "tag:yaml.org,2002:null"]
    for ch, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


class DuplicateKey(Exception):
    def __init__(self, key: str, first: int, second: int):
        super().__init__(key)
        self.key, self.first, self.second = key, first, second


def _decode(raw: bytes, source: str) -> str:
    for bom, name in _BOMS:
        if raw.startswith(bom):
            raise SettingsError(source, [_problem(
                "(file)", f"is {name} text (it starts with a {name} byte-order mark); "
                "sipkit reads UTF-8 only", _SAVE)])
    if b"\x00" in raw:
        # UTF-16 without a BOM: ASCII text with a NUL beside every character.
        even, odd = raw[0::2], raw[1::2]
        if odd and odd.count(0) > len(odd) * 0.9:
            name = "UTF-16 LE (no byte-order mark)"
        elif even and even.count(0) > len(even) * 0.9:
            name = "UTF-16 BE (no byte-order mark)"
        else:
            name = "binary data (NUL bytes), not text"
        raise SettingsError(source, [_problem("(file)", f"is {name}", _SAVE)])
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        raise SettingsError(source, [_problem(
            "(file)", f"is not UTF-8: byte 0x{raw[exc.start]:02x} on line {line} (Latin-1 "
            "or binary?)", _SAVE)]) from None


def _check_lines(text: str, source: str) -> None:
    for number, line in enumerate(text.splitlines(), 1):
        if len(line) > MAX_FIELD_CHARS + 100:
            m = _KEY_ON_LINE.match(line)
            field = m.group(1) if m else f"(line {number})"
            raise SettingsError(source, [_problem(
                field, f"line {number} is {len(line):,} characters long; a field may hold at "
                f"most {MAX_FIELD_CHARS:,}", "shorten the value (is the right thing pasted "
                "there?)")])


def check_bounds(data: Any, source: str) -> None:
    """Size, depth and field length of a loaded document, counting every alias expansion,
    stopping at the first limit (so a billion laughs costs MAX_NODES steps, not 10^9)."""
    count = 0
    stack: list[tuple[Any, str, int]] = [(data, "", 0)]
    while stack:
        value, path, depth = stack.pop()
        count += 1
        if count > MAX_NODES:
            raise SettingsError(source, [_problem(
                "(file)", f"expands to more than {MAX_NODES:,} values (YAML aliases "
                "referring to aliases?)", "write the values out; a site file has a few dozen")])
        if depth > MAX_DEPTH:
            raise SettingsError(source, [_problem(
                path or "(file)", f"is nested more than {MAX_DEPTH} levels deep",
                "see README 'Site file': fields nest at most two levels (check.*)")])
        if isinstance(value, dict):
            stack.extend((v, f"{path}.{k}" if path else str(k), depth + 1)
                         for k, v in value.items())
        elif isinstance(value, list):
            stack.extend((v, f"{path}[{i}]", depth + 1) for i, v in enumerate(value))
        elif isinstance(value, str) and len(value) > MAX_FIELD_CHARS:
            raise SettingsError(source, [_problem(
                path or "(file)", f"is {len(value):,} characters long; a field may hold at most "
                f"{MAX_FIELD_CHARS:,}", "shorten the value (is the right thing pasted there?)")])


def _json_pairs(text: str, source: str):
    def hook(pairs):
        out: dict[str, Any] = {}
        for key, value in pairs:
            if key in out:
                lines = [text.count("\n", 0, m.start()) + 1 for m in
                         re.finditer(r'"' + re.escape(key) + r'"\s*:', text)]
                where = (f"lines {lines[0]} and {lines[1]}" if len(lines) > 1
                         else "twice in one object")
                raise SettingsError(source, [_problem(
                    key, f"is given twice ({where})", "keep one of them")])
            out[key] = value
        return out
    return hook


def read_site_document(path: str | Path, source: str) -> dict[str, Any]:
    """The mapping in a YAML or JSON site file; SettingsError (exit 2) for anything else."""
    from .settings import syntax_problem

    p = Path(path)
    try:
        with open(p, "rb") as fh:  # in chunks: read(n) would allocate n bytes up front
            chunks, size = [], 0
            while size <= _READ_CAP and (chunk := fh.read(1 << 16)):
                chunks.append(chunk)
                size += len(chunk)
            raw = b"".join(chunks)
    except OSError as exc:
        raise SettingsError(source, [_problem(
            "--config", f"cannot read the file ({exc.strerror})",
            "give the path of an existing site file")]) from None
    text = _decode(raw, source)
    _check_lines(text, source)
    if len(raw) > MAX_FILE_BYTES:
        raise SettingsError(source, [_problem(
            "(file)", f"is {len(raw):,} bytes{'+' if len(raw) > _READ_CAP else ''}; a site "
            f"file is at most {MAX_FILE_BYTES:,}", "give the site file, not another file")])
    try:
        if p.suffix == ".json":
            loaded = json.loads(text, object_pairs_hook=_json_pairs(text, source))
        else:
            loaded = yaml.load(text, StringLoader)
    except (yaml.YAMLError, json.JSONDecodeError) as exc:
        raise SettingsError(source, [syntax_problem(exc)]) from None
    except TooBig as exc:
        raise SettingsError(source, [_problem(
            "(file)", str(exc), "write the values out: a site file has a few dozen fields, "
            "nested at most two levels (check.*)")]) from None
    except DuplicateKey as exc:
        raise SettingsError(source, [_problem(
            exc.key, f"is given twice (lines {exc.first} and {exc.second})",
            "keep one of them")]) from None
    except RecursionError:
        raise SettingsError(source, [_problem(
            "(file)", f"is nested too deeply to read (a site file nests at most {MAX_DEPTH} "
            "levels)", "see README 'Site file'")]) from None
    if loaded is None:
        loaded = {}
    if not isinstance(loaded, dict):
        raise SettingsError(source, [_problem(
            "(file)", "must be a mapping of field: value", "see README 'Site file'")])
    check_bounds(loaded, source)
    return loaded
