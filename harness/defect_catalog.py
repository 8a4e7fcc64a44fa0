"""A cloud's defect catalog, read as data: which defect variants exist, and what must catch each.

The harness never imports minicloud; minicloud ships its catalog as a file
(``images/minicloud/catalog.yaml``). The scenario rules read it to know which
``RELEASE+VARIANT`` labels exist, and ``rollgate catalog`` reads it to know
what to run: every clean scenario (must PASS) and every defect through the
scenario that must catch it (must FAIL, with the named check among the
failing ones). A variant name is data here, never a branch in the harness.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from harness.errors import ValidationError

MINICLOUD_CATALOG = Path(__file__).resolve().parents[1] / "images" / "minicloud" / "catalog.yaml"
DEFECT_FIELDS = ("variant", "release", "class", "scenario", "caught_by", "summary")


@dataclass(frozen=True)
class DefectEntry:
    """One defect variant and the run that must catch it."""

    variant: str
    release: str  # the release the variant is built on: the scenario's target becomes release+variant
    defect_class: str
    scenario: str  # path relative to the repository root
    caught_by: str  # the check id that must FAIL
    summary: str

    @property
    def label(self) -> str:
        return f"{self.release}+{self.variant}"


@dataclass(frozen=True)
class Catalog:
    path: Path
    clean: tuple[str, ...]
    defects: tuple[DefectEntry, ...]

    def variants(self) -> tuple[str, ...]:
        return tuple(sorted({d.variant for d in self.defects}))


def _defect(raw: Any, index: int, path: str) -> DefectEntry:
    where = f"defects[{index}]"
    if not isinstance(raw, dict):
        raise ValidationError(path, where, "must be a mapping with " + ", ".join(DEFECT_FIELDS))
    for key in DEFECT_FIELDS:
        if not isinstance(raw.get(key), str) or not raw[key]:
            raise ValidationError(path, f"{where}.{key}", f"missing or not a string (fields: "
                                  f"{', '.join(DEFECT_FIELDS)})")
    unknown = sorted(set(raw) - set(DEFECT_FIELDS))
    if unknown:
        raise ValidationError(path, f"{where}.{unknown[0]}",
                              f"unknown field; valid: {', '.join(DEFECT_FIELDS)}")
    return DefectEntry(raw["variant"], raw["release"], raw["class"], raw["scenario"], raw["caught_by"],
                       raw["summary"])


def load_catalog(path: Path = MINICLOUD_CATALOG) -> Catalog:
    """The catalog file, validated (ValidationError names the file and the field)."""
    text = str(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ValidationError(text, "(file)", f"cannot read the catalog: {exc}") from exc
    if not isinstance(raw, dict):
        raise ValidationError(text, "(file)", "must be a mapping with clean and defects")
    clean = raw.get("clean") or []
    if not isinstance(clean, list) or not all(isinstance(c, str) for c in clean):
        raise ValidationError(text, "clean", "must be a list of scenario paths")
    defects = tuple(_defect(item, i, text) for i, item in enumerate(raw.get("defects") or []))
    names = [d.variant for d in defects]
    duplicate = next((n for n in names if names.count(n) > 1), None)
    if duplicate is not None:
        raise ValidationError(text, "defects", f"variant {duplicate!r} is listed twice")
    return Catalog(path, tuple(clean), defects)


@cache
def minicloud_variants() -> tuple[str, ...]:
    """The defect variants minicloud has (``1.1+NAME``), read from its catalog."""
    return load_catalog().variants()
