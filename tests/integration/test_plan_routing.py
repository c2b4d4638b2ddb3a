"""The plan on the real stack: menus, DTMF, agency trunks, languages and live reloads.

The test plan is Kotim's own, with its placeholder trunk ports moved to free ports where
SIPp stands in for the agencies (see stack.make_test_plan).
"""

from __future__ import annotations

import re
import wave
from datetime import datetime

import pytest

from ivr.store import Incident
from tests.integration.stack import Sipp, Stack, sipp_args, wait_for
from tests.support.plan import edit_plan_file

pytestmark = pytest.mark.asterisk

POLICE_1, POLICE_2, FIRE = 5071, 5072, 5073
# Pressed during the greeting: barge-in takes the caller straight into the menu.
PRESS_AFTER_MS = "1500"


def _invite_field(sipp: Sipp, name: str) -> list[str]:
    return re.findall(rf"INVITE-{name}=(\S*)", sipp.logs())


def _closed(stack: Stack, caller: str) -> Incident:
    return wait_for(f"the incident of {caller} to be closed", lambda: (i := stack.incident_for(caller)) and i.ended_at and i, timeout=30)


def _seconds(a: str, b: str) -> float:
    return (datetime.fromisoformat(b) - datetime.fromisoformat(a)).total_seconds()


def _kinds(stack: Stack, incident: Incident) -> list[str]:
    return [e.kind for e in stack.incident_events(incident.id)]


def test_pressing_1_reaches_the_police_trunk_with_the_callers_number_and_is_recorded(live: Stack) -> None:
    caller = "081250002001"
    before = live.metrics()
    police = live.sipp("answer", port=live.trunk_ports[POLICE_1], background=True, timeout=60)
    call = live.sipp("caller", *sipp_args(("caller", caller)), "-s", "112", "-d", "4000",
                     steps=[("pause", PRESS_AFTER_MS), ("dtmf", "1")], timeout=60)
    assert call.returncode == 0, call.report()
    assert police.wait() == 0, police.report()
    assert _invite_field(police, "FROM-USER") == [caller]
    police_1 = wait_for("the police trunk's health", lambda: next(
        (t for t in live.api("/api/wall")["trunks"] if t["agency"] == "police" and t["trunk"] == 1 and t["result"] == "answered"), None))
    assert police_1["at"]
    assert _invite_field(police, "SERVICE") == ["112"]  # the number the caller dialled
    assert _invite_field(police, "RURI") == ["110"]  # the number the plan dials on that trunk

    incident = _closed(live, caller)
    assert incident.route == "agency:police"
    assert incident.route_result == "answered by police trunk 1"
    events = live.incident_events(incident.id)
    assert [e.detail for e in events if e.kind == "choice"] == [{"menu": "main", "digits": "1"}]
    recording = next(e.detail for e in events if e.kind == "recording")
    path = live.layout.host(recording["path"])
    wait_for("the recording file", lambda: path.exists() and path.stat().st_size > 44)
    with wave.open(str(path)) as w:
        seconds = w.getnframes() / w.getframerate()
    # The caller stayed about 4 s after answer, of which ~2 s were bridged with the police.
    assert 0.5 < seconds < 6
    # The supervisor's dashboard counted it: one call, answered by an agency within 15 s.
    after = live.metrics()
    for sample in ("ivr112_calls_arrived_total", "ivr112_calls_ended_total", 'ivr112_calls_answered_by_person_total{by="agency"}',
                   "ivr112_calls_answered_within_15s_total", 'ivr112_incident_events_total{kind="trunk_answered"}'):
        assert after[sample] == before.get(sample, 0) + 1, sample
    assert after['ivr112_failures_total{kind="agency_trunk"}'] == before['ivr112_failures_total{kind="agency_trunk"}']
    assert after["ivr112_ari_connected"] == 1 and after["ivr112_calls_in_ivr"] == 0


def test_when_the_first_police_trunk_is_dead_the_second_is_dialled_at_once_and_the_cause_is_no_response(live: Stack) -> None:
    """Nothing listens on police trunk 1: no 100 Trying, no ringing. The caller must not wait
    out its ring timeout, and the record must not say it rang."""
    caller = "081250002002"
    police2 = live.sipp("answer", port=live.trunk_ports[POLICE_2], background=True, timeout=60)
    call = live.sipp("caller", *sipp_args(("caller", caller)), "-s", "112", "-d", "12000",
                     steps=[("pause", PRESS_AFTER_MS), ("dtmf", "1")], timeout=60)
    assert call.returncode == 0, call.report()
    assert police2.wait() == 0, police2.report()
    assert _invite_field(police2, "FROM-USER") == [caller]
    incident = _closed(live, caller)
    assert incident.route_result == "answered by police trunk 2"
    events = live.incident_events(incident.id)
    steps = [e for e in events if e.kind.startswith("trunk_")]
    assert [(e.kind, e.detail["trunk"]) for e in steps] == [
        ("trunk_dial", "1"), ("trunk_failed", "1"), ("trunk_dial", "2"), ("trunk_answered", "2"),
    ]
    # Trunk 2 within 3 s of trunk 1 (the test plan's ring timeout is 5 s), for the right reason.
    assert _seconds(steps[0].at, steps[2].at) <= 3.0, [(e.kind, e.at) for e in steps]
    assert steps[1].detail["cause"] == "no response"
    police_1 = next(t for t in live.api("/api/wall")["trunks"] if t["agency"] == "police" and t["trunk"] == 1)
    assert police_1["result"] == "failed" and police_1["cause"] == "no response"


