"""The callback list and prank flags, on a real store of each engine (no Asterisk)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ari_app.store import IncidentStore
from ivr import callbacks, classify
from ivr.plan import PrankPolicy


def incident(store: IncidentStore, number: str, channel: str) -> int:
    return store.open_incident(channel_id=channel, plan_id="kotim", caller_number=number, called_number="112").id


def test_an_unanswered_call_opens_one_entry_and_a_second_counts_on_it(store: IncidentStore) -> None:
    first = callbacks.missed(store, "081250001111", incident(store, "081250001111", "c1"))
    assert first is not None and first.status == "open" and first.calls == 1
    second = callbacks.missed(store, "081250001111", incident(store, "081250001111", "c2"))
    assert second is not None and second.calls == 2 and second.first_at == first.first_at
    assert [c.number for c in callbacks.listing(store)] == ["081250001111"]


def test_anonymous_callers_cannot_be_called_back_and_are_not_listed(store: IncidentStore) -> None:
    assert callbacks.missed(store, "", None) is None
    assert callbacks.missed(store, "anonymous", None) is None
    assert callbacks.listing(store) == []


def test_a_callback_in_progress_refuses_a_second_one_and_a_connected_one_closes_the_entry(store: IncidentStore) -> None:
    callbacks.missed(store, "0812", incident(store, "0812", "c1"))
    started = callbacks.start(store, "0812", "andi")
    assert started.status == "calling" and started.attempts == 1
    with pytest.raises(callbacks.CallbackRefused, match="already being called back by andi"):
        callbacks.start(store, "0812", "budi")
    callbacks.finish(store, "0812", connected=False, detail="no answer")
    assert callbacks.start(store, "0812", "budi").attempts == 2
    callbacks.finish(store, "0812", connected=True)
    closed = callbacks.get(store, "0812")
    assert closed is not None and closed.status == "closed" and closed.closed_reason == "callback connected"
    with pytest.raises(callbacks.CallbackRefused, match="needs no callback"):
        callbacks.start(store, "0812", "andi")
    assert callbacks.listing(store) == []


def test_the_number_calling_again_and_answered_closes_the_entry_and_redial_is_seen(store: IncidentStore) -> None:
    callbacks.missed(store, "0813", incident(store, "0813", "c1"), at="2026-11-28T10:00:00.000+00:00")
    assert callbacks.redial(store, "0813", since="2026-11-28T09:50:00.000+00:00")
    assert not callbacks.redial(store, "0813", since="2026-11-28T10:05:00.000+00:00")
    assert callbacks.answered(store, "0813", reason="answered by andi")
    assert not callbacks.redial(store, "0813", since="2026-11-28T09:50:00.000+00:00")
    reopened = callbacks.missed(store, "0813", None)
    assert reopened is not None and reopened.status == "open" and reopened.calls == 1


POLICY = PrankPolicy(prompt="warn", count=3, window_hours=24, block_hours=24)


def prank_at(store: IncidentStore, number: str, channel: str, at: str) -> None:
    iid = incident(store, number, channel)
    classify.classify(store, iid, "prank", by="andi")
    store.update(iid, classified_at=at)


def test_three_prank_classifications_in_a_day_flag_the_number_for_a_day_after_the_last(store: IncidentStore) -> None:
    prank_at(store, "0814", "p1", "2026-11-27T08:00:00.000+00:00")
    prank_at(store, "0814", "p2", "2026-11-27T12:00:00.000+00:00")
    assert not classify.prank_flagged(store, "0814", POLICY, at="2026-11-27T13:00:00.000+00:00")
    prank_at(store, "0814", "p3", "2026-11-27T20:00:00.000+00:00")
    assert classify.prank_flagged(store, "0814", POLICY, at="2026-11-28T10:00:00.000+00:00")
    assert not classify.prank_flagged(store, "0814", POLICY, at="2026-11-28T20:00:01.000+00:00")
    assert not classify.prank_flagged(store, "0815", POLICY, at="2026-11-28T10:00:00.000+00:00")


def test_pranks_spread_over_more_than_the_window_do_not_flag(store: IncidentStore) -> None:
    for i, day in enumerate(("20", "22", "24")):
        prank_at(store, "0816", f"s{i}", f"2026-11-{day}T08:00:00.000+00:00")
    assert not classify.prank_flagged(store, "0816", POLICY, at="2026-11-24T09:00:00.000+00:00")


def test_a_supervisor_clearing_the_number_lifts_the_flag(store: IncidentStore) -> None:
    for i in range(3):
        iid = incident(store, "0817", f"q{i}")
        classify.classify(store, iid, "prank", by="andi")
    assert classify.prank_flagged(store, "0817", POLICY)
    classify.clear(store, "0817", by="supervisor")
    assert not classify.prank_flagged(store, "0817", POLICY)
    # Only prank calls after the clear count again: two more are not enough, a third is.
    later = [(datetime.now(UTC) + timedelta(minutes=m)).isoformat(timespec="milliseconds") for m in (1, 2, 3, 4)]
    prank_at(store, "0817", "q3", later[0])
    prank_at(store, "0817", "q4", later[1])
    assert not classify.prank_flagged(store, "0817", POLICY, at=later[2])
    prank_at(store, "0817", "q5", later[2])
    assert classify.prank_flagged(store, "0817", POLICY, at=later[3])


def test_an_unknown_category_or_incident_is_refused_with_the_choices(store: IncidentStore) -> None:
    iid = incident(store, "0818", "x1")
    with pytest.raises(classify.ClassifyError, match="use one of emergency, information, prank, ghost"):
        classify.classify(store, iid, "joke", by="andi")
    with pytest.raises(classify.ClassifyError, match="does not exist"):
        classify.classify(store, 999, "prank", by="andi")


def test_queue_priority_urgent_beats_low_and_prank_goes_last() -> None:
    from ivr.priority import CallerHistory, queue_priority

    assert queue_priority("normal", CallerHistory(), []) == "normal"
    assert queue_priority("urgent", CallerHistory(), ["silent_needs_help"]) == "urgent"
    assert queue_priority("normal", CallerHistory(redial=True), []) == "urgent"
    assert queue_priority("normal", CallerHistory(), ["agency_failed"]) == "urgent"
    assert queue_priority("low", CallerHistory(prank=True), []) == "low"
    # A prank-flagged number redialling after hanging up stays last.
    assert queue_priority("low", CallerHistory(prank=True, redial=True), []) == "low"
    # A former prank caller whose fire call found no trunk still goes first.
    assert queue_priority("low", CallerHistory(prank=True), ["agency_failed"]) == "urgent"
