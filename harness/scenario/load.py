"""Load a scenario file: YAML to the cloud's typed ``Scenario``, validated before anything starts.

The schema check and the shared rules are ``harness.scenario.rules``; the
cloud's own rules are its profile's (``harness.clouds.profile(name).build_scenario``).
Every error names the file, the field and what is valid.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from harness import clouds
from harness.errors import ValidationError
from harness.scenario.model import Scenario
from harness.scenario.rules import check_schema, field_name, parse_with


def load_scenario(path: str | Path) -> Scenario:
    """Read, validate and model a scenario file; ValidationError on any problem (also for a
    file that is not UTF-8 text, and for a key given twice, which YAML would silently keep
    the last of)."""
    label = str(path)
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ValidationError(label, "(file)", f"cannot read: {exc.strerror}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise ValidationError(label, f"(line {line})", f"not UTF-8 text (byte 0x{data[exc.start]:02x} at "
                              f"offset {exc.start}); save the file as UTF-8") from None
    try:
        check_duplicate_keys(yaml.compose(text, Loader=yaml.SafeLoader), label)
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"(line {mark.line + 1})" if mark is not None else "(file)"
        raise ValidationError(label, where, f"malformed YAML: {getattr(exc, 'problem', exc)}") from None
    except RecursionError:
        raise ValidationError(label, "(file)", "malformed YAML: nested too deeply") from None
    return parse_scenario(raw, label)


def check_duplicate_keys(node: yaml.Node | None, path: str, where: tuple[str | int, ...] = ()) -> None:
    """ValidationError naming the field of the first mapping key given twice (YAML loaders keep
    the last value without a word: a scenario would silently run with half its settings)."""
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode):
                line = key.start_mark.line + 1
                if key.value in seen:
                    raise ValidationError(path, field_name([*where, key.value]),
                                          f"given twice (lines {seen[key.value]} and {line}); keep one")
                seen[key.value] = line
                check_duplicate_keys(value, path, (*where, key.value))
            else:
                check_duplicate_keys(value, path, where)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            check_duplicate_keys(item, path, (*where, index))


def parse_scenario(raw: Any, path: str = "<scenario>") -> Scenario:
    """Validate an already-parsed mapping (e.g. from a test or a matrix cell)."""
    check_schema(raw, path)  # before the cloud is read from it: the schema names the valid ones
    return parse_with(raw, path, clouds.profile(raw.get("cloud", clouds.DEFAULT_CLOUD)).build_scenario)
