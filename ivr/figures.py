"""The answer-time figures a 112 centre is judged by, from the incident store. Pure.

NENA-STA-020.1-2020: 90% of calls answered by a person within 15 s, 95% within 20 s,
counted from the call's arrival to the moment a person (operator or agency) answered.
Abandoned calls ended before any person answered. Categories are the operators'
classifications; prank and ghost shares are of classified calls.

Text conversations (incidents a text opened: ivr/texts.py, TEXT_CHANNEL_PREFIX) are counted
apart, in `texts`: by door, answered by a person or not, and the time from the first text to
the first human reply (the automatic answer does not count). A call whose caller then texted
stays a call (`texts.calls_with_texts` counts those).
"""

from __future__ import annotations

import csv
import io
import statistics
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ivr.store import Incident
from ivr.texts import DOORS, TEXT_CHANNEL_PREFIX, TEXT_FLAG

CATEGORIES = ("emergency", "information", "prank", "ghost")


def _seconds(a: str | None, b: str | None) -> float | None:
    if not a or not b:
        return None
    return (datetime.fromisoformat(b) - datetime.fromisoformat(a)).total_seconds()


def person_answer_s(incident: Incident, agency_answers: dict[int, str]) -> float | None:
    """Seconds from arrival to the first person: the operator, or an agency's trunk."""
    times = [t for t in (incident.operator_answered_at, agency_answers.get(incident.id)) if t]
    return _seconds(incident.arrived_at, min(times)) if times else None


def is_text_conversation(incident: Incident) -> bool:
    """True for an incident a text opened (not a call, even one whose caller then texted)."""
    return incident.channel_id.startswith(TEXT_CHANNEL_PREFIX)


@dataclass
class TextFigures:
    conversations: int = 0
    answered: int = 0
    waiting: int = 0  # no human reply yet, not closed
    closed_unanswered: int = 0
    by_door: dict[str, int] = field(default_factory=lambda: dict.fromkeys(DOORS, 0))
    categories: dict[str, int] = field(default_factory=lambda: dict.fromkeys(CATEGORIES, 0))
    first_reply_s: list[float] = field(default_factory=list)
    calls_with_texts: int = 0

    def add(self, incident: Incident) -> None:
        self.conversations += 1
        if incident.carrier in self.by_door:
            self.by_door[incident.carrier] += 1
        if incident.category in self.categories:
            self.categories[incident.category] += 1
        reply = _seconds(incident.arrived_at, incident.operator_answered_at)
        if reply is not None:
            self.answered += 1
            self.first_reply_s.append(reply)
        elif incident.closed_at or incident.ended_at:
            self.closed_unanswered += 1
        else:
            self.waiting += 1

    def as_dict(self) -> dict[str, Any]:
        times = sorted(self.first_reply_s)
        return {
            "conversations": self.conversations, "answered": self.answered, "waiting": self.waiting,
            "closed_unanswered": self.closed_unanswered, "by_door": self.by_door, "categories": self.categories,
            "first_reply_mean_s": round(sum(times) / len(times), 1) if times else None,
            "first_reply_median_s": round(statistics.median(times), 1) if times else None,
            "first_reply_max_s": round(times[-1], 1) if times else None,
            "calls_with_texts": self.calls_with_texts,
        }


@dataclass
class Figures:
    calls: int = 0
    answered: int = 0
    within_15s: int = 0
    within_20s: int = 0
    abandoned: int = 0
    in_progress: int = 0
    categories: dict[str, int] = field(default_factory=lambda: dict.fromkeys(CATEGORIES, 0))
    per_operator: dict[str, dict[str, float]] = field(default_factory=dict)
    texts: TextFigures = field(default_factory=TextFigures)

    @staticmethod
    def share(part: int, whole: int) -> float | None:
        return round(100.0 * part / whole, 1) if whole else None

    def as_dict(self) -> dict[str, Any]:
        classified = sum(self.categories.values())
        return {
            "calls": self.calls, "answered": self.answered, "abandoned": self.abandoned, "in_progress": self.in_progress,
            "answered_within_15s_pct": self.share(self.within_15s, self.answered),
            "answered_within_20s_pct": self.share(self.within_20s, self.answered),
            "abandoned_pct": self.share(self.abandoned, self.calls),
            "categories": self.categories,
            "prank_pct": self.share(self.categories["prank"], classified),
            "ghost_pct": self.share(self.categories["ghost"], classified),
            "per_operator": self.per_operator,
            "texts": self.texts.as_dict(),
        }


def figures(incidents: list[Incident], agency_answers: dict[int, str]) -> Figures:
    out = Figures()
    waits: dict[str, list[float]] = {}
    for incident in incidents:
        if is_text_conversation(incident):
            out.texts.add(incident)
            continue
        out.calls += 1
        out.texts.calls_with_texts += TEXT_FLAG in (incident.flags or "").split(",")
        answer = person_answer_s(incident, agency_answers)
        if answer is not None:
            out.answered += 1
            out.within_15s += answer <= 15
            out.within_20s += answer <= 20
        elif incident.ended_at:
            out.abandoned += 1
        else:
            out.in_progress += 1
        if incident.category in out.categories:
            out.categories[incident.category] += 1
        if incident.operator and answer is not None:
            waits.setdefault(incident.operator, []).append(answer)
    for name, values in sorted(waits.items()):
        out.per_operator[name] = {"answered": len(values), "mean_answer_s": round(sum(values) / len(values), 1)}
    return out


def to_csv(period: tuple[str, str], data: dict[str, Any]) -> str:
    """One row per figure, for the national monitoring report."""
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["from", "to", "figure", "value"])
    for key, value in data.items():
        if isinstance(value, dict):
            for sub, v in value.items():
                if isinstance(v, dict):
                    for k2, v2 in v.items():
                        w.writerow([*period, f"{key}.{sub}.{k2}", v2])
                else:
                    w.writerow([*period, f"{key}.{sub}", v])
        else:
            w.writerow([*period, key, "" if value is None else value])
    return buf.getvalue()
