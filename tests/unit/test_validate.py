"""Rules joining a plan's parts: each has a failing example with its exact message and place."""

from __future__ import annotations

from pathlib import Path

import pytest

from ari_app.cli import main
from ivr.errors import PlanError
from ivr.plan import load_plans, parse_plan
from ivr.settings import PROJECT_DIR
from ivr.yamlsrc import load_yaml

BASE = """\
service: {id: t, name: T, numbers: ["112"], languages: [id]}
prompts:
  hello: {text: {id: Halo}}
entry: {greeting: [hello], then: {menu: main}}
queues:
  ops: {}
agencies:
  police:
    trunks: [{host: 127.0.0.1, port: 5071, number: "110"}]
    on_failure: {queue: ops}
menus:
  main:
    prompts: [hello]
    options: {"1": {agency: police}, "2": {menu: second}}
    no_input: {queue: ops}
    wrong_input: {queue: ops}
  second:
    prompts: [hello]
    options: {"1": {queue: ops}}
    no_input: {queue: ops}
    wrong_input: {queue: ops}
"""


def problems(text: str) -> list[str]:
    with pytest.raises(PlanError) as exc:
        parse_plan(load_yaml(text, "p.yaml"), "p.yaml")
    return [str(p) for p in exc.value.problems]


def test_the_base_plan_is_sound() -> None:
    plan = parse_plan(load_yaml(BASE, "p.yaml"), "p.yaml")
    assert list(plan.menus) == ["main", "second"]


def test_an_unknown_agency_names_the_known_ones() -> None:
    assert problems(BASE.replace('"1": {agency: police}', '"1": {agency: polisi}')) == [
        "p.yaml:14:29: menu 'main' option 1 leads to agency 'polisi', which is not defined; known agency names: police"
    ]


def test_an_unreachable_menu_is_refused() -> None:
    assert problems(BASE.replace(', "2": {menu: second}', "")) == [
        "p.yaml:17:3: menu 'second' is never reached from entry.then; link it from a menu option or remove it"
    ]


def test_silence_going_round_menus_for_ever_is_refused() -> None:
    main_rules = "    no_input: {queue: ops}\n    wrong_input: {queue: ops}\n  second:"
    text = BASE.replace(main_rules, main_rules.replace("no_input: {queue: ops}", "no_input: {menu: second}"))
    text = text.replace('options: {"1": {queue: ops}}\n    no_input: {queue: ops}', 'options: {"1": {queue: ops}}\n    no_input: {menu: main}')
    assert problems(text) == [
        "p.yaml:12:3: a caller at menu 'main' who gives no input goes round main -> second -> main for ever; "
        "make one no_input lead to a queue or an agency"
    ]


def test_a_no_input_rule_must_reach_a_person() -> None:
    main_rules = "    no_input: {queue: ops}\n    wrong_input: {queue: ops}\n  second:"
    assert problems(BASE.replace(main_rules, main_rules.replace("no_input: {queue: ops}", "no_input: repeat"))) == [
        "p.yaml:15:15: menu 'main' no_input must end at a person (a queue, an agency or another menu), not repeat"
    ]


def test_an_agency_without_on_failure_is_refused() -> None:
    assert problems(BASE.replace("    on_failure: {queue: ops}\n", "")) == [
        "p.yaml:8:3: agency 'police' has no on_failure rule; add 'on_failure: {queue: operators}' so a caller whose agency does not answer reaches a person"
    ]


def test_agencies_failing_over_in_a_circle_are_refused() -> None:
    fire = "  fire:\n    trunks: [{host: 127.0.0.1, port: 5073, number: '113'}]\n    on_failure: {agency: police}\n"
    text = BASE.replace("    on_failure: {queue: ops}\n", "    on_failure: {agency: fire}\n" + fire)
    found = problems(text)
    assert "p.yaml:8:3: agencies fail over in a circle (police -> fire -> police); end the chain at a queue" in found


def test_a_queue_overflowing_to_itself_is_refused() -> None:
    assert problems(BASE.replace("  ops: {}", "  ops: {overflow: {after: 60, to: {queue: ops}}}")) == [
        "p.yaml:6:43: queue 'ops' overflows to itself; name another queue or a backup centre's agency"
    ]


