"""The call flow, pure: events in, actions out (no Asterisk)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ivr.errors import PlanError
from ivr.menu import CallFlow
from ivr.menu_events import (
    ANNOUNCEMENT,
    Digit,
    EndCall,
    HungUp,
    InputTimeout,
    KecamatanChosen,
    LocationGood,
    Play,
    PromptDone,
    RecordingDone,
    RecordVoice,
    Route,
    Spoke,
    State,
    Step,
    StopPlayback,
    WaitDigits,
)
from ivr.plan import parse_plan
from ivr.yamlsrc import load_yaml

PLAN = """
service: {id: t, name: T, numbers: ["112"], languages: [id, en]}
prompts:
  greeting: {text: {id: Halo, en: Hello}}
  main: {text: {id: Tekan satu, en: Press one}}
  again: {text: {id: Ulangi, en: Again}}
entry: {greeting: [greeting], then: {menu: main}}
menus:
  main:
    prompts: [main]
    retry_prompts: [again]
    timeout: 4
    no_input_retries: 1
    wrong_input_retries: 1
    options:
      "1": {queue: police_q}
      "20": {queue: ops}
      "9": {language: en}
    no_input: {queue: ops}
    wrong_input: {queue: ops}
queues: {ops: {}, police_q: {}}
"""


def flow() -> CallFlow:
    return CallFlow(parse_plan(load_yaml(PLAN, "t.yaml"), "t.yaml"))


def routes(actions: list[object]) -> list[str]:
    return [str(a.target) for a in actions if isinstance(a, Route)]


def test_the_greeting_plays_first_and_can_be_interrupted_when_a_menu_follows() -> None:
    f = flow()
    assert f.start() == [Play(("greeting",), "id", interruptible=True)]


def test_silence_replays_the_menu_then_reaches_the_operators() -> None:
    f = flow()
    f.start()
    actions = f.handle(PromptDone())
    assert Play(("main",), "id", interruptible=True) in actions
    assert f.handle(PromptDone()) == [WaitDigits(4)]
    replay = f.handle(InputTimeout())
    assert Play(("again", "main"), "id", interruptible=True) in replay
    f.handle(PromptDone())
    assert routes(f.handle(InputTimeout())) == ["queue:ops"]
    assert f.state is State.ROUTED


def test_a_digit_during_the_menu_prompt_stops_it_and_counts() -> None:
    f = flow()
    f.start()
    f.handle(PromptDone())
    actions = f.handle(Digit("2"))
    assert actions[0] == StopPlayback()
    # "2" is the start of "20": wait for the next digit before deciding.
    assert actions[-1] == WaitDigits(4)
    assert routes(f.handle(InputTimeout())) == []  # unfinished entry is wrong input once: replay
    f.handle(PromptDone())
    f.handle(Digit("2"))
    assert routes(f.handle(Digit("0"))) == ["queue:ops"]


def test_pressing_one_routes_at_once() -> None:
    f = flow()
    f.start()
    f.handle(PromptDone())
    assert routes(f.handle(Digit("1"))) == ["queue:police_q"]


def test_barge_in_during_the_greeting_enters_the_menu_with_that_digit() -> None:
    f = flow()
    f.start()
    actions = f.handle(Digit("9"))
    assert actions[0] == StopPlayback()
    assert f.language == "en"
    # The switch replays the menu in English; before it, the menu was not played in Indonesian.
    assert [a for a in actions if isinstance(a, Play)] == [Play(("main",), "en", interruptible=True)]


def test_a_digit_during_the_greeting_routes_without_playing_the_menu() -> None:
    f = flow()
    f.start()
    actions = f.handle(Digit("1"))
    assert not any(isinstance(a, Play) for a in actions)
    assert routes(actions) == ["queue:police_q"]


def test_wrong_digits_twice_reach_the_operators() -> None:
    f = flow()
    f.start()
    f.handle(PromptDone())
    f.handle(PromptDone())
    assert routes(f.handle(Digit("5"))) == []
    f.handle(PromptDone())
    assert routes(f.handle(Digit("5"))) == ["queue:ops"]


def test_a_late_prompt_done_after_routing_and_a_hang_up_are_ignored() -> None:
    f = flow()
    f.start()
    f.handle(PromptDone())
    f.handle(PromptDone())
    assert routes(f.handle(Digit("1"))) == ["queue:police_q"]
    assert f.handle(PromptDone()) == []
    assert f.handle(Digit("1")) == []
    assert f.handle(HungUp()) == []
    assert f.state is State.ENDED
    assert f.handle(PromptDone()) == []


# Where is the caller: the question, the recording, and the kecamatan by keypad -------------

SQUARE = '{"type": "FeatureCollection", "features": [%s]}'
FEATURE = ('{"type": "Feature", "properties": {"kecamatan": "%s"}, "geometry": {"type": "Polygon", '
           '"coordinates": [[[%d, 0], [%d, 0], [%d, 1], [%d, 1], [%d, 0]]]}}')


def located_flow(tmp_path: Path, extra: str = "") -> CallFlow:
    names = ["Baamang", "Seranau", "Cempaga"] + [f"K{i}" for i in range(4, 13)]
    (tmp_path / "k.geojson").write_text(SQUARE % ", ".join(FEATURE % (n, i, i + 1, i + 1, i, i) for i, n in enumerate(names)))
    numbers = "".join(f'\n    "{i + 1}": {n}' for i, n in enumerate(names))
    text = PLAN.replace("  again:", "  where: {text: {id: Di mana, en: Where}}\n  kec: {text: {id: Kecamatan, en: District}}\n  again:")
    text += f"location:\n  boundaries: k.geojson\n  ask_prompt: where\n  kecamatan_prompt: kec\n  kecamatan_timeout: 3\n  kecamatan:{numbers}\n{extra}"
    source = str(tmp_path / "t.yaml")
    return CallFlow(parse_plan(load_yaml(text, source), source))


def to_kecamatan_list(f: CallFlow) -> list[object]:
    f.start()
    asked = f.handle(PromptDone())
    assert f.state is State.ASK_LOCATION and [a.prompts for a in asked if isinstance(a, Play)] == [("where",)]
    assert next(a for a in asked if isinstance(a, Play)).beep_after
    assert any(isinstance(a, RecordVoice) for a in f.handle(PromptDone()))
    return f.handle(RecordingDone())


def test_after_the_recording_the_kecamatan_list_plays_once_and_a_number_is_kept(tmp_path: Path) -> None:
    f = located_flow(tmp_path)
    offered = to_kecamatan_list(f)
    assert [a.prompts for a in offered if isinstance(a, Play)] == [("kec",)]
    # "1" may be the start of 10, 11, 12: the flow waits for a second key.
    assert f.handle(Digit("1")) == [StopPlayback(), WaitDigits(3)]
    actions = f.handle(Digit("2"))
    assert KecamatanChosen("K12", "12") in actions
    assert f.state is State.MENU_PROMPT and f.menu is not None and f.menu.name == "main"


def test_a_short_number_ends_with_hash_or_the_timeout(tmp_path: Path) -> None:
    f = located_flow(tmp_path)
    to_kecamatan_list(f)
    f.handle(Digit("1"))
    assert KecamatanChosen("Baamang", "1") in f.handle(Digit("#"))
    g = located_flow(tmp_path)
    to_kecamatan_list(g)
    g.handle(PromptDone())
    g.handle(Digit("1"))
    assert KecamatanChosen("Baamang", "1") in g.handle(InputTimeout())


def test_silence_or_an_unknown_number_goes_on_to_the_menu_without_a_second_pass(tmp_path: Path) -> None:
    f = located_flow(tmp_path)
    to_kecamatan_list(f)
    assert f.handle(PromptDone()) == [WaitDigits(3)]
    after = f.handle(InputTimeout())
    assert not any(isinstance(a, KecamatanChosen) for a in after) and f.state is State.MENU_PROMPT
    g = located_flow(tmp_path)
    to_kecamatan_list(g)
    after = g.handle(Digit("0"))
    assert Step("kecamatan_skipped", {"digits": "0"}) in after and g.state is State.MENU_PROMPT


def test_a_good_position_skips_the_question_and_the_list(tmp_path: Path) -> None:
    f = located_flow(tmp_path)
    f.handle(LocationGood())
    f.start()
    f.handle(PromptDone())
    assert f.state is State.MENU_PROMPT


def test_a_kecamatan_not_in_the_boundaries_is_refused_with_its_line(tmp_path: Path) -> None:
    with pytest.raises(PlanError) as err:
        located_flow(tmp_path, '    "13": Atlantis\n')
    assert "t.yaml:" in str(err.value) and "'Atlantis' is not a kecamatan in k.geojson" in str(err.value)


# Silent callers and prank-flagged numbers ------------------------------------------------

SILENT_PRANK = """
  help: {text: {id: Tekan lima dua kali, en: Press five twice}}
  warn: {text: {id: Panggilan iseng, en: Prank calls}}
  again:"""


def special_flow(*, prank: bool = False) -> CallFlow:
    text = PLAN.replace("\n  again:", SILENT_PRANK, 1)
    text += 'silent: {prompt: help, key: "5", presses: 2, timeout: 6}\nprank: {prompt: warn, key: "0", timeout: 5}\n'
    return CallFlow(parse_plan(load_yaml(text, "t.yaml"), "t.yaml"), prank=prank)


def to_silent_prompt(f: CallFlow) -> list[object]:
    f.start()
    f.handle(PromptDone())  # greeting
    f.handle(PromptDone())  # menu
    f.handle(InputTimeout())  # replayed once (no_input_retries: 1)
    f.handle(PromptDone())
    return f.handle(InputTimeout())


def test_a_caller_silent_through_the_menu_hears_the_silent_prompt_and_five_twice_routes_urgent() -> None:
    f = special_flow()
    actions = to_silent_prompt(f)
    assert [a.prompts for a in actions if isinstance(a, Play)] == [("help",)] and f.state is State.SILENT_PROMPT
    assert f.handle(Digit("5")) == [StopPlayback(), WaitDigits(6)]
    route = [a for a in f.handle(Digit("5")) if isinstance(a, Route)]
    assert route[0].target.name == "ops" and route[0].priority == "urgent" and route[0].flags == ("silent_needs_help",)


def test_a_silent_caller_who_presses_nothing_still_reaches_a_person_never_a_hang_up() -> None:
    f = special_flow()
    to_silent_prompt(f)
    f.handle(PromptDone())
    route = [a for a in f.handle(InputTimeout()) if isinstance(a, Route)]
    assert route[0].target.name == "ops" and route[0].priority == "normal" and route[0].flags == ("silent",)


def test_a_caller_who_spoke_or_pressed_is_not_taken_for_silent() -> None:
    f = special_flow()
    f.handle(Spoke())
    assert routes(to_silent_prompt(f)) == ["queue:ops"] and f.route is not None and f.route.reason == "no input"


def test_a_silent_location_recording_goes_straight_to_the_silent_prompt(tmp_path: Path) -> None:
    f = located_flow(tmp_path, 'silent: {prompt: where, key: "5"}\n')
    f.start()
    f.handle(PromptDone())
    f.handle(PromptDone())
    actions = f.handle(RecordingDone(talked=False))
    assert f.state is State.SILENT_PROMPT and Step("silent", {}) in actions


def test_a_prank_flagged_number_is_warned_and_zero_reaches_the_operators_at_low_priority() -> None:
    f = special_flow(prank=True)
    first = f.start()
    assert [a.prompts for a in first if isinstance(a, Play)] == [("warn",)]
    assert f.handle(Digit("7")) == []  # only the plan's key counts
    route = [a for a in f.handle(Digit("0")) if isinstance(a, Route)]
    assert route[0].priority == "low" and route[0].target.name == "ops"


def test_a_prank_flagged_number_that_presses_nothing_is_warned_twice_then_the_call_ends() -> None:
    f = special_flow(prank=True)
    f.start()
    f.handle(PromptDone())
    again = f.handle(InputTimeout())
    assert [a.prompts for a in again if isinstance(a, Play)] == [("warn",)]
    f.handle(PromptDone())
    assert any(isinstance(a, EndCall) for a in f.handle(InputTimeout()))
    assert f.route is None


def test_a_major_incident_message_plays_after_the_greeting_and_any_key_skips_it() -> None:
    f = CallFlow(parse_plan(load_yaml(PLAN, "t.yaml"), "t.yaml"), announcement=True)
    f.start()
    played = f.handle(PromptDone())
    assert [a.prompts for a in played if isinstance(a, Play)] == [(ANNOUNCEMENT,)] and f.state is State.ANNOUNCEMENT
    # The key is not taken as a menu choice: the caller goes on to the menu.
    after = f.handle(Digit("1"))
    assert after[0] == StopPlayback() and f.state is State.MENU_PROMPT and f.route is None
    g = CallFlow(parse_plan(load_yaml(PLAN, "t.yaml"), "t.yaml"), announcement=True)
    g.start()
    g.handle(PromptDone())
    g.handle(PromptDone())
    assert g.state is State.MENU_PROMPT
