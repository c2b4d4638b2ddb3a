"""The callback list: every call that ended before a person answered, one entry per number.

An entry opens when a call from a number ends unanswered by any person (operator or
agency), counts further unanswered calls, and closes when a callback connects or the
number calls in again and a person answers. While an operator's callback is being placed
the entry is "calling", and a second callback to the same number is refused: no duplicate
callbacks. Runs on the store's one writer thread (see ari_app.storage), so each function
is one consistent step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ivr.errors import Ivr112Error
from ivr.store import IncidentStore, now

OPEN, CALLING, CLOSED = "open", "calling", "closed"
# A callback "calling" for longer than this is taken as lost (app restart): it may be placed again.
CALLING_STALE_S = 180


class CallbackRefused(Ivr112Error):
    """A callback that must not be placed: no open entry, or one already being placed."""


@dataclass(frozen=True)
class Callback:
    number: str
    incident_id: int | None
    first_at: str
    last_call_at: str
    calls: int
    attempts: int
    status: str
    operator: str | None
    started_at: str | None
    closed_at: str | None
    closed_reason: str | None


def _row(store: IncidentStore, number: str) -> dict[str, Any] | None:
    rows = list(store.db["callbacks"].rows_where("number = ?", [number]))
    return rows[0] if rows else None


def get(store: IncidentStore, number: str) -> Callback | None:
    row = _row(store, number)
    return Callback(**row) if row else None


def missed(store: IncidentStore, number: str, incident_id: int | None, *, at: str | None = None) -> Callback | None:
    """A call from `number` ended with no person: open its entry or count one more call.
    Numbers that cannot be called back (empty, anonymous) are not listed."""
    if not number or not any(c.isdigit() for c in number):
        return None
    at = at or now()
    row = _row(store, number)
    with store.db.conn:
        table = store.db["callbacks"]
        if row is None or row["status"] == CLOSED:
            table.insert(  # type: ignore[union-attr]
                {"number": number, "incident_id": incident_id, "first_at": at, "last_call_at": at, "calls": 1, "attempts": 0,
                 "status": OPEN, "operator": None, "started_at": None, "closed_at": None, "closed_reason": None},
                replace=True,
            )
        else:
            table.update(number, {"incident_id": incident_id, "last_call_at": at, "calls": row["calls"] + 1})  # type: ignore[union-attr]
    return get(store, number)


def answered(store: IncidentStore, number: str, *, reason: str) -> bool:
    """A person spoke with `number` (it called again and was answered, or a callback connected)."""
    row = _row(store, number)
    if row is None or row["status"] == CLOSED:
        return False
    with store.db.conn:
        store.db["callbacks"].update(number, {"status": CLOSED, "closed_at": now(), "closed_reason": reason})  # type: ignore[union-attr]
    return True


def start(store: IncidentStore, number: str, operator: str) -> Callback:
    """Mark the entry as being called back by `operator`; refuse a closed entry or a duplicate."""
    row = _row(store, number)
    if row is None:
        raise CallbackRefused(f"{number} is not on the callback list")
    if row["status"] == CLOSED:
        raise CallbackRefused(f"{number} needs no callback: {row['closed_reason'] or 'closed'} at {row['closed_at']}")
    if row["status"] == CALLING and not _stale(row["started_at"]):
        raise CallbackRefused(f"{number} is already being called back by {row['operator']} (since {row['started_at']})")
    with store.db.conn:
        store.db["callbacks"].update(  # type: ignore[union-attr]
            number, {"status": CALLING, "operator": operator, "started_at": now(), "attempts": row["attempts"] + 1}
        )
    found = get(store, number)
    assert found is not None
    return found


def finish(store: IncidentStore, number: str, *, connected: bool, detail: str = "") -> None:
    """The callback ended: connected closes the entry, anything else leaves it open."""
    if connected:
        answered(store, number, reason="callback connected")
        return
    row = _row(store, number)
    if row is not None and row["status"] == CALLING:
        with store.db.conn:
            store.db["callbacks"].update(number, {"status": OPEN, "closed_reason": detail or None})  # type: ignore[union-attr]


def listing(store: IncidentStore, *, include_closed: bool = False, limit: int = 200) -> list[Callback]:
    where = None if include_closed else "status != 'closed'"
    rows = store.db["callbacks"].rows_where(where, order_by="last_call_at desc", limit=limit)
    return [Callback(**r) for r in rows]


def redial(store: IncidentStore, number: str, *, since: str) -> bool:
    """True when `number` has an open entry from a call since `since`: it dropped and calls again."""
    row = _row(store, number)
    return row is not None and row["status"] != CLOSED and row["last_call_at"] >= since


def _stale(started_at: str | None) -> bool:
    if not started_at:
        return True
    from datetime import datetime

    age = datetime.fromisoformat(now()) - datetime.fromisoformat(started_at)
    return age.total_seconds() > CALLING_STALE_S
