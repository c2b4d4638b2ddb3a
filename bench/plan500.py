"""A synthetic 500-menu plan: how long parsing + validation and a live reload take.

The plan is the bench's own plan (Kotim's) with its menus replaced by a tree of `menus`
menus, eight submenus under each, the leaves' keys going to the agencies; every menu reuses
the main menu's prompt, so the reload measures the plan and Asterisk, not espeak-ng.
"""

from __future__ import annotations

import copy
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ivr.plan import load_plans
from tests.integration.stack import Stack

BRANCHING = 8


def synthetic_plan(base: Path, target: Path, menus: int) -> int:
    """Write `base` with `menus` menus in a tree to `target`; returns the number of options."""
    doc: dict[str, Any] = yaml.safe_load(base.read_text())
    main = doc["menus"][doc["entry"]["then"]["menu"]]
    agencies = [a for a in doc["agencies"]]
    queue = next(iter(doc["queues"]))
    names = [doc["entry"]["then"]["menu"], *(f"m{i:03d}" for i in range(1, menus))]
    out: dict[str, Any] = {}
    options_total = 0
    for i, name in enumerate(names):
        options: dict[str, Any] = {"0": {"queue": queue}}
        for k in range(1, BRANCHING + 1):
            child = BRANCHING * i + k
            options[str(k)] = {"menu": names[child]} if child < menus else {"agency": agencies[k % len(agencies)]}
        if i == 0:
            options["9"] = {"language": "en"}
        options_total += len(options)
        out[name] = {**copy.deepcopy(main), "options": options}  # no YAML aliases: each menu written out
    doc["menus"] = out
    target.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False))
    return options_total


@dataclass(frozen=True)
class PlanTimes:
    menus: int
    options: int
    parse_validate_ms: list[float]
    reload_ms: list[float]
    reload_small_ms: list[float]

    @staticmethod
    def median(values: list[float]) -> float:
        return statistics.median(values) if values else float("nan")


def _reload_ms(stack: Stack) -> float:
    start = time.perf_counter()
    status, answer = stack.console("/api/reload")
    took = (time.perf_counter() - start) * 1000
    if status != 200:
        raise RuntimeError(f"reload refused ({status}): {answer}")
    return took


def measure(stack: Stack, *, menus: int = 500, repeat: int = 5) -> PlanTimes:
    """Time load_plans (parse + validate) of a `menus`-menu plan in this process, and the
    app's reload (POST /api/reload: validate, render, Asterisk reloads) to it and back."""
    big = stack.tmp / f"plan-{menus}.yaml"
    options = synthetic_plan(stack.plan_file, big, menus)
    parse: list[float] = []
    for _ in range(repeat):
        start = time.perf_counter()
        plans = load_plans([big])
        parse.append((time.perf_counter() - start) * 1000)
    assert len(plans.default.menus) == menus
    original = stack.plan_file.read_text()
    small = [_reload_ms(stack) for _ in range(2)]
    reload: list[float] = []
    try:
        for _ in range(repeat):
            stack.plan_file.write_text(big.read_text())
            reload.append(_reload_ms(stack))
            stack.plan_file.write_text(original)
            _reload_ms(stack)
    finally:
        stack.plan_file.write_text(original)
        _reload_ms(stack)
    return PlanTimes(menus, options, parse, reload, small)
