"""The call flow, pure: events in, actions out (no Asterisk)."""

from __future__ import annotations

from ivr.menu import CallFlow, Digit, HungUp, InputTimeout, Play, PromptDone, Route, State, StopPlayback, WaitDigits
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
