"""targets.yaml as a stream: one entry at a time, so a million targets cost the memory of one.

    targets:
      - {target: "203.0.113.5:5060", module: sip_udp, labels: {site: ist-1}}
      - target: pbx.example.com
        module: sip_tls

Entries are found by their ``- `` at the sequence's indent and each is given to libyaml on
its own; an entry on one line in flow style (what generators write) is read by a small exact
reader of that shape, whose every plain scalar is resolved by YAML's own rules (``yes``,
``1e3``, ``~`` would not be strings, so such a line goes to libyaml, which decides). A file of
another shape (a flow list, anchors across entries, several documents) is loaded whole, up to
``WHOLE_LIMIT`` bytes.

What YAML loads (an entry, the composer's entries, a whole file) is bounded like a site file
(``sitefile``): a key given twice, aliases expanding past ``ENTRIES`` (a budget growing with the
bytes read, so a million entries pass and a billion laughs does not), nesting. The one-line
fast path needs none of it (its shape has no aliases, no nesting, and refuses a label twice).
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Iterator
from pathlib import Path

import yaml
from pydantic import ValidationError

from ..errors import FieldProblem, SettingsError
from ..sitefile import (
    Limits,
    SafeBoundedLoader,
    bound_nodes,
    load_yaml,
    read_bounded,
    refusals,
    refuse_encoding,
)
from .config import ProbeConfig, Target, validation_problems


WHOLE_LIMIT = 64 * 1024 * 1024
# an entry is a few values (target, module, labels); anchors shared between entries are
# expanded in each, so the budget grows with the file: 4 values a byte is beyond any real file
ENTRIES = Limits("targets file", option="--targets", max_bytes=WHOLE_LIMIT, max_line=None,
                 nodes_per_byte=4, fix="write the entries out (an anchor may be shared between "
                 "entries, not refer to others); an entry nests two levels (labels)")
_RESOLVERS = yaml.resolver.Resolver.yaml_implicit_resolvers
_ITEM = re.compile(r"^( *)- ")
# a flow scalar on one line: double-quoted without escapes, single-quoted without '' or plain
_SCALAR = r'"[^"\\\n]*"|\'[^\'\n]*\'|[^\s,{}\[\]"\'#&*!|>%@`:?-][^,{}\[\]#:]*?'
_PAIR = re.compile(rf"\s*([A-Za-z_]+):\s+({_SCALAR}|\{{[^{{}}]*\}})\s*(,|\}}\s*$)")
_INNER = re.compile(rf"\s*({_SCALAR}):\s+({_SCALAR})\s*(?:,|$)")


def _scalar(text: str) -> str | None:
    """The string a flow scalar stands for, or None when YAML would read something else."""
    if text[0] == '"' or text[0] == "'":
        return text[1:-1]
    text = text.rstrip()
    for _tag, regexp in _RESOLVERS.get(text[0], ()):
        if regexp.match(text):
            return None  # a bool, number, null or timestamp: not ours to decide
    return text


# the shape generators write, read by one match: - {target: T, module: M, labels: {k: v}}
# (a ":" inside a plain scalar is part of it when a scalar character follows: 10.0.0.1:5060)
_Q = r'"([^"\\\n]*)"|([^\s,{}\[\]"\'#&*!|>%@`:?-](?:[^,{}\[\]#:\s]|:(?=[^,{}\[\]#:\s]))*)'
_FAST = re.compile(rf"- \{{target: (?:{_Q}), module: (?:{_Q})(?:, labels: \{{([^{{}}]*)\}})?\}}"
                   r"\s*")  # and the line's end (rstrip's whitespace)


def _plain(text: str) -> bool:
    """A plain scalar YAML reads as a string (no bool, number, null or timestamp)."""
    if text[0] not in _RESOLVER_FIRST:
        return True  # no implicit type starts with this character
    hit = _PLAIN_SEEN.get(text)
    if hit is None:
        # an IPv4 address (and port): YAML 1.1's floats have one dot, its sexagesimal
        # numbers their colons before it, timestamps a "-": a string, without the resolvers
        hit = _DOTTED.fullmatch(text) is not None or not any(
            regexp.match(text) for _tag, regexp in _RESOLVERS.get(text[0], ()))
        if len(_PLAIN_SEEN) < 4096:
            _PLAIN_SEEN[text] = hit
    return hit


_PLAIN_SEEN: dict[str, bool] = {}
_DOTTED = re.compile(r"[0-9]+\.[0-9]+\.[0-9.]*[0-9](?::[0-9]+)?")
_RESOLVER_FIRST = frozenset(k for k in _RESOLVERS if k)


_SAFE = re.compile(r"[A-Za-z_][A-Za-z0-9_./-]*|\"[^\"\\\\\n]*\"")
_PLAIN_LABELS = re.compile(r"[A-Za-z_][A-Za-z0-9_./-]*: [A-Za-z_][A-Za-z0-9_./-]*"
                           r"(?:, [A-Za-z_][A-Za-z0-9_./-]*: [A-Za-z_][A-Za-z0-9_./-]*)*")


def _fast_line(line: str, at: int = 0) -> tuple[str, str, dict] | None:
    """(target, module, labels) of the one-line shape from ``at``, or None (then YAML
    decides)."""
    m = _FAST.fullmatch(line, at)
    if m is None:
        return None
    tq, tp, mq, mp, body = m.groups()
    first = _RESOLVER_FIRST  # a plain scalar starting otherwise is a string: no call
    if (tp is not None and tp[0] in first and not _plain(tp)) or (
            mp is not None and mp[0] in first and not _plain(mp)):
        return None
    labels = {}
    if body and _PLAIN_LABELS.fullmatch(body):  # no quotes: ", " and ": " split exactly
        for pair in body.split(", "):
            k, _, v = pair.partition(": ")
            if (k[0] in first and not _plain(k)) or (v[0] in first and not _plain(v)) \
                    or k in labels:
                return None
            labels[k] = v
    elif body:
        safe = _SAFE.fullmatch
        for pair in body.split(", "):
            k, sep, v = pair.partition(": ")
            if not (sep and safe(k) and safe(v)) or k in labels:
                return None
            c = k[0]
            if c == '"':
                k = k[1:-1]
            elif c in first and not _plain(k):
                return None
            c = v[0]
            if c == '"':
                v = v[1:-1]
            elif c in first and not _plain(v):
                return None
            labels[k] = v
    return (tq if tq is not None else tp, mq if mq is not None else mp, labels)


def _flow_line(line: str) -> dict | None:
    """``- {target: x, module: y, labels: {k: v}}`` as a dict; None for anything else."""
    start = line.find("{")
    pos, out = start + 1, {}
    while True:
        m = _PAIR.match(line, pos)
        if m is None:
            return None
        key, raw = m.group(1), m.group(2)
        if raw[0] == "{":
            inner, body, ipos = {}, raw[1:-1].strip(), 0
            while ipos < len(body):
                im = _INNER.match(body, ipos)
                if im is None:
                    return None
                k, v = _scalar(im.group(1)), _scalar(im.group(2))
                if k is None or v is None or k in inner:
                    return None
                inner[k] = v
                ipos = im.end()
            value = inner
        else:
            value = _scalar(raw)
            if value is None:
                return None
        if key in out:
            return None  # YAML refuses duplicates more clearly than we would
        out[key] = value
        pos = m.end()
        if m.group(3) != ",":
            return out


class TargetReader:
    """Iterate (target, module, labels) of a targets file, checked against the modules.

    A bad entry raises SettingsError naming its line; entries before it have been yielded
    (the runner finishes those probes, then reports the error)."""

    def __init__(self, path: Path, config: ProbeConfig, shard: tuple[int, int] | None = None,
                 by_target: bool = False):
        """``shard`` (k, n): yield only this worker's part of the file — every n-th one-line
        entry from the k-th (other entries go to worker 0), or, ``by_target``, the entries
        whose target hashes to k (so per-target pacing stays within one worker)."""
        self.path, self.modules = Path(path), config.modules
        self.count = 0
        self.shard = shard if shard and shard[1] > 1 else None
        self.by_target = by_target

    def _problem(self, lineno: int, field: str, problem: str, fix: str) -> SettingsError:
        return SettingsError(f"{self.path} line {lineno}", [FieldProblem(
            f"{self._at()}.{field}" if field else self._at(), problem, fix)])

    def _at(self) -> str:
        """The entry's place: its index (a helper process sees only its share: then the
        error's line number says where)."""
        return "targets[]" if self.shard else f"targets[{self.count}]"

    def _check(self, entry, lineno: int) -> tuple[str, str, dict]:
        if isinstance(entry, dict) and type(entry.get("target")) is str \
                and type(entry.get("module")) is str and entry.keys() <= {"target", "module",
                                                                          "labels"}:
            labels = entry.get("labels") or {}
            if not (isinstance(labels, dict) and all(type(k) is str and type(v) is str
                                                     for k, v in labels.items())):
                try:
                    Target.model_validate(entry)
                except ValidationError as err:
                    raise SettingsError(f"{self.path} line {lineno}", validation_problems(
                        err, f"{self._at()}.")) from None
                labels = {str(k): str(v) for k, v in labels.items()}
            target, module = entry["target"], entry["module"]
        else:
            try:
                t = Target.model_validate(entry)
            except ValidationError as err:
                raise SettingsError(f"{self.path} line {lineno}", validation_problems(
                    err, f"{self._at()}.")) from None
            target, module, labels = t.target, t.module, t.labels
        if module not in self.modules:
            raise self._problem(lineno, "module", f"unknown module {module!r}",
                                f"use one of: {', '.join(self.modules)}")
        self.count += 1
        return target, module, labels

    def __iter__(self) -> Iterator[tuple[str, str, dict]]:
        try:
            f = open(self.path, encoding="utf-8", newline="")  # noqa: SIM115 - with f: below
        except OSError as exc:
            raise SettingsError(str(self.path), [FieldProblem(
                "(file)", f"cannot read ({exc.strerror})", "give an existing file")]) from None
        with f:
            try:
                if self.shard is None:
                    yield from self._stream(f)
                    return
                k, n = self.shard
                for entry in self._stream(f):
                    if self.by_target:
                        if zlib.crc32(entry[0].encode()) % n == k:
                            yield entry
                    elif len(entry) == 4:  # a one-line entry picked for this worker
                        yield entry[:3]
                    elif k == 0:  # any other entry: worker 0's
                        yield entry
            except UnicodeDecodeError:
                with open(self.path, "rb") as head:
                    raise refuse_encoding(head.read(4096), str(self.path)) from None

    def _stream(self, f) -> Iterator[tuple[str, str, dict]]:
        lineno, indent = 0, None
        fast_prefix, fast_at = "\0", 0  # set at the first entry
        modules = self.modules
        index_shard = self.shard is not None and not self.by_target
        shard_k, shard_n = self.shard or (0, 1)
        seen = -1
        chunk: list[str] = []
        chunk_line = 0
        for line in f:
            lineno += 1
            if line.startswith(fast_prefix):
                if index_shard:
                    seen += 1
                    if seen % shard_n != shard_k:
                        continue  # another worker's line: not even parsed here
                entry = _fast_line(line, fast_at)
                if entry is not None:
                    if chunk:
                        yield self._entry(chunk, chunk_line)
                        chunk = []
                    if entry[1] in modules:
                        self.count += 1
                    else:
                        self._check(dict(zip(("target", "module", "labels"), entry)), lineno)
                    yield (*entry, True) if index_shard else entry
                    continue
            stripped = line.strip()
            if indent is None:  # before the first entry: comments, then "targets:"
                if not stripped or stripped.startswith("#"):
                    continue
                if stripped == "targets:" and line.startswith("targets:"):
                    indent = -1
                    continue
                yield from self._whole(f, lineno)
                return
            if not stripped or stripped.startswith("#"):
                continue
            m = _ITEM.match(line)
            if indent == -1:
                if m is None:
                    yield from self._whole(f, lineno)
                    return
                indent = len(m.group(1))
                fast_prefix, fast_at = " " * indent + "- {", indent
            if m is not None and len(m.group(1)) == indent:
                if chunk:
                    yield self._entry(chunk, chunk_line)
                    chunk = []
                if stripped[2:3] == "{" and stripped.endswith("}"):
                    fast = _fast_line(stripped)
                    entry = (dict(zip(("target", "module", "labels"), fast)) if fast
                             else _flow_line(stripped))
                    if entry is not None:
                        yield self._check(entry, lineno)
                        continue
                if chunk_line == 0 and self.count == 0:
                    # the first entry is not on one line (yaml.safe_dump's block style, maybe
                    # anchors shared between entries): let YAML's composer stream the file
                    yield from self._composed()
                    return
                chunk, chunk_line = [line], lineno
            elif line[0] != " " and line[0] != "-":
                raise self._problem(lineno, "", f"unexpected top-level line {stripped[:40]!r}",
                                    "a targets file has one key, 'targets:', and its list")
            elif chunk:
                chunk.append(line)
            else:
                raise self._problem(lineno, "", f"unexpected line {stripped[:40]!r}",
                                    "one entry per '- ' line, or a block mapping under it")
        if chunk:
            yield self._entry(chunk, chunk_line)
        if indent is None:
            raise SettingsError(str(self.path), [FieldProblem(
                "targets", "missing", "start the file with 'targets:' and a list")])

    def _composed(self) -> Iterator[tuple[str, str, dict]]:
        """Entries one at a time from YAML's own composer (pure Python, so slower, but any
        block style and anchors/aliases between entries; aliases are shared, not copied)."""
        source = str(self.path)
        with open(self.path, encoding="utf-8") as f, refusals(source, ENTRIES):
            loader, used = SafeBoundedLoader(f), 0
            try:
                for kind in (yaml.StreamStartEvent, yaml.DocumentStartEvent,
                             yaml.MappingStartEvent):
                    if not loader.check_event(kind):
                        raise yaml.YAMLError("not a mapping")
                    loader.get_event()
                key = loader.get_event()
                if not (isinstance(key, yaml.ScalarEvent) and key.value == "targets"
                        and loader.check_event(yaml.SequenceStartEvent)):
                    raise SettingsError(str(self.path), [FieldProblem(
                        "targets", "missing or not a list", "start the file with 'targets:'")])
                loader.get_event()
                while not loader.check_event(yaml.SequenceEndEvent):
                    node = loader.compose_node(None, None)
                    used = bound_nodes(node, ENTRIES, node.end_mark.index, used)
                    entry = loader.construct_object(node, deep=True)
                    loader.constructed_objects, loader.recursive_objects = {}, {}
                    yield self._check(entry, node.start_mark.line + 1)
                loader.get_event()
                if not loader.check_event(yaml.MappingEndEvent):
                    ev = loader.peek_event()
                    raise SettingsError(f"{self.path} line {ev.start_mark.line + 1}", [
                        FieldProblem("(file)", "a second top-level key",
                                     "a targets file has one key, 'targets:'")])
            finally:
                loader.dispose()

    def _entry(self, chunk: list[str], lineno: int) -> tuple[str, str, dict]:
        doc = load_yaml("".join(chunk), f"{self.path} line {lineno}", ENTRIES,
                        first_line=lineno)
        if not (isinstance(doc, list) and len(doc) == 1):
            raise self._problem(lineno, "", "not one list entry", "begin each entry with '- '")
        return self._check(doc[0], lineno)

    def _whole(self, f, lineno: int) -> Iterator[tuple[str, str, dict]]:
        """Not the streaming shape: load the file whole (bounded)."""
        size = self.path.stat().st_size
        if size > WHOLE_LIMIT:
            raise SettingsError(str(self.path), [FieldProblem(
                "(file)", f"{size} bytes in a shape that cannot be streamed (line {lineno})",
                "write 'targets:' and then one '- ' entry per target (block list)")])
        source = str(self.path)
        data = load_yaml(read_bounded(self.path, source, ENTRIES), source, ENTRIES)
        if not isinstance(data, dict) or set(data) != {"targets"} \
                or not isinstance(data["targets"], list):
            raise SettingsError(str(self.path), [FieldProblem(
                "targets", "missing or not a list" if not isinstance(data, dict) or
                "targets" not in data else "the only key of a targets file is 'targets'",
                "start the file with 'targets:' and a list of entries")])
        for entry in data["targets"]:
            yield self._check(entry, 0)

