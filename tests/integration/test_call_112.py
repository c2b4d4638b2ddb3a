"""A real Asterisk answers 112: SIPp callers, SIPp operators, the app over ARI."""

from __future__ import annotations

import re
from datetime import datetime

import pytest

from ivr import prompts
from ivr.plan import load_plans
from tests.integration.stack import Stack, sipp_args, wait_for

pytestmark = pytest.mark.asterisk


def _prompt_seconds(stack: Stack, names: tuple[str, ...]) -> float:
    plans = load_plans(stack.settings.plan_paths)
    plan = plans.default
    files = {(f.name, f.language): f for f in prompts.require(plans.plans, stack.settings.data_path)}
    return sum(prompts.duration(files[(p, plan.default_language)].path) for p in names)


def _greeting_seconds(stack: Stack) -> float:
    return _prompt_seconds(stack, load_plans(stack.settings.plan_paths).default.entry.greeting)


def _silence_to_queue_seconds(stack: Stack) -> float:
    """The least a caller who says nothing spends before the queue: greeting, the question
    where they are (no position came with the call), one pass of the main menu and its
    timeout. (The recording after the question may end at once: SIPp sends no audio.)"""
    plan = load_plans(stack.settings.plan_paths).default
    menu = plan.menus[plan.entry.then.name]
    ask = _prompt_seconds(stack, (plan.location.ask_prompt,))
    return _greeting_seconds(stack) + ask + _prompt_seconds(stack, menu.prompts) + menu.timeout


def _seconds(a: str, b: str) -> float:
    return (datetime.fromisoformat(b) - datetime.fromisoformat(a)).total_seconds()


def _from_users(operator_logs: str) -> list[str]:
    return re.findall(r"INVITE-FROM-USER=(\S*)", operator_logs)


def test_a_silent_caller_hears_the_greeting_and_menu_then_reaches_an_operator_with_their_number(live: Stack) -> None:
    caller = "081250001112"
    greeting = _silence_to_queue_seconds(live)
    port = live.sipp_port()
    live.register_operator("operator1", port)
    operator = live.sipp("answer", port=port, background=True, timeout=60)
    call = live.sipp("caller", *sipp_args(("caller", caller)), "-s", "112", "-d", str(int((greeting + 6) * 1000)), timeout=60)
    assert call.returncode == 0, call.report()
    assert operator.wait() == 0, operator.report()
    assert _from_users(operator.logs()) == [caller]

    incident = wait_for("the incident to be closed", lambda: (i := live.incident_for(caller)) and i.ended_at and i)
    assert incident.called_number == "112"
    assert incident.answered_at and incident.queued_at
    assert incident.route == "queue:operators"
    assert incident.fallback == 0
    # The app moved the call on only after the prompts' PlaybackFinished and the menu timeout.
    assert _seconds(incident.answered_at, incident.queued_at) >= greeting - 0.5
    events = live.incident_events(incident.id)
    kinds = [e.kind for e in events]
    # No position came with the call: the caller was asked where they are, then the menu.
    # (SIPp sends no audio, so Asterisk may end that recording as failed: no audio at all.)
    assert kinds[:4] == ["prompt", "ask_location", "prompt", "recording_started"]
    assert kinds[4] in ("recording", "recording_failed")
    assert kinds[5:] == ["menu", "prompt", "no_input", "route"]
    assert events[-1].detail == {"target": "queue:operators", "reason": "no input"}
    # The API shows the same incident to the console.
    assert live.api(f"/api/incidents/{incident.id}")["caller_number"] == caller


def test_a_legacy_short_code_is_answered_too(live: Stack) -> None:
    caller = "081250001110"
    call = live.sipp("caller", *sipp_args(("caller", caller)), "-s", "110", "-d", "2000", timeout=30)
    assert call.returncode == 0, call.report()
    incident = wait_for("the incident", lambda: live.incident_for(caller))
    assert incident.called_number == "110"
    assert incident.answered_at


def test_a_number_the_service_does_not_answer_is_refused_with_404(live: Stack) -> None:
    caller = "081250009999"
    call = live.sipp("caller_refused", *sipp_args(("caller", caller)), "-s", "999", timeout=15)
    assert call.returncode == 0, call.report()
    assert live.incident_for(caller) is None


def test_with_the_app_stopped_112_still_reaches_an_operator(live: Stack) -> None:
    caller = "081250000911"
    live.app_stop()
    try:
        assert live.health() == {}
        greeting = _greeting_seconds(live)
        port = live.sipp_port()
        live.register_operator("operator1", port)
        operator = live.sipp("answer", port=port, background=True, timeout=60)
        call = live.sipp("caller", *sipp_args(("caller", caller)), "-s", "112", "-d", str(int((greeting + 6) * 1000)), timeout=60)
        assert call.returncode == 0, call.report()
        assert operator.wait() == 0, operator.report()
        assert _from_users(operator.logs()) == [caller]
        # The app was down: nothing of this call went through it.
        assert live.incident_for(caller) is None
    finally:
        live.app_start()
