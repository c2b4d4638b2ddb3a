"""Dialling an agency, pure: events in, actions out (no Asterisk)."""

from __future__ import annotations

import pytest

from ivr import trunks
from ivr.agency import (
    AgencyDial,
    AgencyDialError,
    Bridge,
    Bridged,
    BridgeFailed,
    CallerHungUp,
    Cancelled,
    DestroyBridge,
    FailOver,
    HangUpCaller,
    HangUpLeg,
    Originate,
    OriginateFailed,
    PersonAnswered,
    Ring,
    SetResult,
    Start,
    State,
    Step,
    StopRinging,
    TrunkAnswered,
    TrunkGone,
    TrunkRang,
    TrunkSilent,
    UnwatchLeg,
    WatchLeg,
)
from ivr.plan import Agency, Target, Trunk

QUEUE = Target("queue", "operators")
ENDPOINTS = ("PJSIP/police-1/sip:110@a", "PJSIP/police-2/sip:110@b")


def police(*, trunk_count: int = 2) -> AgencyDial:
    trunk = Trunk(host="10.0.0.1", port=5060, number="110", ring_timeout=20, response_timeout=2.0)
    agency = Agency(name="police", label="Polisi", trunks=(trunk,) * trunk_count, on_failure=QUEUE)
    return AgencyDial(agency, reason="menu 1", endpoints=ENDPOINTS[:trunk_count], urgent=True)


def steps(actions: list[object], kind: str) -> list[dict[str, str]]:
    return [a.detail for a in actions if isinstance(a, Step) and a.kind == kind]


def test_start_rings_the_caller_and_dials_the_first_trunk_with_its_timeouts() -> None:
    dial = police()
    actions = dial.handle(Start())
    assert actions == [
        SetResult("dialling", route="agency:police"), Step("route", {"target": "agency:police", "reason": "menu 1"}), Ring(),
        Step("trunk_dial", {"agency": "police", "trunk": "1", "endpoint": ENDPOINTS[0]}), WatchLeg(1, 2.0),
        Originate(1, ENDPOINTS[0], 20),
    ]
    assert dial.state is State.DIALLING


def test_a_trunk_that_answers_is_bridged_and_named_on_the_incident() -> None:
    dial = police()
    dial.handle(Start())
    assert dial.handle(TrunkAnswered(1, at=10.0)) == [UnwatchLeg(), StopRinging(), Bridge(1)]
    assert dial.handle(Bridged(1)) == [
        SetResult("answered by police trunk 1"), Step("trunk_answered", {"agency": "police", "trunk": "1"}),
        PersonAnswered("agency police"),
    ]
    assert dial.state is State.CONNECTED and dial.answered


def test_a_busy_trunk_is_worded_from_its_sip_answer_and_the_next_trunk_is_dialled() -> None:
    dial = police()
    dial.handle(Start())
    actions = dial.handle(TrunkGone(1, at=1.0, outcome=trunks.LegOutcome(cause=17, cause_txt="User busy", captured=True,
                                                                          provisional=100, final=486, final_reason="Busy Here")))
    assert steps(actions, "trunk_failed") == [{"agency": "police", "trunk": "1", "cause": "busy (SIP 486 Busy Here)"}]
    assert actions[-1] == Originate(2, ENDPOINTS[1], 20)


def test_a_trunk_that_rang_and_timed_out_failed_with_no_answer_after_ringing() -> None:
    dial = police()
    dial.handle(Start())
    assert dial.handle(TrunkRang(1)) == [UnwatchLeg()]
    actions = dial.handle(TrunkGone(1, at=20.0, outcome=trunks.LegOutcome(cause=19, cause_txt="No answer")))
    assert steps(actions, "trunk_failed")[0]["cause"] == trunks.NO_ANSWER


def test_a_silent_trunk_is_hung_up_after_its_response_timeout_and_the_next_dialled() -> None:
    dial = police()
    dial.handle(Start())
    actions = dial.handle(TrunkSilent(1, invite_answered=False))
    assert steps(actions, "trunk_failed") == [{"agency": "police", "trunk": "1", "cause": trunks.NO_RESPONSE, "after_s": "2"}]
    assert HangUpLeg(1) in actions and actions[-1] == Originate(2, ENDPOINTS[1], 20)
    # Its end arrives later: a straggler, not a second failure.
    assert dial.handle(TrunkGone(1, at=3.0)) == []


@pytest.mark.parametrize("answered", [True, None])
def test_a_trunk_that_answered_the_invite_or_cannot_be_told_is_left_to_its_ring_timeout(answered: bool | None) -> None:
    dial = police()
    dial.handle(Start())
    assert dial.handle(TrunkSilent(1, invite_answered=answered)) == []
    assert dial.leg == 1


