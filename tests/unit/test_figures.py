"""NENA answer-time figures, categories and per-operator counts from incidents."""

from __future__ import annotations

from ivr.figures import figures, to_csv
from ivr.store import Incident

T0 = "2026-11-28T08:00:00.000+00:00"


def inc(i: int, *, answered_after: float | None = None, ended: bool = True, category: str | None = None,
        operator: str | None = None) -> Incident:
    answered = None
    if answered_after is not None:
        answered = f"2026-11-28T08:00:{int(answered_after):02d}.000+00:00"
    return Incident(id=i, channel_id=f"c{i}", plan_id="kotim", caller_number="0812", called_number="112", carrier="",
                    language="id", arrived_at=T0, operator_answered_at=answered, operator=operator,
                    ended_at="2026-11-28T08:05:00.000+00:00" if ended else None, category=category)


def test_answer_shares_abandoned_and_categories_are_counted_as_nena_asks() -> None:
    incidents = [
        inc(1, answered_after=5, category="emergency", operator="andi"),
        inc(2, answered_after=17, category="prank", operator="andi"),
        inc(3, answered_after=25, category="ghost", operator="budi"),
        inc(4),  # dropped before anyone answered
        inc(5, ended=False),  # still in the IVR
        inc(6, category=None),  # answered by the police trunk at 8 s
    ]
    data = figures(incidents, {6: "2026-11-28T08:00:08.000+00:00"}).as_dict()
    assert (data["calls"], data["answered"], data["abandoned"], data["in_progress"]) == (6, 4, 1, 1)
    assert data["answered_within_15s_pct"] == 50.0 and data["answered_within_20s_pct"] == 75.0
    assert data["categories"] == {"emergency": 1, "information": 0, "prank": 1, "ghost": 1}
    assert data["prank_pct"] == 33.3 and data["ghost_pct"] == 33.3
    assert data["per_operator"] == {"andi": {"answered": 2, "mean_answer_s": 11.0}, "budi": {"answered": 1, "mean_answer_s": 25.0}}


def test_no_calls_give_no_shares_rather_than_a_division_by_zero_and_csv_has_one_row_per_figure() -> None:
    data = figures([], {}).as_dict()
    assert data["answered_within_15s_pct"] is None and data["calls"] == 0
    text = to_csv(("2026-11-01", "2026-11-30"), data)
    assert text.splitlines()[0] == "from,to,figure,value"
    assert "2026-11-01,2026-11-30,calls,0" in text and "2026-11-01,2026-11-30,categories.prank,0" in text
