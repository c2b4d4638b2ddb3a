"""Named writes: every write the call path hands to the store, by name, with arguments that
are plain JSON (so a write can wait in the spool and be replayed by a later run).

`AsyncStore.write(name, incident_id, **args)` hands one over (see writer.py): it is applied
on the store's thread, or kept in order (memory and spool) while the store fails and
replayed when it is back. Each lands exactly once:

- the incident's own writes keep natural keys: `open` by the channel id (unique), `event`
  by its write key (`incident_events.write_key`, unique), `update` sets the same fields again;
- every other write (`KEYED`) records its key in `applied_writes` in the same transaction
  as the write itself: a replay whose key is there is skipped, and a write whose commit
  failed half-way left no key and no row.

`incident_id` is the call's incident as the call knows it (a provisional negative id while
the store was down when it opened); the writer passes the real one. A write whose decision
needs the store (is the caller still unanswered? which incident has this channel?) reads it
inside the write, on the store's thread, after the writes handed over before it: so the
call path never waits on a read to decide, and the decision is the same when replayed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Connection, Engine

from ari_app.store import IncidentStore
from ari_app.store.base import insert_new
from ari_app.store.schema import applied_writes
from ivr import callbacks
from ivr.callbacks import Callback
from ivr.location import Location
from ivr.store import Incident, now

Apply = Callable[..., Any]  # (store, real incident id or None, write key, **args) -> result


@dataclass(frozen=True)
class NamedWrite:
    name: str
    apply: Apply
    keyed: bool  # lands once by its key in applied_writes (else by a natural key of its own)


WRITES: dict[str, NamedWrite] = {}


def named(name: str, *, keyed: bool = True) -> Callable[[Apply], Apply]:
    def register(fn: Apply) -> Apply:
        WRITES[name] = NamedWrite(name, fn, keyed)
        return fn

    return register


class UnknownWrite(ValueError):
    """A write name no one registered: a programming error, never kept or retried."""


def check(name: str) -> NamedWrite:
    found = WRITES.get(name)
    if found is None:
        raise UnknownWrite(f"no named write {name!r}; known: {', '.join(sorted(WRITES))}")
    return found


def apply(store: IncidentStore, name: str, incident_id: int | None, args: dict[str, Any], key: str) -> Any:
    """Apply one named write to the store, once for its key."""
    write = check(name)
    if not write.keyed:
        return write.apply(store, incident_id, key, **args)
    with _once(store, key, name) as bound:
        return None if bound is None else write.apply(bound, incident_id, key, **args)


@contextmanager
def _once(store: IncidentStore, key: str, name: str) -> Iterator[IncidentStore | None]:
    """One transaction holding the key and the write; None when the key is there already."""
    with store.transaction() as conn:  # a group's (writer.py), or one of its own
        fresh = insert_new(conn, applied_writes, {"key": key, "name": name, "applied_at": now()}, key="key")
        yield IncidentStore(cast(Engine, _OneConnection(conn))) if fresh else None


class _OneConnection:
    """What the table groups use of an engine (begin, connect, dialect), over one connection
    in a transaction: every statement of a write then commits, or rolls back, together."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.dialect = conn.dialect
        self.url = conn.engine.url

    def begin(self) -> nullcontext[Connection]:
        return nullcontext(self.conn)

    def connect(self) -> nullcontext[Connection]:
        return nullcontext(self.conn)

    def dispose(self) -> None:
        """The connection belongs to the transaction around it."""


# The incident's own writes (natural keys) ---------------------------------------------------


@named("open", keyed=False)
def _open(s: IncidentStore, incident_id: int | None, key: str, **fields: Any) -> Incident:
    return s.open_incident(**fields)


@named("update", keyed=False)
def _update(s: IncidentStore, incident_id: int, key: str, **fields: Any) -> None:
    s.update(incident_id, **fields)


@named("event", keyed=False)
def _event(s: IncidentStore, incident_id: int, key: str, *, kind: str, detail: dict[str, Any] | None, at: str) -> None:
    s.add_event(incident_id, kind, detail, at=at, key=key)


