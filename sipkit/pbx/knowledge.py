"""The knowledge base (knowledge.yaml, package data): load it once, look an entry up, fill it in.

Lookup order: brand + product line, then brand; an unknown brand, or a brand without an entry
for the symptom, gets None and the check's own generic text stays.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from importlib import resources
from typing import Any

import yaml

from .fingerprint import BRANDS

SYMPTOMS = ("register_forbidden", "register_not_found", "register_silent", "auth_rejected",
            "ban")


@dataclass(frozen=True)
class Entry:
    brand: str
    symptom: str
    cause: str
    fix: str
    source_title: str
    source_url: str | None
    product: str | None = None

    def filled(self, values: dict[str, Any]) -> tuple[str, str]:
        """(cause, fix) with the run's values; an unknown placeholder stays as written."""
        fmt = _Keep({k: v for k, v in values.items() if v is not None})
        return self.cause.format_map(fmt), self.fix.format_map(fmt)

    @property
    def source(self) -> dict[str, str | None]:
        return {"title": self.source_title, "url": self.source_url}


class _Keep(dict):
    """format_map helper: missing keys render as their placeholder."""

    def __missing__(self, key):
        return "{" + key + "}"


class KnowledgeError(ValueError):
    pass


@functools.cache
def load() -> tuple[tuple[Entry, ...], dict[str, Any]]:
    """(entries, config section); validated: every entry names a known brand, a known symptom
    and a source."""
    raw = yaml.safe_load((resources.files("sipkit.pbx") / "knowledge.yaml").read_text())
    entries = []
    for i, e in enumerate(raw.get("entries") or []):
        where = f"knowledge.yaml entries[{i}]"
        if e.get("brand") not in BRANDS:
            raise KnowledgeError(f"{where}: brand {e.get('brand')!r} is not in BRANDS")
        if e.get("symptom") not in SYMPTOMS:
            raise KnowledgeError(f"{where}: symptom {e.get('symptom')!r} is not one of "
                                 f"{', '.join(SYMPTOMS)}")
        src = e.get("source") or {}
        if not src.get("title"):
            raise KnowledgeError(f"{where}: every entry needs a source with a title")
        for key in ("cause", "fix"):
            if not str(e.get(key) or "").strip():
                raise KnowledgeError(f"{where}: {key} is empty")
        entries.append(Entry(brand=e["brand"], symptom=e["symptom"], cause=e["cause"].strip(),
                             fix=e["fix"].strip(), source_title=src["title"],
                             source_url=src.get("url"), product=e.get("product")))
    return tuple(entries), dict(raw.get("config") or {})


def lookup(brand: str | None, symptom: str, product: str | None = None) -> Entry | None:
    if brand is None:
        return None
    entries, _ = load()
    exact = [e for e in entries if e.brand == brand and e.symptom == symptom]
    if product:
        specific = [e for e in exact if e.product and e.product.lower() == product.lower()]
        if specific:
            return specific[0]
    general = [e for e in exact if not e.product]
    return general[0] if general else None


def config_for(brand: str) -> dict[str, Any] | None:
    _, config = load()
    return config.get(brand)
