"""The simulator drives the real call flow through a plan and tells the call in words."""

from __future__ import annotations

import dataclasses

import pytest

from ivr.plan import Plan, Target, load_plan, parse_plan
from ivr.settings import PROJECT_DIR
from ivr.simulate import MAX_EVENTS, SimulationError, all_paths, render_text, simulate
from ivr.yamlsrc import load_yaml

OPERATORS = Target("queue", "operators")


@pytest.fixture(scope="module")
def kotim() -> Plan:
    return load_plan(PROJECT_DIR / "dialplans/kotim.yaml")


@pytest.mark.parametrize(
    ("presses", "expected"),
    [
        (["1"], Target("agency", "police")),
        (["2"], Target("agency", "fire")),
        (["3"], Target("agency", "health")),
        (["4"], Target("agency", "sar")),
        (["5"], Target("agency", "disaster")),
        (["0"], OPERATORS),
        ([], OPERATORS),
        (["7", "7"], OPERATORS),
        (["9", "1"], Target("agency", "police")),
    ],
)
def test_each_choice_of_a_kotim_caller_reaches_the_right_people(kotim: Plan, presses: list[str], expected: Target) -> None:
    sim = simulate(kotim, dial="112", presses=presses)
    assert not sim.refused
    assert sim.destination == expected


def test_every_path_through_the_kotim_plan_ends_at_a_queue_or_an_agency(kotim: Plan) -> None:
    paths = dict(all_paths(kotim))
    assert all(target.reaches_person for target in paths.values())
    assert paths[("1",)] == Target("agency", "police")
    assert paths[("2",)] == Target("agency", "fire")
    assert paths[("3",)] == Target("agency", "health")
    assert paths[("4",)] == Target("agency", "sar")
    assert paths[("5",)] == Target("agency", "disaster")
    assert paths[("0",)] == OPERATORS
    assert paths[()] == OPERATORS
    assert paths[("9", "1")] == Target("agency", "police")
    wrong_twice = [keys for keys in paths if len(keys) == 2 and keys[0] == keys[1] and keys[0] not in kotim.menus["main"].options]
    assert wrong_twice and all(paths[keys] == OPERATORS for keys in wrong_twice)


def test_every_path_walked_by_all_paths_is_what_simulate_says(kotim: Plan) -> None:
    for presses, target in all_paths(kotim):
        assert simulate(kotim, dial="112", presses=presses).destination == target


def test_a_caller_pressing_1_hears_the_greeting_and_menu_then_reaches_the_police_trunks(kotim: Plan) -> None:
    sim = simulate(kotim, dial="112", presses=["1"])
    texts = [s.text for s in sim.steps]
    assert "plays [greeting] in id: «Layanan darurat satu satu dua, Kotawaringin Timur.»" in texts
    assert "caller presses 1" in texts
    assert sim.reason == "pressed 1"
    assert sim.language == "id"
    assert render_text(sim).splitlines()[-1] == (
        "→ agency police (Polres Kotawaringin Timur): trunks 127.0.0.1:5071 (placeholder), 127.0.0.1:5072 (placeholder); if none answers: queue operators"
    )
    assert render_text(sim).splitlines()[0].lstrip().startswith("1. call to 112")


def test_a_silent_caller_hears_the_silent_prompt_after_the_silent_recording_then_reaches_the_operators(kotim: Plan) -> None:
    sim = simulate(kotim, dial="110", presses=[])
    texts = [s.text for s in sim.steps if s.kind == "silence"]
    # Silent through the location question: straight to the silent-caller prompt, then a person.
    assert texts == ["the caller says nothing; the recording ends on silence", "no key within 8 s"]
    assert any("silent_help" in s.text for s in sim.steps if s.kind == "play")
    assert sim.reason == "silent caller"
    assert render_text(sim).splitlines()[-1].startswith("→ queue operators (reason: silent caller)")


def test_a_located_silent_caller_waits_once_through_the_menu_then_hears_the_silent_prompt(kotim: Plan) -> None:
    sim = simulate(kotim, dial="112", presses=[], located=True)
    texts = [s.text for s in sim.steps if s.kind == "silence"]
    assert texts == ["no key within 4 s", "no key within 8 s"]
    assert sim.reason == "silent caller"


def test_a_wrong_key_replays_the_menu_with_the_invalid_prompt_and_a_second_one_goes_to_the_operators(kotim: Plan) -> None:
    sim = simulate(kotim, dial="112", presses=["7", "7"])
    texts = [s.text for s in sim.steps]
    assert any(t.startswith("plays [invalid, main_menu] in id: «Pilihan tidak dikenal.»") for t in texts)
    assert [s.kind for s in sim.steps].count("wrong_input") == 2
    assert sim.reason == "wrong input"


def test_pressing_9_switches_to_english_and_the_menu_is_played_in_english(kotim: Plan) -> None:
    sim = simulate(kotim, dial="112", presses=["9", "1"])
    texts = [s.text for s in sim.steps]
    assert "switches to en" in texts
    assert any(t.startswith("plays [main_menu] in en: «Police, press one.") for t in texts)
    assert sim.language == "en"
    assert sim.destination == Target("agency", "police")


