"""Why a trunk did not take a call (ivr/trunks.py), in the words the supervisor reads."""

from __future__ import annotations

from ivr.trunks import LegOutcome, trunk_failure


def test_a_trunk_that_said_nothing_is_no_response_whatever_the_ring_timeout_called_it() -> None:
    assert trunk_failure(LegOutcome(timed_out_silent=True)) == "no response"
    # Cut by the ring timeout with nothing heard (the old record said "User alerting, no answer").
    assert trunk_failure(LegOutcome(cause=19, cause_txt="User alerting, no answer", captured=True)) == "no response"
    assert trunk_failure(LegOutcome(cause=19, cause_txt="User alerting, no answer")) == "no response"


def test_sip_answers_come_before_asterisks_cause() -> None:
    assert trunk_failure(LegOutcome(cause=34, final=503, final_reason="Service Unavailable", captured=True)) == \
        "refused (SIP 503 Service Unavailable)"
    assert trunk_failure(LegOutcome(cause=17, final=486, final_reason="Busy Here", provisional=100, captured=True)) == \
        "busy (SIP 486 Busy Here)"
    assert trunk_failure(LegOutcome(final=408, final_reason="Request Timeout", captured=True)) == "no response (SIP 408 Request Timeout)"


def test_ringing_then_nothing_is_no_answer_and_trying_alone_says_so() -> None:
    assert trunk_failure(LegOutcome(cause=19, rang=True, captured=True, provisional=180)) == "no answer after ringing"
    assert trunk_failure(LegOutcome(cause=19, captured=True, provisional=183)) == "no answer after ringing"
    assert trunk_failure(LegOutcome(cause=19, captured=True, provisional=100)).startswith("no answer (the trunk took the call")


def test_without_a_capture_the_cause_decides() -> None:
    assert trunk_failure(LegOutcome(cause=17, cause_txt="User busy")) == "busy (User busy)"
    assert trunk_failure(LegOutcome(cause=27, cause_txt="Destination out of order")) == "unreachable (Destination out of order)"
    assert trunk_failure(LegOutcome(cause=21, cause_txt="Call Rejected")) == "refused (Call Rejected)"


def test_a_trunk_that_rang_until_our_cancel_is_no_answer_not_a_refusal() -> None:
    """The ring timeout runs out, the app cancels, the trunk answers 487 to the CANCEL."""
    rang = LegOutcome(cause=19, captured=True, provisional=180, final=487, final_reason="Request Terminated")
    assert trunk_failure(rang) == "no answer after ringing"
    assert trunk_failure(LegOutcome(captured=True, provisional=100, final=487)).startswith("no answer (the trunk took the call")
