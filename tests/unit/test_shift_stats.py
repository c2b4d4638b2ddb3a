"""The shift simulator's figures (bench/answer_stats.py): shares within 15 s and 20 s of
the calls a person answered, median and p90, abandoned calls, per kind and in all."""

from __future__ import annotations

import math

import pytest

from bench.answer_stats import ALL, Outcome, by_kind, percentile, summarize


def test_percentiles_interpolate_between_the_ordered_values() -> None:
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5
    assert percentile(list(map(float, range(1, 11))), 90) == pytest.approx(9.1)
    assert percentile([5.0], 90) == 5.0
    assert math.isnan(percentile([], 50))


def test_shares_count_the_calls_a_person_answered_and_the_limits_are_inclusive() -> None:
    s = summarize([Outcome("silent", 5.0), Outcome("silent", 15.0), Outcome("silent", 20.0), Outcome("silent", 31.0)])
    assert (s.calls, s.answered, s.within_15s, s.within_20s, s.abandoned) == (4, 4, 2, 3, 0)
    assert s.within_15s_pct == 50.0 and s.within_20s_pct == 75.0
    assert s.median_s == 17.5


def test_a_caller_who_hung_up_unanswered_is_abandoned_and_out_of_the_shares() -> None:
    s = summarize([Outcome("greeting_hangup", None, abandoned=True), Outcome("silent", 6.0), Outcome("silent", None)])
    assert (s.calls, s.answered, s.abandoned, s.within_15s_pct) == (3, 1, 1, 100.0)


def test_no_answered_call_gives_no_share_rather_than_zero() -> None:
    s = summarize([Outcome("greeting_hangup", None, abandoned=True)])
    assert math.isnan(s.within_15s_pct) and math.isnan(s.median_s)


def test_by_kind_lists_every_kind_even_without_calls_and_the_whole_shift() -> None:
    out = by_kind([Outcome("prank", 6.0), Outcome("silent", 40.0)], ("prank", "silent", "ghost"))
    assert list(out) == ["prank", "silent", "ghost", ALL]
    assert out["ghost"].calls == 0 and out[ALL].calls == 2 and out[ALL].within_15s == 1
