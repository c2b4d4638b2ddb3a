"""Callers the menu treats apart: the silent caller and the prank-flagged number.

Functions of a `CallFlow` (ivr.menu), which calls them from its state table for the
SILENT_* and PRANK_* states; the theory of operation is in ivr.menu's docstring.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ivr.menu_events import Action, Digit, EndCall, Event, InputTimeout, Play, PromptDone, State, Step, StopPlayback, WaitDigits
from ivr.plan import Target

if TYPE_CHECKING:
    from ivr.menu import CallFlow


def entry_no_input(flow: CallFlow) -> Target:
    """Where silence leads from the entry: the first menu's no_input rule, or entry.then."""
    then = flow.plan.entry.then
    menu = flow.plan.menus.get(then.name) if then.kind == "menu" else None
    if menu is not None and menu.no_input is not None:
        return menu.no_input
    return then if then.kind in ("queue", "agency") else Target("queue", flow.plan.default_queue.name)


def silent_prompt(flow: CallFlow, target: Target) -> list[Action]:
    """Offer a caller who said and pressed nothing the silent prompt; silence leads to `target`."""
    if flow.person_free:
        return flow.to_person(flags=("silent",))
    flow.silent_target = target
    flow.state = State.SILENT_PROMPT
    flow.collected = ""
    return [Step("silent", {}), Play((flow.plan.silent.prompt,), flow.language, interruptible=True)]


def silent_event(flow: CallFlow, event: Event) -> list[Action]:
    """SILENT_PROMPT and SILENT_WAIT: the help key `presses` times, anything else, or nothing."""
    policy = flow.plan.silent
    target = flow.silent_target
    assert target is not None
    if isinstance(event, PromptDone) and flow.state is State.SILENT_PROMPT:
        flow.state = State.SILENT_WAIT
        return [WaitDigits(policy.timeout)]
    if isinstance(event, InputTimeout) and flow.state is State.SILENT_WAIT:
        return flow.go(target, "silent caller", flags=("silent",))
    if not isinstance(event, Digit):
        return []
    stop: list[Action] = [StopPlayback()] if flow.state is State.SILENT_PROMPT else []
    flow.state = State.SILENT_WAIT
    flow.collected += event.digit
    wanted = policy.key * policy.presses
    if flow.collected == wanted:
        return [*stop, Step("silent_help", {"digits": flow.collected}),
                *flow.go(target, "silent caller pressed the help key", priority="urgent", flags=("silent_needs_help",))]
    if wanted.startswith(flow.collected):
        return [*stop, WaitDigits(policy.timeout)]
    return [*stop, *flow.go(target, f"pressed {flow.collected} at the silent prompt")]


def prank_warning(flow: CallFlow, *, first: bool) -> list[Action]:
    """Warn a prank-flagged number (again); `first` starts counting the warnings."""
    flow.state = State.PRANK_PROMPT
    if first:
        flow.attempts = 0
    return [Step("prank_warning", {"attempt": str(flow.attempts + 1)}),
            Play((flow.plan.prank.prompt,), flow.language, interruptible=True)]


def prank_event(flow: CallFlow, event: Event) -> list[Action]:
    """PRANK_PROMPT and PRANK_WAIT: the key reaches an operator at low priority; no key, twice, ends the call."""
    policy = flow.plan.prank
    if isinstance(event, Digit):
        if event.digit != policy.key:
            return []
        stop: list[Action] = [StopPlayback()] if flow.state is State.PRANK_PROMPT else []
        target = Target("queue", flow.plan.default_queue.name)
        return [*stop, *flow.go(target, "prank-flagged number pressed the key", priority="low", flags=("prank_flagged",))]
    if isinstance(event, PromptDone) and flow.state is State.PRANK_PROMPT:
        flow.state = State.PRANK_WAIT
        return [WaitDigits(policy.timeout)]
    if isinstance(event, InputTimeout) and flow.state is State.PRANK_WAIT:
        flow.attempts += 1
        if flow.attempts < 2:
            return prank_warning(flow, first=False)
        flow.state = State.ENDED
        return [Step("prank_no_key", {}), EndCall("prank-flagged number pressed no key after two warnings")]
    return []

# Operators first ---------------------------------------------------------------------
