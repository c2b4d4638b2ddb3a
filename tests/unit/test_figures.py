"""NENA answer-time figures, categories and per-operator counts from incidents."""

from __future__ import annotations

from ivr.figures import figures, to_csv
from ivr.store import Incident

T0 = "2026-11-28T08:00:00.000+00:00"


def inc(i: int, *, answered_after: float | None = None, ended: bool = True, category: str | None = None,
        operator: str | None = None, channel: str = "", carrier: str = "", flags: str | None = None) -> Incident:
    answered = None
    if answered_after is not None:
        answered = f"2026-11-28T08:{int(answered_after) // 60:02d}:{int(answered_after) % 60:02d}.000+00:00"
    return Incident(id=i, channel_id=channel or f"c{i}", plan_id="kotim", caller_number="0812", called_number="112",
                    carrier=carrier, language="id", arrived_at=T0, operator_answered_at=answered, operator=operator,
                    ended_at="2026-11-28T08:05:00.000+00:00" if ended else None, category=category, flags=flags)


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


def test_texts_are_counted_apart_from_calls_with_the_time_to_the_first_human_reply() -> None:
    incidents = [
        inc(1, answered_after=5, operator="andi"),  # a call
        inc(2, answered_after=3, flags="silent_needs_help,text"),  # a silent call whose caller then texted: a call
        inc(3, answered_after=40, operator="andi", channel="text-sip-0811-x", carrier="sip", flags="text", ended=False,
            category="emergency"),
        inc(4, answered_after=100, operator="budi", channel="text-sms-0812-x", carrier="sms", flags="text", ended=False),
        inc(5, answered_after=70, operator="budi", channel="text-sms-0813-x", carrier="sms", flags="text", ended=False),
        inc(6, channel="text-sms-0814-x", carrier="sms", flags="text", ended=False),  # only the automatic answer so far
        inc(7, channel="text-sip-0815-x", carrier="sip", flags="text"),  # closed without a person's reply
    ]
    data = figures(incidents, {}).as_dict()
    assert data["calls"] == 2 and data["answered_within_15s_pct"] == 100.0  # a text's 40 s is not a call's answer time
    assert data["per_operator"] == {"andi": {"answered": 1, "mean_answer_s": 5.0}}
    texts = data["texts"]
    assert (texts["conversations"], texts["answered"], texts["waiting"], texts["closed_unanswered"]) == (5, 3, 1, 1)
    assert texts["by_door"] == {"sip": 2, "sms": 3} and texts["categories"]["emergency"] == 1
    assert (texts["first_reply_mean_s"], texts["first_reply_median_s"], texts["first_reply_max_s"]) == (70.0, 70.0, 100.0)
    assert texts["calls_with_texts"] == 1
    csv_text = to_csv(("2026-11-28", "2026-11-28"), data)
    assert "2026-11-28,2026-11-28,texts.conversations,5" in csv_text
    assert "2026-11-28,2026-11-28,texts.by_door.sms,3" in csv_text
    assert "2026-11-28,2026-11-28,texts.first_reply_median_s,70.0" in csv_text
    assert "2026-11-28,2026-11-28,calls,2" in csv_text
