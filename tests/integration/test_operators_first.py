"""Operators first, on the real stack: with an operator free, the IVR never stands between
a caller and a person (issue 13). Kotim's plan has `operators_first: true`; the other
integration tests run with it off, so this file switches it on for its own tests."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime

import pytest

from ivr.store import Incident
from tests.integration.stack import Stack, sipp_args, wait_for
from tests.support.plan import edit_plan_file

pytestmark = pytest.mark.asterisk

OPERATOR = "operator1"


@pytest.fixture
def first(live: Stack) -> Iterator[Stack]:
    was = edit_plan_file(live.plan_file, {"operators_first": True})
    assert was == {"operators_first": False}
    assert "reloaded" in live.ivr112("reload").stdout
    try:
        yield live
    finally:
        live.stop_all_sipp()
        edit_plan_file(live.plan_file, was)
        live.ivr112("reload")


def _seconds(a: str, b: str) -> float:
    return (datetime.fromisoformat(b) - datetime.fromisoformat(a)).total_seconds()


def _incident(s: Stack, caller: str) -> Incident:
    return wait_for(f"{caller}'s incident", lambda: s.incident_for(caller))


def _rung_at(s: Stack, caller: str) -> str:
    """When the operator's softphone began to ring with this caller (the operators' log)."""
    row = wait_for(f"{OPERATOR} ringing with {caller}", lambda: next(
        (r for r in s.api(f"/api/operators/{OPERATOR}/log") if r["action"] == "ringing" and r["detail"].get("caller") == caller), None))
    return str(row["at"])


def _kinds(s: Stack, incident: Incident) -> list[str]:
    return [e.kind for e in s.incident_events(incident.id)]


def test_a_silent_caller_with_a_free_operator_rings_that_operator_within_6_s_of_arrival(first: Stack) -> None:
    s, caller = first, "081250013001"
    port = s.sipp_port()
    s.register_operator(OPERATOR, port)
    operator = s.sipp("answer", port=port, background=True, timeout=60)
    # Says and keys nothing; stays 12 s.
    call = s.sipp("caller", *sipp_args(("caller", caller)), "-s", "112", "-d", "12000", background=True, timeout=60)
    incident = _incident(s, caller)
    rung = _rung_at(s, caller)
    assert _seconds(incident.arrived_at, rung) <= 6.0, (incident.arrived_at, rung)
    assert call.wait() == 0, call.report()
    assert operator.wait() == 0, operator.report()
    closed = wait_for("the call's end", lambda: (i := s.incident_for(caller)) and i.ended_at and i)
    assert closed.operator == OPERATOR and closed.route == "queue:operators"
    kinds = _kinds(s, closed)
    # The greeting only: no location question, no menu, no silent prompt.
    assert "operator_free" in kinds and not {"ask_location", "menu", "silent"} & set(kinds), kinds
    route = next(e.detail for e in s.incident_events(closed.id) if e.kind == "route")
    assert route["reason"] == "an operator is free"


def test_two_callers_and_one_free_operator_one_rings_at_once_the_other_is_taken_out_of_the_ivr_when_it_is_free(first: Stack) -> None:
    s, a, b = first, "081250013002", "081250013003"
    port = s.sipp_port()
    s.register_operator(OPERATOR, port)
    operator = s.sipp("answer", port=port, background=True, timeout=90, calls=2)
    call_a = s.sipp("caller", *sipp_args(("caller", a)), "-s", "112", "-d", "9000", background=True, timeout=60)
    incident_a = _incident(s, a)
    call_b = s.sipp("caller", *sipp_args(("caller", b)), "-s", "112", "-d", "25000", background=True, timeout=90)
    incident_b = _incident(s, b)
    rung_a = _rung_at(s, a)
    assert _seconds(incident_a.arrived_at, rung_a) <= 6.0
    # B was not promised the operator A has: B hears the IVR (asked where they are).
    wait_for("B in the IVR", lambda: "ask_location" in _kinds(s, incident_b), timeout=20)
    assert call_a.wait() == 0, call_a.report()
    # A hangs up; after the wrap-up the operator is free and B is taken out of the IVR.
    rung_b = _rung_at(s, b)
    assert rung_b > rung_a
    kinds = _kinds(s, incident_b)
    assert kinds.index("ask_location") < kinds.index("operator_free") < kinds.index("route"), kinds
    answered = wait_for("the operator to answer B", lambda: (i := s.incident_for(b)) and i.operator_answered_at and i, timeout=30)
    assert answered.operator == OPERATOR
    # What the IVR learned before stays on the incident (B's recording of where they are).
    assert "recording_started" in kinds or "menu" in kinds or "kecamatan_skipped" in kinds
    assert call_b.wait() == 0, call_b.report()
    assert operator.wait() == 0, operator.report()
    assert re.findall(r"INVITE-FROM-USER=(\S*)", operator.logs()) == [a, b]


def test_a_caller_who_presses_1_during_the_greeting_reaches_the_police_not_the_free_operator(first: Stack) -> None:
    s, caller = first, "081250013004"
    port = s.sipp_port()
    s.register_operator(OPERATOR, port)
    operator = s.sipp("answer", port=port, background=True, timeout=20)
    police = s.sipp("answer", port=s.trunk_ports[5071], background=True, timeout=60)
    call = s.sipp("caller", *sipp_args(("caller", caller)), "-s", "112", "-d", "5000",
                  steps=[("pause", "1500"), ("dtmf", "1")], timeout=60)
    assert call.returncode == 0, call.report()
    assert police.wait() == 0, police.report()
    incident = wait_for("the call's end", lambda: (i := s.incident_for(caller)) and i.ended_at and i)
    assert incident.route_result == "answered by police trunk 1" and incident.operator is None
    assert not [r for r in s.api(f"/api/operators/{OPERATOR}/log") if r["detail"].get("caller") == caller]
    operator.proc.terminate()
    operator.wait()  # its phone never rang for this caller; read its pipe to the end
