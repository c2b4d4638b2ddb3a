"""The plan validator: each rule has a failing example with its message and position."""

from __future__ import annotations

from pathlib import Path

import pytest

from ivr.errors import PlanError
from ivr.plan import load_plan, parse_plan
from ivr.settings import PROJECT_DIR
from ivr.yamlsrc import load_yaml

GOOD = """\
service:
  id: t
  name: T
  numbers: ["112", "110"]
  languages: [id, en]
prompts:
  greeting:
    text: {id: Halo, en: Hello}
entry:
  greeting: [greeting]
  then: {queue: ops}
queues:
  ops: {strategy: ringall}
"""


def problems(text: str) -> list[str]:
    with pytest.raises(PlanError) as exc:
        parse_plan(load_yaml(text, "p.yaml"), "p.yaml")
    return [str(p) for p in exc.value.problems]


def test_the_default_kotim_plan_is_valid() -> None:
    plan = load_plan(PROJECT_DIR / "dialplans" / "kotim.yaml")
    assert plan.id == "kotim"
    assert "112" in plan.numbers
    assert plan.languages[0] == "id"


def test_a_good_plan_loads() -> None:
    plan = parse_plan(load_yaml(GOOD, "p.yaml"), "p.yaml")
    assert plan.numbers == ("112", "110")
    assert plan.default_queue.name == "ops"


def test_unknown_key_is_reported_with_its_line_and_column() -> None:
    text = GOOD.replace("  name: T\n", "  name: T\n  nmae: X\n")
    assert problems(text) == ["p.yaml:4:3: unknown key 'nmae' in service; expected one of: id, name, numbers, languages"]


def test_a_missing_prompt_text_for_a_service_language_is_refused() -> None:
    text = GOOD.replace("text: {id: Halo, en: Hello}", "text: {id: Halo}")
    assert problems(text) == [
        "p.yaml:8:11: prompt 'greeting' has no 'en' text; every prompt needs one per service language"
    ]


def test_a_reference_to_an_unknown_queue_names_the_known_ones() -> None:
    text = GOOD.replace("then: {queue: ops}", "then: {queue: opz}")
    assert problems(text) == [
        "p.yaml:11:17: entry.then leads to queue 'opz', which is not defined; known queue names: ops"
    ]


def test_112_must_be_answered() -> None:
    text = GOOD.replace('numbers: ["112", "110"]', 'numbers: ["110"]')
    assert problems(text) == ["p.yaml:4:12: service.numbers must include 112"]


def test_indonesian_comes_first() -> None:
    text = GOOD.replace("languages: [id, en]", "languages: [en, id]")
    assert problems(text) == ["p.yaml:5:14: Bahasa Indonesia comes first: start the list with 'id'"]


def test_every_problem_is_reported_in_one_pass() -> None:
    text = GOOD.replace("then: {queue: ops}", "then: {queue: opz}").replace("strategy: ringall", "strategy: roundrobin")
    found = problems(text)
    assert len(found) == 2
    assert any("strategy 'roundrobin' is unknown" in p for p in found)


def test_a_menu_without_a_no_input_rule_is_refused() -> None:
    text = GOOD.replace("then: {queue: ops}", "then: {menu: main}") + (
        "menus:\n  main:\n    prompts: [greeting]\n    options: {'1': {queue: ops}}\n    wrong_input: {queue: ops}\n"
    )
    assert problems(text) == [
        "p.yaml:15:3: menu 'main' has no no_input rule; add 'no_input: {queue: ...}' so a caller always reaches a person"
    ]


def test_an_option_that_starts_another_is_refused() -> None:
    text = GOOD.replace("then: {queue: ops}", "then: {menu: main}") + (
        "menus:\n  main:\n    prompts: [greeting]\n    options: {'1': {queue: ops}, '12': {queue: ops}}\n"
        "    no_input: {queue: ops}\n    wrong_input: {queue: ops}\n"
    )
    assert problems(text) == [
        "p.yaml:17:15: menu 'main': option '1' is the start of option '12', so a caller pressing '1' would wait "
        "for a second key; change one of them"
    ]


def test_broken_yaml_is_reported_with_its_position(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("service: {id: t\n")
    with pytest.raises(PlanError) as exc:
        load_plan(path)
    assert str(exc.value.problems[0]) == (f"{path}:1:10: not valid YAML: line 1 opens '{{' without a matching '}}' on that line, "
                                          "or an item lacks its comma; close it with '}' and separate items with ', '")


def test_a_duplicate_key_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "dup.yaml"
    path.write_text(GOOD + "queues:\n  x: {}\n")
    with pytest.raises(PlanError) as exc:
        load_plan(path)
    assert [str(p) for p in exc.value.problems] == [f"{path}:14:1: key 'queues' appears twice in this mapping; keep one"]