def test_a_trunk_that_rang_is_never_called_silent() -> None:
    dial = police()
    dial.handle(Start())
    dial.handle(TrunkRang(1))
    assert dial.handle(TrunkSilent(1, invite_answered=False)) == []


def test_a_trunk_that_answers_and_drops_at_once_counts_as_failed_and_ringback_resumes() -> None:
    dial = police()
    dial.handle(Start())
    dial.handle(TrunkAnswered(1, at=10.0))
    dial.handle(Bridged(1))
    actions = dial.handle(TrunkGone(1, at=11.5, outcome=trunks.LegOutcome(cause=16, cause_txt="Normal Clearing")))
    assert actions[:4] == [
        DestroyBridge(), SetResult("dialling"),
        Step("trunk_failed", {"agency": "police", "trunk": "1", "cause": "answered and hung up after 1.5 s (Normal Clearing)"}),
        Ring(),
    ]
    assert actions[-1] == Originate(2, ENDPOINTS[1], 20)
    assert not dial.answered


def test_a_trunk_gone_before_the_bridge_counts_as_dropped() -> None:
    dial = police(trunk_count=1)
    dial.handle(Start())
    dial.handle(TrunkAnswered(1, at=10.0))
    actions = dial.handle(BridgeFailed(1, at=10.0, error="404 Channel not found"))
    assert steps(actions, "trunk_failed")[0]["cause"] == "answered and hung up after 0.0 s (gone before the bridge: 404 Channel not found)"
    assert isinstance(actions[-1], FailOver)


def test_an_agency_that_talked_and_hung_up_ends_the_call() -> None:
    dial = police()
    dial.handle(Start())
    dial.handle(TrunkAnswered(1, at=10.0))
    dial.handle(Bridged(1))
    actions = dial.handle(TrunkGone(1, at=60.0, outcome=trunks.LegOutcome(cause=16, cause_txt="Normal Clearing")))
    assert actions == [Step("agency_hangup", {"agency": "police", "cause": "Normal Clearing"}), UnwatchLeg(), HangUpLeg(1),
                       DestroyBridge(), HangUpCaller()]
    assert dial.state is State.ENDED


def test_when_every_trunk_fails_the_caller_fails_over_flagged_urgent() -> None:
    dial = police()
    dial.handle(Start())
    dial.handle(OriginateFailed(1, "500 Allocation failed"))
    actions = dial.handle(TrunkGone(2, at=5.0, outcome=trunks.LegOutcome(cause=3, cause_txt="No route to destination")))
    assert steps(actions, "trunk_failed")[0]["cause"] == "unreachable (No route to destination)"
    assert actions[-4:] == [
        StopRinging(), SetResult("agency police unreachable"),
        Step("agency_failed", {"agency": "police", "tried": ",".join(ENDPOINTS), "next": "queue:operators"}),
        FailOver(QUEUE, "agency police unreachable", True),
    ]
    assert dial.state is State.FAILED


def test_a_refused_originate_is_worded_refused_with_asterisks_reason() -> None:
    dial = police()
    dial.handle(Start())
    actions = dial.handle(OriginateFailed(1, "500 Allocation failed"))
    assert steps(actions, "trunk_failed")[0]["cause"] == "refused (500 Allocation failed)"


@pytest.mark.parametrize("event", [CallerHungUp(), Cancelled("error")])
def test_the_caller_hanging_up_while_dialling_hangs_up_the_trunk(event: CallerHungUp | Cancelled) -> None:
    dial = police()
    dial.handle(Start())
    assert dial.handle(event) == [UnwatchLeg(), HangUpLeg(1)]
    assert dial.state is State.ENDED


def test_the_caller_hanging_up_while_bridged_also_destroys_the_bridge() -> None:
    dial = police()
    dial.handle(Start())
    dial.handle(TrunkAnswered(1, at=1.0))
    dial.handle(Bridged(1))
    assert dial.handle(CallerHungUp()) == [UnwatchLeg(), HangUpLeg(1), DestroyBridge()]


def test_a_late_answer_from_a_trunk_given_up_on_is_hung_up() -> None:
    dial = police()
    dial.handle(Start())
    dial.handle(TrunkSilent(1, invite_answered=False))
    assert dial.handle(TrunkAnswered(1, at=5.0)) == [HangUpLeg(1)]
    assert dial.leg == 2 and dial.state is State.DIALLING


def test_events_after_the_end_change_nothing() -> None:
    dial = police()
    dial.handle(Start())
    dial.handle(CallerHungUp())
    assert dial.handle(TrunkGone(1, at=2.0)) == []
    assert dial.handle(CallerHungUp()) == []
    assert dial.handle(TrunkAnswered(1, at=2.0)) == [HangUpLeg(1)]


def test_starting_twice_is_a_bug_named_with_the_state() -> None:
    dial = police()
    dial.handle(Start())
    with pytest.raises(AgencyDialError, match="Start in state dialling"):
        dial.handle(Start())
