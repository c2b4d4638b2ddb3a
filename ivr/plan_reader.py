"""The plan reader's tools: typed reads of a YAML map with marks, every problem collected
with the place to fix it. Used by the plan parser's sections (plan_parse, plan_policies,
plan_agencies)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ivr.plan import (
    NAME_RE,
    TARGET_KINDS,
    Problem,
    Target,
)
from ivr.yamlsrc import Map, Mark, Seq


class PlanReader:
    """Reads a Map against expectations, collecting problems instead of stopping."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def problem(self, mark: Mark, message: str) -> None:
        self.problems.append(Problem(mark, message))

    def mapping(self, parent: Map, key: str, *, required: bool = True) -> Map | None:
        value = parent.get(key)
        if value is None:
            if required:
                self.problem(parent.key_at(key) if key in parent else parent.mark, f"'{key}' is missing; add a '{key}:' section")
            return None
        if not isinstance(value, Map):
            self.problem(parent.at(key), f"'{key}' must be a mapping of name: value, found {type(value).__name__}")
            return None
        return value

    def keys(self, m: Map, allowed: tuple[str, ...], where: str) -> None:
        for key in m:
            if key not in allowed:
                self.problem(m.key_at(key), f"unknown key '{key}' in {where}; expected one of: {', '.join(allowed)}")

    def text(self, m: Map, key: str, *, default: str | None = None) -> str:
        value = m.get(key, default)
        if value is None:
            self.problem(m.mark, f"'{key}' is missing; add '{key}: ...'")
            return ""
        if not isinstance(value, (str, int)) or isinstance(value, bool):
            self.problem(m.at(key), f"'{key}' must be text, found {value!r}")
            return ""
        return str(value)

    def number(self, m: Map, key: str, default: float, *, low: float, high: float, integer: bool = False) -> float:
        value = m.get(key, default)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (integer and not isinstance(value, int)):
            kind = "a whole number" if integer else "a number"
            self.problem(m.at(key), f"'{key}' must be {kind}, found {value!r}")
            return default
        if not low <= value <= high:
            self.problem(m.at(key), f"'{key}' must be between {low:g} and {high:g}, found {value}")
            return default
        return float(value) if not integer else int(value)

    def names(self, m: Map, key: str, *, required: bool = True) -> tuple[tuple[str, Mark], ...]:
        value = m.get(key)
        if value is None:
            if required:
                self.problem(m.mark, f"'{key}' is missing; add '{key}: [name, ...]'")
            return ()
        if isinstance(value, str):
            return ((value, m.at(key)),)
        if not isinstance(value, Seq) or not all(isinstance(v, (str, int)) and not isinstance(v, bool) for v in value):
            self.problem(m.at(key), f"'{key}' must be a list of names, found {value!r}")
            return ()
        return tuple((str(v), mk) for v, mk in zip(value, value.item_marks, strict=True))

    def target(self, value: Any, mark: Mark, where: str) -> Target | None:
        if isinstance(value, str) and value in ("repeat",):
            return Target(value, "", mark)
        if not isinstance(value, Map) or len(value) != 1:
            self.problem(
                mark,
                f"{where} must be one of {{queue: NAME}}, {{menu: NAME}}, {{agency: NAME}}, {{language: id|en}} or repeat",
            )
            return None
        kind, name = next(iter(value.items()))
        if kind not in TARGET_KINDS or kind == "repeat":
            self.problem(value.key_at(kind), f"unknown destination '{kind}' in {where}; use queue, menu, agency or language")
            return None
        if not isinstance(name, str):
            self.problem(value.at(kind), f"{where}: '{kind}' needs a name, found {name!r}")
            return None
        return Target(kind, name, value.at(kind))

    def named(self, doc: Map, key: str, what: str, shape: str, *, required: bool = True) -> Iterator[tuple[str, Map, Mark]]:
        """Each `name: {mapping}` of the section `key` (prompts, agencies, ...), with the mark
        of its name; a bad name or a value that is not a mapping is a problem, and skipped."""
        section = self.mapping(doc, key, required=required)
        if section is None:
            return
        for name, value in section.items():
            if not NAME_RE.match(name):
                self.problem(section.key_at(name), f"{what} name {name!r} must be lower-case letters, digits or '_'")
            if not isinstance(value, Map):
                self.problem(section.at(name), f"{what} '{name}' must be a mapping with {shape}")
                continue
            yield name, value, section.key_at(name)

