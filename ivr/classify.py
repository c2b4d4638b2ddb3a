"""What an answered call was, as the operator says: emergency, information, prank, ghost.

A number classified prank `count` times within `window_hours` is flagged for
`block_hours` after the last of them (the plan's `prank:`), unless a supervisor cleared the
number after it. A flagged number is never blocked: the call flow warns it first and still
offers a key to an operator (ivr.menu).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from ivr.errors import Ivr112Error
from ivr.plan import PrankPolicy
from ivr.store import RecordStore, now

CATEGORIES = ("emergency", "information", "prank", "ghost")


class ClassifyError(Ivr112Error):
    pass


def classify(store: RecordStore, incident_id: int, category: str, *, by: str, notes: str = "") -> None:
    if category not in CATEGORIES:
        raise ClassifyError(f"category {category!r} is unknown; use one of {', '.join(CATEGORIES)}")
    if store.get(incident_id) is None:
        raise ClassifyError(f"incident {incident_id} does not exist")
    fields = {"category": category, "classified_by": by, "classified_at": now()}
    if notes:
        fields["notes"] = notes[:2000]
    store.update(incident_id, **fields)
    store.add_event(incident_id, "classified", {"category": category, "by": by})


def _ago(hours: float, at: str | None = None) -> str:
    base = datetime.fromisoformat(at or now())
    return (base - timedelta(hours=hours)).isoformat(timespec="milliseconds")


def prank_flagged(store: RecordStore, number: str, policy: PrankPolicy, *, at: str | None = None) -> bool:
    """Is `number` flagged as a prank caller now (or at `at`)?"""
    if not number:
        return False
    times = store.prank_times(number, after=_ago(policy.block_hours + policy.window_hours, at))
    if len(times) < policy.count:
        return False  # most callers: one read, not two (a clear only takes times away)
    clear = store.number_clear(number)
    if clear is not None:  # a supervisor lifted the flag: only later prank calls count
        times = [t for t in times if t > clear.cleared_at]
        if len(times) < policy.count:
            return False
    last = times[0]
    if last < _ago(policy.block_hours, at):
        return False
    in_window = [t for t in times if t >= _ago(policy.window_hours, last)]
    return len(in_window) >= policy.count


def clear(store: RecordStore, number: str, *, by: str) -> None:
    """A supervisor lifts the prank flag of `number` (later prank calls count afresh)."""
    store.clear_number(number, by=by)
