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


def _silence_to_queue_seconds(stack: Stack) -> tuple[float, float]:
    """The least and the most a caller who says and presses nothing spends before the queue:
    greeting, the question where they are (no position came with the call), the recording
    (3 s at most in the test plan; SIPp sends no audio, so Asterisk hears no words in it),
    then the silent-caller prompt and its wait."""
    plan = load_plans(stack.settings.plan_paths).default
    least = (_greeting_seconds(stack) + _prompt_seconds(stack, (plan.location.ask_prompt,))
             + _prompt_seconds(stack, (plan.silent.prompt,)) + plan.silent.timeout)
    return least, least + plan.location.record_seconds


def _seconds(a: str, b: str) -> float:
    return (datetime.fromisoformat(b) - datetime.fromisoformat(a)).total_seconds()


def _from_users(operator_logs: str) -> list[str]:
    return re.findall(r"INVITE-FROM-USER=(\S*)", operator_logs)


def test_a_silent_caller_is_asked_where_then_hears_the_silent_prompt_and_reaches_an_operator_with_their_number(live: Stack) -> None:
    caller = "081250001112"
    least, most = _silence_to_queue_seconds(live)
    port = live.sipp_port()
    live.register_operator("operator1", port)
    operator = live.sipp("answer", port=port, background=True, timeout=90)
    call = live.sipp("caller", *sipp_args(("caller", caller)), "-s", "112", "-d", str(int((most + 6) * 1000)), timeout=90)
    assert call.returncode == 0, call.report()
    assert operator.wait() == 0, operator.report()
    assert _from_users(operator.logs()) == [caller]

    incident = wait_for("the incident to be closed", lambda: (i := live.incident_for(caller)) and i.ended_at and i)
    assert incident.called_number == "112"
    assert incident.answered_at and incident.queued_at
    assert incident.route == "queue:operators"
    assert incident.fallback == 0
    assert incident.operator == "operator1" and incident.operator_answered_at
    # The app moved the call on only after the prompts' PlaybackFinished and the timeouts.
    assert _seconds(incident.answered_at, incident.queued_at) >= least - 0.5
    events = live.incident_events(incident.id)
    kinds = [e.kind for e in events if e.kind not in ("recording", "queue_joined", "operator_answered", "dtmf")]
    # No position came with the call: the caller was asked where they are; the recording
    # heard no words and no key was pressed, so straight to the silent-caller prompt (not
    # the kecamatan list or the menu), then a person.
    assert kinds[:4] == ["prompt", "ask_location", "prompt", "recording_started"]
    assert kinds[4:] in (["silent", "prompt", "route"], ["recording_failed", "silent", "prompt", "route"])
    route = next(e for e in events if e.kind == "route")
    assert route.detail == {"target": "queue:operators", "reason": "silent caller", "priority": "normal"}
    assert "operator_answered" in [e.kind for e in events]
    assert incident.flags == "silent"
    # The API shows the same incident to the console.
    assert live.api(f"/api/incidents/{incident.id}")["caller_number"] == caller


def test_asterisk_sends_each_application_only_the_events_it_reads(live: Stack) -> None:
    """The calls' application reads a few kinds of events; the texts' application, subscribed
    to the carriers' endpoints for their MESSAGEs, would otherwise get every event of every
    call from them (ChannelVarset, ChannelDialplan...: about 40 a call, each decoded for
    nothing). Asterisk's own record of the applications' filters, after the calls above."""
    from ari_app.ari.event_parsing import ASKED_TYPES
    from ari_app.texts.sip import TEXTS_APP_SUFFIX

    def allowed(app: str) -> set[str]:
        return {str(rule["type"]) for rule in live.ari(f"/applications/{app}")["events_allowed"]}

    app = live.settings.app_name
    assert allowed(app) == ASKED_TYPES | {"ApplicationReplaced", "RESTResponse"}
    assert "ChannelVarset" not in allowed(app)
    assert "PlaybackStarted" not in allowed(app)  # one event in four of a call, read by no handler
    assert allowed(app + TEXTS_APP_SUFFIX) == {"TextMessageReceived", "ApplicationReplaced", "RESTResponse"}


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
    port = live.sipp_port()
    # Logged in while the app ran: app_queue keeps its members whatever the app does.
    live.register_operator("operator1", port)
    live.app_stop()
    try:
        assert live.health() == {}
        greeting = _greeting_seconds(live)
        operator = live.sipp("answer", port=port, background=True, timeout=60)
        call = live.sipp("caller", *sipp_args(("caller", caller)), "-s", "112", "-d", str(int((greeting + 6) * 1000)), timeout=60)
        assert call.returncode == 0, call.report()
        assert operator.wait() == 0, operator.report()
        assert _from_users(operator.logs()) == [caller]
        # The app was down: nothing of this call went through it.
        assert live.incident_for(caller) is None
    finally:
        live.app_start()