def test_a_police_trunk_that_refuses_is_recorded_as_refused_with_its_sip_answer(live: Stack) -> None:
    caller = "081250002005"
    refusing = live.sipp("input_trunk_refuse_503", port=live.trunk_ports[POLICE_1], background=True, timeout=60)
    police2 = live.sipp("answer", port=live.trunk_ports[POLICE_2], background=True, timeout=60)
    call = live.sipp("caller", *sipp_args(("caller", caller)), "-s", "112", "-d", "6000",
                     steps=[("pause", PRESS_AFTER_MS), ("dtmf", "1")], timeout=60)
    assert call.returncode == 0, call.report()
    assert police2.wait() == 0, police2.report()
    assert refusing.wait() == 0, refusing.report()
    events = live.incident_events(_closed(live, caller).id)
    failed = next(e.detail for e in events if e.kind == "trunk_failed")
    assert failed["trunk"] == "1" and failed["cause"] == "refused (SIP 503 Service Unavailable)", failed


def test_when_every_fire_trunk_is_down_the_caller_reaches_an_operator(live: Stack) -> None:
    caller = "081250002003"
    before = live.metrics()
    port = live.sipp_port()
    live.register_operator("operator1", port)
    operator = live.sipp("answer", port=port, background=True, timeout=60)
    call = live.sipp("caller", *sipp_args(("caller", caller)), "-s", "113", "-d", "14000",
                     steps=[("pause", PRESS_AFTER_MS), ("dtmf", "2")], timeout=60)
    assert call.returncode == 0, call.report()
    assert operator.wait() == 0, operator.report()
    assert _invite_field(operator, "FROM-USER") == [caller]
    incident = _closed(live, caller)
    assert incident.called_number == "113"
    assert incident.route == "queue:operators"
    assert incident.route_result == "queued"
    events = live.incident_events(incident.id)
    failed = next(e.detail for e in events if e.kind == "agency_failed")
    assert failed["agency"] == "fire" and failed["next"] == "queue:operators"
    route = [e.detail for e in events if e.kind == "route"][-1]
    assert route["reason"] == "agency fire unreachable"
    # The dashboard shows the dead trunks and the operator who took the call instead.
    after = live.metrics()
    tried = sum(1 for e in events if e.kind == "trunk_dial")
    assert tried >= 1
    assert after['ivr112_failures_total{kind="agency_trunk"}'] - before['ivr112_failures_total{kind="agency_trunk"}'] == tried
    assert after['ivr112_failures_total{kind="agency_unreachable"}'] == before['ivr112_failures_total{kind="agency_unreachable"}'] + 1
    assert after['ivr112_calls_answered_by_person_total{by="operator"}'] == before['ivr112_calls_answered_by_person_total{by="operator"}'] + 1
    # Fire is one of Kotim's urgent agencies: its caller goes ahead in the queue.
    assert route["priority"] == "urgent" and incident.priority == "urgent" and incident.flags == "agency_failed"
    # The supervisor's wall shows the fire trunk's health from this call: failed, and why.
    fire = next(t for t in live.api("/api/wall")["trunks"] if t["agency"] == "fire")
    assert fire["result"] == "failed" and fire["at"] and fire["cause"]


def test_wrong_digits_replay_the_menu_once_then_reach_the_operators(live: Stack) -> None:
    caller = "081250002004"
    call = live.sipp("caller", *sipp_args(("caller", caller)), "-s", "112", "-d", "3000",
                     steps=[("pause", PRESS_AFTER_MS), ("dtmf", "7"), ("pause", "1500"), ("dtmf", "8")], timeout=60)
    assert call.returncode == 0, call.report()
    incident = _closed(live, caller)
    # Nobody answered before the caller hung up: the number goes on the callback list (a
    # step written just after the incident is closed).
    kinds = wait_for("the caller on the callback list", lambda: "callback_listed" in (k := _kinds(live, incident)) and k, timeout=10)
    assert kinds.count("wrong_input") == 2
    assert [k for k in kinds if k in ("wrong_input", "route")][-1] == "route"
    # The flow sent the caller to the operators; with nobody logged in, the queue may then
    # overflow to the provincial centre (recorded as a later route) before the caller hangs up.
    first_route = next(e.detail["target"] for e in live.incident_events(incident.id) if e.kind == "route")
    assert first_route == "queue:operators"
    assert kinds[-1] == "callback_listed"
    # The first key cut the greeting short; being wrong, it brought "not an option" and the menu.
    prompts = [e.detail["prompts"] for e in live.incident_events(incident.id) if e.kind == "prompt"]
    assert prompts == ["greeting", "invalid,main_menu"]


