"""The Prometheus figures: counters where things happen, gauges read live at scrape time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client.parser import text_string_to_metric_families

from ari_app.metrics import FAILURES, LiveCounts, Metrics


def _samples(m: Metrics) -> dict[str, float]:
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(m.render().decode()):
        for s in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(s.labels.items()))
            out[f"{s.name}[{labels}]" if labels else s.name] = s.value
    return out


def _ago(seconds: float) -> str:
    return (datetime.now(UTC) - timedelta(seconds=seconds)).isoformat(timespec="milliseconds")


def test_answer_times_fall_in_the_15_and_20_second_counts_as_nena_counts_them() -> None:
    m = Metrics(LiveCounts)
    m.person_answered("operator", _ago(3))
    m.person_answered("operator", _ago(17))
    m.person_answered("agency", _ago(40))
    m.person_answered("operator", None)  # a fallback call: answered, time unknown
    s = _samples(m)
    assert s["ivr112_calls_answered_by_person_total[by=operator]"] == 3
    assert s["ivr112_calls_answered_by_person_total[by=agency]"] == 1
    assert s["ivr112_calls_answered_within_15s_total"] == 1
    assert s["ivr112_calls_answered_within_20s_total"] == 2


def test_every_failure_kind_is_shown_from_the_start_and_an_unknown_kind_is_refused() -> None:
    m = Metrics(LiveCounts)
    s = _samples(m)
    assert {k for k in s if k.startswith("ivr112_failures_total")} == {f"ivr112_failures_total[kind={k}]" for k in FAILURES}
    m.failure("store")
    assert _samples(m)["ivr112_failures_total[kind=store]"] == 1
    with pytest.raises(ValueError, match="add it to FAILURES"):
        m.failure("gremlins")


def test_gauges_are_read_from_the_live_state_at_each_scrape() -> None:
    state = {"now": LiveCounts(in_ivr=2, waiting=1, operators={"ready": 2, "paused": 1}, ari_connected=True)}
    m = Metrics(lambda: state["now"])
    s = _samples(m)
    assert (s["ivr112_calls_in_ivr"], s["ivr112_calls_waiting"], s["ivr112_ari_connected"], s["ivr112_ami_connected"]) == (2, 1, 1, 0)
    assert s["ivr112_operators[state=paused]"] == 1
    state["now"] = LiveCounts(store_ok=False, store_backlog=7)
    s = _samples(m)
    assert (s["ivr112_calls_in_ivr"], s["ivr112_store_ok"], s["ivr112_store_backlog"]) == (0, 0, 7)
