"""Operators first (plan `operators_first:`), pure: a free operator takes a caller out of the IVR."""

from __future__ import annotations

from ivr.menu import CallFlow
from ivr.menu_events import (
    Digit,
    PersonFree,
    PromptDone,
    RecordingDone,
    Route,
    State,
    Step,
    StopPlayback,
    StopRecording,
)
from ivr.plan import parse_plan
from ivr.yamlsrc import load_yaml

PLAN = """
service: {id: t, name: T, numbers: ["112"], languages: [id, en]}
prompts:
  greeting: {text: {id: Halo, en: Hello}}
  main: {text: {id: Tekan satu, en: Press one}}
  where: {text: {id: Di mana, en: Where}}
  silent: {text: {id: Tekan lima, en: Press five}}
  warn: {text: {id: Jangan, en: Do not}}
  sub: {text: {id: Sub, en: Sub}}
entry: {greeting: [greeting], then: {menu: main}}
location: {ask_prompt: where, record_seconds: 10}
silent: {prompt: silent}
prank: {prompt: warn}
operators_first: OPERATORS_FIRST
menus:
  main:
    prompts: [main]
    timeout: 4
    options:
      "1": {agency: police}
      "0": {queue: ops}
      "3": {menu: sub}
      "20": {queue: ops}
    no_input: {queue: ops}
    wrong_input: {queue: ops}
  sub:
    prompts: [sub]
    options: {"1": {queue: ops}}
    no_input: {queue: ops}
    wrong_input: {queue: ops}
agencies:
  police: {trunks: [{host: 127.0.0.1, port: 5071, number: "110"}], on_failure: {queue: ops}}
queues: {ops: {}}
"""


def flow(operators_first: str = "true", *, prank: bool = False) -> CallFlow:
    text = PLAN.replace("OPERATORS_FIRST", operators_first)
    return CallFlow(parse_plan(load_yaml(text, "t.yaml"), "t.yaml"), prank=prank)


def person(actions: list[object]) -> Route | None:
    return next((a for a in actions if isinstance(a, Route) and a.reason == "an operator is free"), None)


def test_a_caller_told_an_operator_is_free_during_the_greeting_hears_it_to_the_end_then_goes_to_the_operator() -> None:
    f = flow()
    f.start()
    assert f.may_take_person
    noted = f.handle(PersonFree())
    assert noted == [Step("operator_free", {"state": "greeting"})] and f.state is State.GREETING
    route = person(f.handle(PromptDone()))
    assert route is not None and str(route.target) == "queue:ops" and f.state is State.ROUTED
    assert not f.may_take_person  # promised once


def test_a_key_for_an_agency_during_the_greeting_still_goes_to_the_agency() -> None:
    f = flow()
    f.start()
    f.handle(PersonFree())
    actions = f.handle(Digit("1"))
    assert [str(a.target) for a in actions if isinstance(a, Route)] == ["agency:police"]


def test_a_caller_asked_where_they_are_or_recording_is_taken_out_at_once_and_what_was_said_is_kept() -> None:
    f = flow()
    f.start()
    f.handle(PromptDone())
    assert f.state is State.ASK_LOCATION
    actions = f.handle(PersonFree())
    assert actions[0] == StopPlayback() and person(actions) is not None

    g = flow()
    g.start()
    g.handle(PromptDone())
    g.handle(PromptDone())
    assert g.state is State.RECORDING
    actions = g.handle(PersonFree())
    assert actions[0] == StopRecording() and person(actions) is not None
    assert g.handle(RecordingDone(talked=True)) == []  # its end comes later; the route stands


def test_a_silent_caller_at_the_help_prompt_goes_to_the_free_operator_flagged_silent() -> None:
    f = flow()
    f.start()
    f.handle(PromptDone())
    f.handle(PromptDone())
    f.handle(RecordingDone(talked=False))
    assert f.state is State.SILENT_PROMPT
    actions = f.handle(PersonFree())
    route = person(actions)
    assert actions[0] == StopPlayback() and route is not None and route.flags == ("silent",)


def test_halfway_through_an_option_the_caller_finishes_first() -> None:
    f = flow()
    f.start()
    f.handle(Digit("2"))  # the start of "20": waiting for the second key
    assert f.state is State.MENU_WAIT and not f.may_take_person
    assert f.handle(PersonFree()) == []


def test_only_the_menus_the_plan_lets_go_are_cut_short() -> None:
    kept = flow("{menus: [sub]}")
    kept.start()
    kept.handle(Digit("4"))  # not an option: the main menu is replayed
    assert kept.state is State.MENU_PROMPT and kept.menu is not None and kept.menu.name == "main"
    assert not kept.may_take_person and kept.handle(PersonFree()) == []
    sub = flow("{menus: [sub]}")
    sub.start()
    sub.handle(Digit("3"))
    assert sub.state is State.MENU_PROMPT and sub.menu is not None and sub.menu.name == "sub"
    assert sub.may_take_person and person(sub.handle(PersonFree())) is not None


def test_off_by_plan_or_for_a_prank_flagged_number_nothing_changes() -> None:
    f = flow("false")
    f.start()
    assert not f.may_take_person and f.handle(PersonFree()) == []
    g = flow(prank=True)
    g.start()
    assert g.state is State.PRANK_PROMPT and not g.may_take_person and g.handle(PersonFree()) == []


def test_a_noted_operator_takes_a_caller_who_keyed_a_wrong_option_instead_of_the_replay() -> None:
    f = flow()
    f.start()
    f.handle(PersonFree())
    f.handle(Digit("7"))  # not an option: the menu would be replayed
    assert f.state is State.ROUTED and f.route is not None and f.route.reason == "an operator is free"