# Everything else on the call path (applied_writes) ------------------------------------------


def location_args(location: Location) -> dict[str, Any]:
    """A position as the plain JSON a named write carries."""
    return dataclasses.asdict(location)


@named("add_location")
def _add_location(s: IncidentStore, incident_id: int, key: str, *, location: dict[str, Any], kecamatan: str | None,
                  description: str, hint: bool, at: str) -> None:
    place = Location(**{**location, "polygon": tuple(tuple(p) for p in location.get("polygon", ()))})
    s.add_location(incident_id, place, kecamatan=kecamatan, description=description, hint=hint, received_at=at)


@named("add_recording")
def _add_recording(s: IncidentStore, incident_id: int, key: str, *, kind: str, name: str, path: str,
                   duration_s: float | None = None, at: str) -> None:
    s.add_recording(incident_id, kind=kind, name=name, path=path, duration_s=duration_s, created_at=at)


@named("log_operator")
def _log_operator(s: IncidentStore, incident_id: None, key: str, *, operator: str, action: str, detail: dict[str, Any],
                  at: str) -> None:
    s.log_operator(operator, action, detail, at=at)


@named("match_aml")
def _match_aml(s: IncidentStore, incident_id: int, key: str, *, aml_id: int) -> None:
    s.match_aml(aml_id, incident_id)


@named("callback_missed")
def _callback_missed(s: IncidentStore, incident_id: int | None, key: str, *, number: str, at: str) -> Callback | None:
    """The call ended: unless a person answered it (by the record, which holds every write
    handed over before this one), the number goes on the callback list, and the incident
    says so (`callback_listed`)."""
    if incident_id is not None:
        incident = s.get(incident_id)
        if incident is None or answered(incident):
            return None
    entry = callbacks.missed(s, number, incident_id, at=at)
    if entry is not None and incident_id is not None:
        s.add_event(incident_id, "callback_listed", {"number": number, "calls": str(entry.calls)}, at=at)
    return entry


def answered(incident: Incident) -> bool:
    """A person (operator or agency) answered the incident's call."""
    return bool(incident.operator_answered_at) or (incident.route_result or "").startswith("answered by")


@named("callback_answered")
def _callback_answered(s: IncidentStore, incident_id: None, key: str, *, number: str, reason: str) -> bool:
    return callbacks.answered(s, number, reason=reason)


@named("callback_finish")
def _callback_finish(s: IncidentStore, incident_id: None, key: str, *, number: str, connected: bool, detail: str = "") -> None:
    callbacks.finish(s, number, connected=connected, detail=detail)


@named("operator_answered")
def _operator_answered(s: IncidentStore, incident_id: None, key: str, *, channel: str, operator: str, caller: str,
                       hold_s: str, at: str) -> Incident | None:
    """An operator answered a queued call: the incident of its channel (if the app saw the
    call) says who and when, and the number needs no callback."""
    incident = s.by_channel(channel) if channel else None
    reason = f"answered by {operator}"
    if incident is None:
        if caller:  # a call that never met the app (fallback): still no callback needed
            callbacks.answered(s, caller, reason=reason)
        return None
    s.update(incident.id, operator=operator, operator_answered_at=at)
    s.add_event(incident.id, "operator_answered", {"operator": operator, "hold_s": hold_s}, at=at)
    callbacks.answered(s, incident.caller_number, reason=reason)
    return incident


@named("channel_event")
def _channel_event(s: IncidentStore, incident_id: None, key: str, *, channel: str, kind: str, detail: dict[str, Any],
                   at: str, missed_caller: str = "") -> bool:
    """An event on the incident of a caller's channel (queue joined, abandoned, transferred);
    False when no incident has that channel. `missed_caller`: a caller who hung up in the
    queue with no incident (it never went through the app) goes on the callback list."""
    incident = s.by_channel(channel) if channel else None
    if incident is not None:
        s.add_event(incident.id, kind, detail, at=at)
        return True
    if missed_caller:
        callbacks.missed(s, missed_caller, None, at=at)
    return False