def test_choosing_english_plays_the_english_prompts(live: Stack) -> None:
    caller = "081250002005"
    police = live.sipp("answer", port=live.trunk_ports[POLICE_1], background=True, timeout=60)
    call = live.sipp("caller", *sipp_args(("caller", caller)), "-s", "112", "-d", "3000",
                     steps=[("pause", PRESS_AFTER_MS), ("dtmf", "9"), ("pause", "1500"), ("dtmf", "1")], timeout=60)
    assert call.returncode == 0, call.report()
    assert police.wait() == 0, police.report()
    incident = _closed(live, caller)
    assert incident.language == "en"
    events = live.incident_events(incident.id)
    assert [(e.detail["prompts"], e.detail["language"]) for e in events if e.kind == "prompt"] == [
        ("greeting", "id"), ("main_menu", "en"),
    ]
    log = live.layout.messages_log.read_text(errors="replace")
    assert "sounds/kotim/en/main_menu" in log


def test_a_reload_while_a_caller_is_in_the_ivr_does_not_change_their_call(live: Stack) -> None:
    caller, later = "081250002006", "081250002007"
    original = live.plan_file.read_text()
    police = live.sipp("answer", port=live.trunk_ports[POLICE_1], background=True, timeout=60)
    call = live.sipp("caller", *sipp_args(("caller", caller)), "-s", "112", "-d", "3000",
                     steps=[("pause", "6000"), ("dtmf", "1")], background=True, timeout=60)
    try:
        wait_for("the caller to be in the IVR", lambda: (i := live.incident_for(caller)) and "ask_location" in _kinds(live, i))
        # Option 1 now goes to the fire service; the caller in the menu keeps the old plan.
        edit_plan_file(live.plan_file, {"menus.main.options.1": {"agency": "fire"}})
        reload = live.ivr112("reload")
        assert "reloaded" in reload.stdout
        assert call.wait() == 0, call.report()
        assert police.wait() == 0, police.report()
        assert _closed(live, caller).route == "agency:police"
        # A new call gets the new plan.
        second = live.sipp("caller", *sipp_args(("caller", later)), "-s", "112", "-d", "2000",
                           steps=[("pause", PRESS_AFTER_MS), ("dtmf", "1")], timeout=60)
        assert second.returncode == 0, second.report()
        # No fire trunk answers here: fire's on_failure (the operators), and with nobody logged
        # in, the queue's overflow (the provincial centre), are where the call may end.
        assert _closed(live, later).route in ("agency:fire", "queue:operators", "agency:provincial")
        events = live.incident_events(live.incident_for(later).id)  # type: ignore[union-attr]
        assert any(e.kind == "route" and e.detail["target"] == "agency:fire" for e in events)
    finally:
        live.plan_file.write_text(original)
        live.ivr112("reload", check=False)


def test_an_invalid_reload_is_refused_with_its_position_and_calls_keep_working(live: Stack) -> None:
    caller = "081250002008"
    original = live.plan_file.read_text()
    try:
        edit_plan_file(live.plan_file, {"menus.main.options.1": {"agency": "polisi"}})
        refused = live.ivr112("reload", check=False)
        assert refused.returncode == 1
        line = next(i for i, text in enumerate(live.plan_file.read_text().splitlines(), start=1) if "agency: polisi" in text)
        assert re.search(rf"{re.escape(str(live.plan_file))}:{line}:\d+: menu 'main' option 1 leads to agency 'polisi', which is not defined", refused.stdout)
        assert "reload refused" in refused.stderr
        assert live.health()["ari_connected"] is True
        police = live.sipp("answer", port=live.trunk_ports[POLICE_1], background=True, timeout=60)
        call = live.sipp("caller", *sipp_args(("caller", caller)), "-s", "112", "-d", "3000",
                         steps=[("pause", PRESS_AFTER_MS), ("dtmf", "1")], timeout=60)
        assert call.returncode == 0, call.report()
        assert police.wait() == 0, police.report()
        assert _closed(live, caller).route == "agency:police"
    finally:
        live.plan_file.write_text(original)