def test_a_bad_trunk_is_reported_field_by_field() -> None:
    found = problems(BASE.replace('{host: 127.0.0.1, port: 5071, number: "110"}', '{host: "a b", port: 70000, number: "1x0"}'))
    assert found == [
        "p.yaml:9:21: agency 'police': trunk host 'a b' must be an address or host name",
        "p.yaml:9:49: agency 'police': number to dial '1x0' must be digits (with + * #)",
        "p.yaml:9:34: 'port' must be between 1 and 65535, found 70000",
    ]


def _write(tmp: Path, name: str, text: str) -> Path:
    path = tmp / name
    path.write_text(text)
    return path


def test_two_plans_with_one_id_are_refused(tmp_path: Path) -> None:
    a = _write(tmp_path, "a.yaml", BASE)
    b = _write(tmp_path, "b.yaml", BASE)
    with pytest.raises(PlanError) as exc:
        load_plans([a, b])
    assert [str(p) for p in exc.value.problems] == [f"{b}:1:1: plan id 't' is also used by {a}; give each plan its own service.id"]


def test_two_plans_side_by_side_need_distinct_carrier_addresses(tmp_path: Path) -> None:
    a = _write(tmp_path, "a.yaml", BASE + "carriers: [{name: telkomsel, match: [10.1.0.0/16]}]\n")
    b = _write(tmp_path, "b.yaml", BASE.replace("id: t,", "id: u,") + "carriers: [{name: indosat, match: [10.1.2.0/24]}]\n")
    with pytest.raises(PlanError) as exc:
        load_plans([a, b])
    assert [str(p) for p in exc.value.problems] == [
        f"{b}:22:28: carrier 'indosat' matches 10.1.2.0/24, which carrier 'telkomsel' also matches (10.1.0.0/16, at {a}:22:30); "
        "a source address must name one carrier"
    ]
    c = _write(tmp_path, "c.yaml", BASE.replace("id: t,", "id: u,") + "carriers: [{name: indosat, match: [10.2.0.0/16]}]\n")
    assert [p.id for p in load_plans([a, c]).plans] == ["t", "u"]


def test_validate_command_prints_each_problem_and_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = _write(tmp_path, "bad.yaml", BASE.replace('"1": {agency: police}', '"1": {agency: polisi}').replace("  ops: {}", "  ops: {strategy: roundrobin}"))
    assert main(["validate", str(bad)]) == 1
    out = capsys.readouterr()
    assert out.out.splitlines() == [
        f"{bad}:6:19: queue 'ops': strategy 'roundrobin' is unknown; use one of ringall, leastrecent, fewestcalls, random, rrmemory, linear, wrandom",
        f"{bad}:14:29: menu 'main' option 1 leads to agency 'polisi', which is not defined; known agency names: police",
    ]
    assert "2 problem(s); nothing was changed" in out.err
    good = _write(tmp_path, "good.yaml", BASE)
    assert main(["validate", str(good)]) == 0
    assert "ok: plan 't'" in capsys.readouterr().out


def test_a_carrier_clash_between_two_plans_is_reported_at_the_match_line_to_fix(tmp_path: Path) -> None:
    """Not at kotim.yaml:1:1: the engineer adding a second regency looks for the carrier's line."""
    a = PROJECT_DIR / "dialplans" / "kotim.yaml"
    second = (a.read_text().replace("id: kotim", "id: seruyan").replace("name: lokal", "name: telkomsel")
              .replace("boundaries: kotim-kecamatan.geojson", f"boundaries: {a.parent / 'kotim-kecamatan.geojson'}"))
    b = _write(tmp_path, "seruyan.yaml", second)
    match_line = 1 + second.splitlines().index("    match: [127.0.0.0/8]")
    with pytest.raises(PlanError) as exc:
        load_plans([a, b])
    assert [str(p) for p in exc.value.problems] == [
        f"{b}:{match_line}:5: carrier 'telkomsel' matches 127.0.0.0/8, which carrier 'lokal' also matches (127.0.0.0/8, at {a}:{match_line}:5); "
        "a source address must name one carrier"
    ]
