"""The shift simulator's callers (bench/traffic.py): Kotim's rates from the Jakarta figures,
a Poisson process from a seed, the caller mix, and the draws carried in the caller number."""

from __future__ import annotations

import itertools
import random
import statistics

import pytest

from bench import traffic
from bench.traffic import Call, parse_number, shift


def test_kotim_s_peak_hour_is_about_9_calls_and_a_flood_hour_about_15() -> None:
    assert traffic.KOTIM_MEAN_PER_HOUR == pytest.approx(2.99, abs=0.01)
    assert traffic.RATES["peak"] == pytest.approx(8.98, abs=0.02)
    assert traffic.RATES["flood"] == pytest.approx(14.96, abs=0.02)


def test_the_mix_adds_up_and_prank_and_ghost_are_about_a_third() -> None:
    assert sum(traffic.MIX.values()) == pytest.approx(1.0)
    assert 0.30 <= traffic.MIX[traffic.PRANK] + traffic.MIX[traffic.GHOST] <= 0.40
    assert sum(traffic.AGENCY_KEYS.values()) == pytest.approx(1.0)


def test_the_same_seed_gives_the_same_shift_and_another_seed_another() -> None:
    assert shift(seed=7, per_hour=9) == shift(seed=7, per_hour=9)
    assert shift(seed=7, per_hour=9) != shift(seed=8, per_hour=9)


def test_arrivals_are_a_poisson_process_at_the_chosen_rate() -> None:
    rng = random.Random(1)
    hours = 400
    times = traffic.arrivals(rng, 9.0, hours * 60)
    assert len(times) / hours == pytest.approx(9.0, rel=0.05)
    gaps = [b - a for a, b in itertools.pairwise(times)]
    # Exponential gaps: the standard deviation equals the mean.
    assert statistics.mean(gaps) == pytest.approx(400, rel=0.05)
    assert statistics.stdev(gaps) == pytest.approx(statistics.mean(gaps), rel=0.08)
    assert times == sorted(times) and times[-1] < hours * 3600


def test_a_long_shift_has_the_mix_s_proportions() -> None:
    calls = shift(seed=3, per_hour=600, minutes=600)
    for kind, share in traffic.MIX.items():
        assert sum(c.kind == kind for c in calls) / len(calls) == pytest.approx(share, abs=0.02), kind


def test_with_a_number_of_calls_there_are_exactly_that_many() -> None:
    assert len(shift(seed=1, per_hour=9, calls=40)) == 40
    assert len(shift(seed=1, per_hour=9, calls=2)) == 2


def test_each_kind_does_what_it_says() -> None:
    calls = shift(seed=5, per_hour=100, minutes=300)
    for c in calls:
        assert all(30 <= d <= 80 for d in c.answer_ds) and len(c.answer_ds) == traffic.OPERATORS
        if c.kind == traffic.GREETING_HANGUP:
            assert 1000 <= c.hangup_ms <= 3500 and c.key is None and c.talk_s == 0
        else:
            low, high = traffic.TALK_S[c.kind]
            assert low <= c.talk_s <= high and c.hangup_ms == 0
        assert (c.key == "0") == (c.kind == traffic.OPERATOR_KEY)
        assert (c.key in traffic.AGENCY_KEYS) == (c.kind == traffic.AGENCY_KEY)
        if c.key:
            assert 1000 <= c.key_ms <= 3500  # during the 4.3 s greeting


def test_the_caller_number_carries_the_kind_the_answer_delays_and_the_talk_time() -> None:
    call = Call(seq=103, kind=traffic.AGENCY_KEY, arrival_s=1.0, key="1", key_ms=2000, answer_ds=(45, 71), talk_s=7)
    assert call.number == "08125457100703"
    assert parse_number(call.number) == (traffic.AGENCY_KEY, (45, 71), 7)
    for c in shift(seed=9, per_hour=50, minutes=120):
        assert parse_number(c.number) == (c.kind, c.answer_ds, c.talk_s)
    assert len({c.number for c in shift(seed=9, per_hour=9, calls=99)}) == 99


def test_a_number_from_elsewhere_is_refused_with_what_was_expected() -> None:
    with pytest.raises(ValueError, match="not a shift caller number"):
        parse_number("081234567890")
    with pytest.raises(ValueError, match="above 0"):
        traffic.arrivals(random.Random(1), 0, 60)
