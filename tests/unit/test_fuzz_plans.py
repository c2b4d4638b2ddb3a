"""Hostile plans (issue 7): Kotim's plan mutated at random, as text and as structure. Loading
and checking a plan may refuse it, but only ever with the project's own PlanError, each
problem placed as `file:line:column: ...`; never a bare exception, never a hang.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ivr.errors import PlanError
from ivr.plan import load_plan, load_plans
from ivr.settings import PROJECT_DIR

KOTIM = (PROJECT_DIR / "dialplans" / "kotim.yaml").read_text()
# The plan names its boundaries relative to itself; the mutants live elsewhere.
BASE = KOTIM.replace("boundaries: kotim-kecamatan.geojson", f"boundaries: {PROJECT_DIR / 'dialplans' / 'kotim-kecamatan.geojson'}")
PLACED = re.compile(r"^.+:\d+:\d+: \S")
# make test: 150 examples each; make chaos (IVR112_CHAOS=long): 1500; IVR112_FUZZ_EXAMPLES overrides.
EXAMPLES = os.environ.get("IVR112_FUZZ_EXAMPLES") or ("1500" if os.environ.get("IVR112_CHAOS") == "long" else "150")
FUZZ = settings(max_examples=int(EXAMPLES), deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def _load_or_refuse(path: Path, text: str) -> str:
    """Load `text` as a plan; return "ok" or "refused" (with every problem placed)."""
    path.write_text(text, encoding="utf-8")
    try:
        load_plan(path)
    except PlanError as exc:
        assert exc.problems, "a PlanError with no problem in it"
        for problem in exc.problems:
            assert PLACED.match(str(problem)), f"problem without file:line:column: {problem!r}"
            assert str(problem).startswith(str(path)), problem
        return "refused"
    return "ok"


LINES = BASE.splitlines(keepends=True)
TOKENS = st.sampled_from([
    "", "~", "null", "[]", "{}", "-1", "0", "1e309", "-0.0", ".nan", "2026-13-45", "0x1F", "0o777", "true", "'", '"', "&a", "*a",
    "!!binary zz", "!!python/object:os.system", "{a: *b}", "<<: *x", "\t", "\x00", "\u202e", "ÿ" * 300, "9" * 400,
    "{queue: operators}", "{agency: nowhere}", '"1"', "[112, 112]", ":", "- ", "? ", "%YAML 1.1", "---", "...",
])


@st.composite
def text_mutants(draw: st.DrawFn) -> str:
    """Kotim's plan with a few lines deleted, doubled, cut, or a value replaced by junk."""
    lines = list(LINES)
    for _ in range(draw(st.integers(1, 4))):
        i = draw(st.integers(0, len(lines) - 1))
        op = draw(st.sampled_from(["delete", "double", "cut", "junk_value", "junk_line", "indent", "swap"]))
        if op == "delete":
            del lines[i]
        elif op == "double":
            lines.insert(i, lines[i])
        elif op == "cut":
            lines[i] = lines[i][: draw(st.integers(0, max(0, len(lines[i]) - 1)))] + "\n"
        elif op == "junk_value" and ":" in lines[i]:
            head = lines[i].split(":", 1)[0]
            lines[i] = f"{head}: {draw(TOKENS)}\n"
        elif op == "junk_line":
            lines.insert(i, draw(st.one_of(TOKENS, st.text(max_size=40))) + "\n")
        elif op == "indent":
            lines[i] = " " * draw(st.integers(0, 7)) + lines[i].lstrip(" ")
        elif op == "swap" and i + 1 < len(lines):
            lines[i], lines[i + 1] = lines[i + 1], lines[i]
        if not lines:
            break
    return "".join(lines)


@FUZZ
@given(text=text_mutants())
def test_a_plan_mangled_as_text_is_loaded_or_refused_with_placed_problems(tmp_path: Path, text: str) -> None:
    _load_or_refuse(tmp_path / "mutant.yaml", text)


# Structure: walk the parsed plan to one value and put something else of any type there.
JUNK: st.SearchStrategy[Any] = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=True), st.text(max_size=30),
              st.sampled_from(["112", "operators", "police", "main", "en", "id", "127.0.0.1", "999.1.1.1", "::1", "10.0.0.0/33"])),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=10), inner, max_size=4)),
    max_leaves=10,
)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, (*prefix, i))
    return out


DOC = yaml.safe_load(BASE)
PATHS = _paths(DOC)[1:]


@st.composite
def structure_mutants(draw: st.DrawFn) -> str:
    import copy

    doc = copy.deepcopy(DOC)
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(PATHS))
        parent = doc
        try:
            for step in path[:-1]:
                parent = parent[step]
            op = draw(st.sampled_from(["replace", "delete", "rename"]))
            if op == "delete":
                del parent[path[-1]]
            elif op == "rename" and isinstance(parent, dict):
                parent[draw(st.text(min_size=1, max_size=12))] = parent.pop(path[-1])
            else:
                parent[path[-1]] = draw(JUNK)
        except (KeyError, IndexError, TypeError):
            continue  # an earlier mutation took this path away
    return yaml.safe_dump(doc, allow_unicode=True, sort_keys=False)


@FUZZ
@given(text=structure_mutants())
def test_a_plan_with_values_of_the_wrong_kind_is_loaded_or_refused_with_placed_problems(tmp_path: Path, text: str) -> None:
    _load_or_refuse(tmp_path / "mutant.yaml", text)


@pytest.mark.parametrize(("name", "text", "says"), [
    ("billion_laughs", "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [" + ", ".join([f"*{chr(97 + i)}"] * 10) + "]\n" for i in range(9)), "values"),
    ("alias_loop", "service: &s [*s]\n", "alias"),
    ("deep_nesting", "service: " + "[" * 20000 + "]" * 20000 + "\n", "deep"),
    ("deep_compact_sequences", "service:\n" + "- " * 20000 + "x\n", "deep"),
    ("deep_block_mappings", "".join(" " * i + f"k{i}:\n" for i in range(100)) + " " * 100 + "x: 1\n", "deep"),
    ("bad_date", "service: {id: kotim, name: 2026-13-45}\n", "2026-13-45"),
    ("python_tag", "service: !!python/object/apply:os.system [id]\n", "mapping"),  # the tag is never run
    ("python_scalar", "service: !!python/name:os.system x\n", "constructor"),
    ("not_utf8", b"service: {name: \xff\xfe}\n", "UTF-8"),
    ("empty", "", ""),
    ("only_a_list", "- 1\n- 2\n", ""),
], ids=lambda v: v if isinstance(v, str) and len(v) < 20 else "")
def test_known_hostile_plans_are_refused_with_a_reason(tmp_path: Path, name: str, text: str | bytes, says: str) -> None:
    path = tmp_path / f"{name}.yaml"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    with pytest.raises(PlanError) as exc:
        load_plans([path])
    message = str(exc.value)
    assert PLACED.match(message.splitlines()[0]), message
    assert says in message, message
