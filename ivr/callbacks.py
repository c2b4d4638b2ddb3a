"""The callback list: every call that ended before a person answered, one entry per number.

An entry opens when a call from a number ends unanswered by any person (operator or
agency), counts further unanswered calls, and closes when a callback connects or the
number calls in again and a person answers. While an operator's callback is being placed
the entry is "calling", and a second callback to the same number is refused: no duplicate
callbacks. Each function is one step that reads and changes the entry under the store's
lock (`RecordStore.change_callback`), so it stays consistent when several app nodes on
one store change the same entry at once.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from ivr.errors import Ivr112Error
from ivr.store import RecordStore, now

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


def get(store: RecordStore, number: str) -> Callback | None:
    return store.callback(number)


def missed(store: RecordStore, number: str, incident_id: int | None, *, at: str | None = None) -> Callback | None:
    """A call from `number` ended with no person: open its entry or count one more call.
    Numbers that cannot be called back (empty, anonymous) are not listed. A call already
    counted (the same incident, closed by two nodes at once: its own and the cluster's
    sweeper) is not counted again; None then, as there is nothing new to tell."""
    if not number or not any(c.isdigit() for c in number):
        return None
    at = at or now()

    def count(entry: Callback | None) -> Callback | None:
        if entry is not None and entry.status != CLOSED and incident_id is not None and entry.incident_id == incident_id:
            return None
        if entry is None or entry.status == CLOSED:
            return Callback(number=number, incident_id=incident_id, first_at=at, last_call_at=at, calls=1, attempts=0,
                            status=OPEN, operator=None, started_at=None, closed_at=None, closed_reason=None)
        return replace(entry, incident_id=incident_id, last_call_at=at, calls=entry.calls + 1)

    return store.change_callback(number, count)


def answered(store: RecordStore, number: str, *, reason: str) -> bool:
    """A person spoke with `number` (it called again and was answered, or a callback connected)."""

    def close(entry: Callback | None) -> Callback | None:
        if entry is None or entry.status == CLOSED:
            return None
        return replace(entry, status=CLOSED, closed_at=now(), closed_reason=reason)

    return store.change_callback(number, close) is not None


def start(store: RecordStore, number: str, operator: str) -> Callback:
    """Mark the entry as being called back by `operator`; refuse a closed entry or a duplicate."""

    def begin(entry: Callback | None) -> Callback:
        if entry is None:
            raise CallbackRefused(f"{number} is not on the callback list")
        if entry.status == CLOSED:
            raise CallbackRefused(f"{number} needs no callback: {entry.closed_reason or 'closed'} at {entry.closed_at}")
        if entry.status == CALLING and not _stale(entry.started_at):
            raise CallbackRefused(f"{number} is already being called back by {entry.operator} (since {entry.started_at})")
        return replace(entry, status=CALLING, operator=operator, started_at=now(), attempts=entry.attempts + 1)

    started = store.change_callback(number, begin)
    assert started is not None  # begin never returns None
    return started


def finish(store: RecordStore, number: str, *, connected: bool, detail: str = "") -> None:
    """The callback ended: connected closes the entry, anything else leaves it open."""
    if connected:
        answered(store, number, reason="callback connected")
        return

    def reopen(entry: Callback | None) -> Callback | None:
        return replace(entry, status=OPEN, closed_reason=detail or None) if entry is not None and entry.status == CALLING else None

    store.change_callback(number, reopen)


def listing(store: RecordStore, *, include_closed: bool = False, limit: int = 200) -> list[Callback]:
    """The list, newest call first; closed entries only with `include_closed`."""
    return store.callbacks(include_closed=include_closed, limit=limit)


def redial(store: RecordStore, number: str, *, since: str) -> bool:
    """True when `number` has an open entry from a call since `since`: it dropped and calls again."""
    entry = store.callback(number)
    return entry is not None and entry.status != CLOSED and entry.last_call_at >= since


def _stale(started_at: str | None) -> bool:
    if not started_at:
        return True
    from datetime import datetime

    age = datetime.fromisoformat(now()) - datetime.fromisoformat(started_at)
    return age.total_seconds() > CALLING_STALE_S
