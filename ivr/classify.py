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
from ivr.store import IncidentStore, now

CATEGORIES = ("emergency", "information", "prank", "ghost")


class ClassifyError(Ivr112Error):
    pass


def classify(store: IncidentStore, incident_id: int, category: str, *, by: str, notes: str = "") -> None:
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


def prank_flagged(store: IncidentStore, number: str, policy: PrankPolicy, *, at: str | None = None) -> bool:
    """Is `number` flagged as a prank caller now (or at `at`)?"""
    if not number:
        return False
    cleared = [r["cleared_at"] for r in store.db["number_clears"].rows_where("number = ?", [number])]
    floor = max([_ago(policy.block_hours + policy.window_hours, at), *cleared])
    times = [
        r["classified_at"]
        for r in store.db.query(
            "select classified_at from incidents where caller_number = ? and category = 'prank' and classified_at > ? "
            "order by classified_at desc",
            [number, floor],
        )
    ]
    if len(times) < policy.count:
        return False
    last = times[0]
    if last < _ago(policy.block_hours, at):
        return False
    in_window = [t for t in times if t >= _ago(policy.window_hours, last)]
    return len(in_window) >= policy.count


def clear(store: IncidentStore, number: str, *, by: str) -> None:
    """A supervisor lifts the prank flag of `number` (later prank calls count afresh)."""
    with store.db.conn:
        store.db["number_clears"].insert({"number": number, "cleared_at": now(), "cleared_by": by}, replace=True)  # type: ignore[union-attr]
