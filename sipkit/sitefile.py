"""Reading a YAML file safely: bytes on disk -> one plain document, or a SettingsError.

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

The other YAML files sipkit reads (probes.yaml, targets.yaml, reflector.yaml, the token file)
get the same refusals with their own ``Limits`` and YAML's normal typing (``TypedLoader``):
``read_bounded`` for the bytes, ``load_yaml`` for the document.
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
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


@dataclass(frozen=True)
class Limits:
    """What one kind of file may cost. The alias budget is ``max_nodes`` values plus
    ``nodes_per_byte`` per byte of the text: a big file of shared anchors is fine, a small
    one that multiplies them is a bomb."""

    name: str  # "site file": in "a site file is at most ..." and the fixes
    option: str = "--config"  # the flag that named the file (when it cannot be read)
    max_bytes: int = MAX_FILE_BYTES
    max_line: int | None = MAX_FIELD_CHARS  # None: lines of any length
    max_nodes: int = MAX_NODES
    nodes_per_byte: int = 0
    max_depth: int = MAX_DEPTH
    fix: str = "write the values out: a site file has a few dozen fields, nested at most " \
               "two levels (check.*)"  # for too many values or too deep


SITE = Limits("site file")


def _problem(field: str, problem: str, fix: str) -> FieldProblem:
    return FieldProblem(field, problem, fix)


class _Bounded:
    """A loader mixin: refuses a key given twice (naming both lines) and a document whose
    aliases expand past its Limits (before construction: merge keys of merge keys blow up
    inside PyYAML itself). ``load_yaml`` sets the limits, text size and first line."""

    limits: Limits = SITE
    size = 0  # characters of the text, for Limits.nodes_per_byte
    first_line = 1  # the text's first line in its file

    def construct_document(self, node):
        bound_nodes(node, self.limits, self.size)
        return super().construct_document(node)

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen: dict[tuple[str, str], int] = {}
            for key_node, _ in node.value:  # own keys only: before merge keys are flattened
                if key_node.tag == "tag:yaml.org,2002:merge" or not isinstance(
                        key_node, yaml.ScalarNode):
                    continue
                key, line = (key_node.tag, key_node.value), key_node.start_mark.line
                if key in seen:
                    raise DuplicateKey(key[1], seen[key] + self.first_line,
                                       line + self.first_line)
                seen[key] = line
        return super().construct_mapping(node, deep=deep)


class StringLoader(_Bounded, yaml.SafeLoader):
    """YAML with every scalar a string but null: `0100` stays "0100", `+1208...` keeps its +;
    bounded (see _Bounded)."""


StringLoader.yaml_implicit_resolvers = {
    ch: [(tag, rx) for tag, rx in resolvers if tag == "tag:yaml.org,2002:null"]
    for ch, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


class SafeBoundedLoader(_Bounded, yaml.SafeLoader):
    """YAML's normal typing (ints, bools, ...), bounded; pure Python (its composer can be
    driven one node at a time)."""


if hasattr(yaml, "CSafeLoader"):
    class TypedLoader(_Bounded, yaml.CSafeLoader):
        """SafeBoundedLoader on libyaml: many times the pure-Python speed."""
else:  # pragma: no cover - PyYAML built without libyaml
    TypedLoader = SafeBoundedLoader


class TooBig(Exception):
    """The composed YAML graph expands past its Limits' values or depth."""


class DuplicateKey(Exception):
    def __init__(self, key: str, first: int, second: int):
        super().__init__(key)
        self.key, self.first, self.second = key, first, second


def bound_nodes(root, limits: Limits, size: int = 0, used: int = 0) -> int:
    """Visit the node graph as construction would (every alias expanded), with a budget of
    the limits for ``size`` characters less ``used`` (values already spent in this file);
    returns the count. TooBig past the budget or the depth."""
    budget = limits.max_nodes + limits.nodes_per_byte * size
    count = used
    stack = [(root, 0)]
    while stack:
        node, depth = stack.pop()
        count += 1
        if count > budget:
            raise TooBig(f"expands to more than {budget:,} values (YAML aliases referring "
                         "to aliases?)")
        if depth > limits.max_depth:
            raise TooBig(f"is nested more than {limits.max_depth} levels deep")
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                stack += [(k, depth + 1), (v, depth + 1)]
        elif isinstance(node, yaml.SequenceNode):
            stack += [(v, depth + 1) for v in node.value]
    return count


def _not_utf8(raw: bytes) -> str | None:
    """What a file is when its first bytes show it is not UTF-8 text (a BOM, NULs), or None."""
    for bom, name in _BOMS:
        if raw.startswith(bom):
            return (f"is {name} text (it starts with a {name} byte-order mark); sipkit reads "
                    "UTF-8 only")
    if b"\x00" in raw:
        # UTF-16 without a BOM: ASCII text with a NUL beside every character.
        even, odd = raw[0::2], raw[1::2]
        if odd and odd.count(0) > len(odd) * 0.9:
            return "is UTF-16 LE (no byte-order mark)"
        if even and even.count(0) > len(even) * 0.9:
            return "is UTF-16 BE (no byte-order mark)"
        return "is binary data (NUL bytes), not text"
    return None


