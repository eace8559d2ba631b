"""`sipkit normalize`: apply a connector's number rule to numbers, optionally explained.

The rule comes from a site file's ``normalizer:`` (only that section is read, so a site file
whose password variable is not set still previews) or from the three options. The definition
is in ``sipkit.normalize`` (README, "Number normalization").
"""

from __future__ import annotations

import json
from pathlib import Path

import click

_OPTIONS = {"default_prefix": "--default-prefix", "condition_length": "--condition-length",
            "condition_prefix": "--condition-prefix"}


def _rule_from_file(path: Path):
    """The ``normalizer`` mapping of a YAML/JSON site file, validated; None when absent."""
    from pydantic import ValidationError

    from ..errors import UsageError
    from ..settings import Normalizer
    from ..sitefile import read_site_document  # load_site's reader: "05" stays "05", bounded

    data = read_site_document(path, str(path))  # a SettingsError (exit 2) names the problem
    section = data.get("normalizer") if isinstance(data, dict) else None
    if section is None:
        return None
    if not isinstance(section, dict):
        raise UsageError(f"--config: normalizer in {path} must be a mapping with "
                         "default_prefix, condition_length, condition_prefix")
    try:
        return Normalizer.model_validate(section)
    except ValidationError as exc:
        e = exc.errors()[0]
        where = ".".join(str(x) for x in e["loc"])
        raise UsageError(f"--config: normalizer.{where} in {path}: "
                         f"{e['msg'].removeprefix('Value error, ')}") from None


def _rule_from_options(flags: dict):
    from pydantic import ValidationError

    from ..errors import UsageError
    from ..settings import Normalizer

    try:
        return Normalizer(**flags)
    except ValidationError as exc:
        e = exc.errors()[0]
        option = _OPTIONS.get(str(e["loc"][0]), "--" + str(e["loc"][0]))
        raise UsageError(f"{option}: {e['msg'].removeprefix('Value error, ')} "
                         f"(got {e.get('input')!r})") from None


def _explain(r) -> str:
    head = f"{r.original} → {r.result}  ({'changed' if r.applied else 'unchanged'})"
    return "\n".join([head] + [f"  - {why}" for why in r.reasons])


@click.command()
@click.argument("numbers", nargs=-1, required=True, metavar="NUMBER...")
@click.option("-c", "--config", type=click.Path(dir_okay=False, path_type=Path),
              help="Take the rule from this site file's normalizer: section.")
@click.option("--default-prefix", help="Put in front when the rule applies, e.g. 0 or +90.")
@click.option("--condition-length", help="Digit count(s) the rule needs, e.g. 10 or 10,11.")
@click.option("--condition-prefix", help="Leading digits the rule needs, e.g. 5 or 5,6.")
@click.option("--explain", is_flag=True, help="Show each condition and whether it held.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def normalize(numbers, config, default_prefix, condition_length, condition_prefix, explain,
              as_json):
    """Apply a connector's number rule to each NUMBER.

    Spaces, dashes, dots and brackets are removed. The rule applies when every condition that
    is set holds (digit count = --condition-length, number starts with --condition-prefix;
    comma lists allowed); then --default-prefix is put in front. A rule with no condition
    applies to every number. Numbers starting with + are international and stay unchanged.
    """
    from ..errors import UsageError
    from ..normalize import describe, is_set, rule_notes, rule_problems
    from ..normalize import normalize as apply_rule
    from ..settings import Normalizer

    flags = {"default_prefix": default_prefix, "condition_length": condition_length,
             "condition_prefix": condition_prefix}
    given = [_OPTIONS[k] for k, v in flags.items() if v is not None]
    if config and given:
        raise UsageError(f"--config and {', '.join(given)}: give the rule one way, either "
                         "--config or the options")
    if config:
        rule = _rule_from_file(config) or Normalizer()
    elif given:
        rule = _rule_from_options(flags)
    else:
        raise UsageError("no rule: give --config SITE or at least one of --default-prefix, "
                         "--condition-length, --condition-prefix")
    results = []
    for n in numbers:
        try:
            results.append(apply_rule(n, rule))
        except UsageError as exc:
            raise UsageError(f"NUMBER: {exc}") from None
    problems, notes = rule_problems(rule), rule_notes(rule)
    if as_json:
        click.echo(json.dumps({"rule": rule.model_dump(), "set": is_set(rule),
                               "explained": describe(rule), "problems": problems,
                               "notes": notes, "results": [r.as_dict() for r in results]},
                              indent=2, ensure_ascii=False))
        return
    if not is_set(rule):
        click.echo(f"note: {config} has no normalizer: numbers pass unchanged", err=True)
    for p in problems:
        click.echo(f"rule problem: {p}", err=True)
    for p in notes:
        click.echo(f"rule note: {p}", err=True)
    if explain and is_set(rule):
        click.echo(f"rule: {describe(rule)}")
    for r in results:
        click.echo(_explain(r) if explain else r.result)