def test_a_call_started_in_english_hears_the_english_greeting(kotim: Plan) -> None:
    sim = simulate(kotim, dial="112", presses=[], language="en")
    assert "plays [greeting] in en: «Kotawaringin Timur emergency service, one one two.»" in [s.text for s in sim.steps]
    assert not any(" in id:" in s.text for s in sim.steps)


def test_a_number_the_plan_does_not_serve_is_refused_and_goes_nowhere(kotim: Plan) -> None:
    sim = simulate(kotim, dial="999", presses=["1"])
    assert sim.refused
    assert sim.destination is None
    assert "404" in render_text(sim)
    assert render_text(sim).splitlines()[-1].startswith("→ nowhere")


def test_keys_after_the_call_is_handed_over_are_reported_unused(kotim: Plan) -> None:
    sim = simulate(kotim, dial="112", presses=["12", "3"])
    assert sim.destination == Target("agency", "police")
    assert [s.kind for s in sim.steps].count("unused") == 2


def test_keys_that_are_not_on_a_phone_and_unknown_languages_are_refused_with_a_hint(kotim: Plan) -> None:
    with pytest.raises(SimulationError, match=r"0-9, \* and #"):
        simulate(kotim, dial="112", presses=["x"])
    with pytest.raises(SimulationError, match="id, en"):
        simulate(kotim, dial="112", presses=[], language="fr")


def test_a_plan_that_never_reaches_a_person_is_stopped_with_an_explanation(kotim: Plan) -> None:
    # Only an unvalidated plan can do this: silence leads back into the same menu for ever.
    main = dataclasses.replace(kotim.menus["main"], no_input=Target("menu", "main"))
    looping = dataclasses.replace(kotim, menus={"main": main})
    with pytest.raises(SimulationError, match=f"after {MAX_EVENTS} events"):
        simulate(looping, dial="112", presses=[])


NESTED = """
service: {id: t, name: T, numbers: ["112"], languages: [id, en]}
prompts:
  greeting: {text: {id: Halo, en: Hello}}
  main: {text: {id: Tekan satu, en: Press one}}
  sub: {text: {id: Pilih, en: Choose}}
entry: {greeting: [greeting], then: {menu: main}}
menus:
  main:
    prompts: [main]
    no_input_retries: 1
    options:
      "1": {menu: sub}
      "20": {queue: ops}
      "9": {language: en}
    no_input: {queue: ops}
    wrong_input: {queue: ops}
  sub:
    prompts: [sub]
    options:
      "1": {queue: police_q}
      "*": repeat
    no_input: {menu: main}
    wrong_input: {queue: ops}
queues: {ops: {}, police_q: {}}
"""


def test_every_path_of_a_plan_with_a_submenu_and_two_digit_options_ends_at_a_person() -> None:
    plan = parse_plan(load_yaml(NESTED, "t.yaml"), "t.yaml")
    paths = dict(all_paths(plan))
    assert all(target.reaches_person for target in paths.values())
    assert paths[("1", "1")] == Target("queue", "police_q")
    assert paths[("20",)] == Target("queue", "ops")
    assert paths[("1", "0", "1")] == Target("queue", "police_q")
    silent_once = simulate(plan, dial="112", presses=["", "1", "1"])
    assert [s.kind for s in silent_once.steps].count("silence") == 1
    assert silent_once.destination == Target("queue", "police_q")
    sim = simulate(plan, dial="112", presses=["2"])
    assert "no further key within 5 s" in [s.text for s in sim.steps]
    assert "wrong input 2 at menu main (attempt 1)" in [s.text for s in sim.steps]


def test_a_caller_who_keys_their_kecamatan_has_it_kept(kotim: Plan) -> None:
    number, name = next(iter(kotim.location.kecamatan.items()))
    sim = simulate(kotim, dial="112", presses=["1"], kecamatan=f"{number}#", carrier="lokal")
    text = render_text(sim)
    assert "through carrier lokal" in text and f"keeps Kecamatan {name} (keyed {number})" in text
    assert sim.destination == Target("agency", "police")


def test_a_silent_caller_who_presses_the_help_key_goes_urgent_to_the_operators(kotim: Plan) -> None:
    sim = simulate(kotim, dial="112", presses=[], silent_help=True)
    assert f"caller presses {kotim.silent.key} (the help key)" in render_text(sim)
    assert sim.destination == OPERATORS and sim.reason == "silent caller pressed the help key"


def test_a_carrier_the_plan_does_not_serve_is_refused_and_bad_kecamatan_keys_are_an_error(kotim: Plan) -> None:
    sim = simulate(kotim, dial="112", presses=[], carrier="telkomsel")
    assert sim.refused and "serves no carrier 'telkomsel'" in sim.reason
    with pytest.raises(SimulationError, match="cannot key kecamatan"):
        simulate(kotim, dial="112", presses=[], kecamatan="1a")