def _decode(raw: bytes, source: str) -> str:
    what = _not_utf8(raw)
    if what:
        raise SettingsError(source, [_problem("(file)", what, _SAVE)])
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        raise SettingsError(source, [_problem(
            "(file)", f"is not UTF-8: byte 0x{raw[exc.start]:02x} on line {line} (Latin-1 "
            "or binary?)", _SAVE)]) from None


def refuse_encoding(head: bytes, source: str) -> SettingsError:
    """The error for a file that did not decode as UTF-8, naming its encoding when its first
    bytes tell (for a reader that streams, so never holds the whole file)."""
    what = _not_utf8(head) or "is not UTF-8 text (Latin-1 or binary?)"
    return SettingsError(source, [_problem("(file)", what, _SAVE)])


def _check_lines(text: str, source: str, max_line: int) -> None:
    for number, line in enumerate(text.splitlines(), 1):
        if len(line) > max_line + 100:
            m = _KEY_ON_LINE.match(line)
            field = m.group(1) if m else f"(line {number})"
            raise SettingsError(source, [_problem(
                field, f"line {number} is {len(line):,} characters long; a field may hold at "
                f"most {max_line:,}", "shorten the value (is the right thing pasted "
                "there?)")])


def check_bounds(data: Any, source: str) -> None:
    """Size, depth and field length of a loaded site document, counting every alias
    expansion, stopping at the first limit (so a billion laughs costs MAX_NODES steps, not
    10^9)."""
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


def read_bounded(path: str | Path, source: str, limits: Limits) -> str:
    """The text of a file within its limits (UTF-8, size, line length); SettingsError
    (exit 2) naming the encoding, the size or the long line's key otherwise."""
    cap = max(_READ_CAP, limits.max_bytes)
    try:
        with open(path, "rb") as fh:  # in chunks: read(n) would allocate n bytes up front
            chunks, size = [], 0
            while size <= cap and (chunk := fh.read(1 << 16)):
                chunks.append(chunk)
                size += len(chunk)
            raw = b"".join(chunks)
    except OSError as exc:
        raise SettingsError(source, [_problem(
            limits.option, f"cannot read it ({exc.strerror})",
            f"give the path of an existing {limits.name}")]) from None
    text = _decode(raw, source)
    if limits.max_line is not None:
        _check_lines(text, source, limits.max_line)
    if len(raw) > limits.max_bytes:
        raise SettingsError(source, [_problem(
            "(file)", f"is {len(raw):,} bytes{'+' if len(raw) > cap else ''}; a "
            f"{limits.name} is at most {limits.max_bytes:,}",
            f"give the {limits.name}, not another file")])
    return text


@contextmanager
def refusals(source: str, limits: Limits) -> Iterator[None]:
    """What loading YAML (or JSON) may raise, as the SettingsError (exit 2) that says so."""
    try:
        yield
    except (yaml.YAMLError, json.JSONDecodeError) as exc:
        from .settings import syntax_problem  # lazily: the settings models load slowly

        raise SettingsError(source, [syntax_problem(exc)]) from None
    except TooBig as exc:
        raise SettingsError(source, [_problem("(file)", str(exc), limits.fix)]) from None
    except DuplicateKey as exc:
        raise SettingsError(source, [_problem(
            exc.key, f"is given twice (lines {exc.first} and {exc.second})",
            "keep one of them")]) from None
    except RecursionError:
        raise SettingsError(source, [_problem(
            "(file)", f"is nested too deeply to read (a {limits.name} nests at most "
            f"{limits.max_depth} levels)", limits.fix)]) from None


def load_yaml(text: str, source: str, limits: Limits, loader: type = TypedLoader,
              first_line: int = 1) -> Any:
    """The one document in ``text``, bounded by ``limits``; SettingsError otherwise.
    ``first_line``: where the text starts in its file (for the lines of a duplicate key)."""
    with refusals(source, limits):
        ldr = loader(text)
        ldr.limits, ldr.size, ldr.first_line = limits, len(text), first_line
        try:
            return ldr.get_single_data()
        finally:
            ldr.dispose()


def read_site_document(path: str | Path, source: str) -> dict[str, Any]:
    """The mapping in a YAML or JSON site file; SettingsError (exit 2) for anything else."""
    text = read_bounded(path, source, SITE)
    if Path(path).suffix == ".json":
        with refusals(source, SITE):
            loaded = json.loads(text, object_pairs_hook=_json_pairs(text, source))
    else:
        loaded = load_yaml(text, source, SITE, StringLoader)
    if loaded is None:
        loaded = {}
    if not isinstance(loaded, dict):
        raise SettingsError(source, [_problem(
            "(file)", "must be a mapping of field: value", "see README 'Site file'")])
    check_bounds(loaded, source)
    return loaded
