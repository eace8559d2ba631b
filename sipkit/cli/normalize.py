"""`sipkit normalize`: apply a connector's number rule to numbers, optionally explained."""

from __future__ import annotations

import json
from pathlib import Path

import click


@click.command()
@click.argument("numbers", nargs=-1, required=True)
@click.option("-c", "--config", type=click.Path(dir_okay=False, path_type=Path),
              help="Take the rule from this site file's normalizer.")
@click.option("--default-prefix", help="Put in front when the rule applies.")
@click.option("--condition-length", help="Digit count(s) the rule needs, e.g. 10 or 10,11.")
@click.option("--condition-prefix", help="Leading digits the rule needs, e.g. 5 or 5,6.")
@click.option("--explain", is_flag=True, help="Say which condition matched or failed.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def normalize(numbers, config, default_prefix, condition_length, condition_prefix, explain,
              as_json):
    """Apply a number rule: rule applies when every condition set holds; then default_prefix
    is put in front (README 'Number normalization')."""
    from ..errors import UsageError
    from ..normalize import normalize as apply_rule
    from ..normalize import rule_problems
    from ..settings import Normalizer, load_site

    flags = {"default_prefix": default_prefix, "condition_length": condition_length,
             "condition_prefix": condition_prefix}
    if config and any(v is not None for v in flags.values()):
        raise UsageError("give either --config or the --default-prefix/--condition-* options")
    if config:
        rule = load_site(config).normalizer or Normalizer()
    else:
        try:
            rule = Normalizer(**flags)
        except Exception as exc:  # pydantic ValidationError: name the option
            errors = getattr(exc, "errors", lambda: [])()
            field = errors[0]["loc"][0] if errors else "normalizer"
            msg = errors[0]["msg"].removeprefix("Value error, ") if errors else str(exc)
            raise UsageError(f"--{str(field).replace('_', '-')}: {msg}") from None
    results = [apply_rule(n, rule) for n in numbers]
    problems = rule_problems(rule)
    if as_json:
        click.echo(json.dumps({"rule": rule.model_dump(), "problems": problems,
                               "results": [r.as_dict() for r in results]}, indent=2))
        return
    for p in problems:
        click.echo(f"rule problem: {p}", err=True)
    for r in results:
        click.echo(r.result if not explain else
                   f"{r.original} → {r.result}  ({'applied' if r.applied else 'unchanged'}: "
                   f"{'; '.join(r.reasons)})")
