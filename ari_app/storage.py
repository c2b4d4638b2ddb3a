"""The incident store under asyncio: every read and write goes through one thread,
so SQLite sees a single writer and the event loop never waits on the disk.

A store that cannot be written (disk full, file system read-only, I/O errors, a file
that cannot be opened) never stops a call. The incident's own writes (open, update, add
an event) are kept in memory, in order, and replayed as soon as the store takes writes
again; an incident opened meanwhile gets a provisional negative id, mapped to its real
id when its row is written. The failure is loud: an ERROR line when it starts and every
`remind_s` while it lasts, `health` says "failing: <why>", and an INFO line says how many
writes were replayed when it ends. Other store calls (`run`) raise StoreUnavailable
while the store fails; callers treat that like any other error on a call (a person
takes it).
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from ivr.errors import Ivr112Error
from ivr.store import Incident, IncidentEvent, IncidentStore, now, open_store

log = logging.getLogger(__name__)
T = TypeVar("T")

RETRY_S = 1.0
REMIND_S = 30.0


class StoreUnavailable(Ivr112Error):
    """The incident store cannot be written (or opened) just now; see the message for why."""


def is_store_fault(exc: BaseException) -> bool:
    """True for faults of the disk or the file (full, read-only, I/O, cannot open, locked),
    False for programming errors (a constraint, a bad statement), which are not retried."""
    if isinstance(exc, (sqlite3.IntegrityError, sqlite3.ProgrammingError, sqlite3.InterfaceError)):
        return False
    return isinstance(exc, (sqlite3.OperationalError, sqlite3.DatabaseError, OSError))


@dataclass
class _Write:
    """One write of a call's incident, kept while the store fails (replayed in order)."""

    kind: str  # open, update, event
    incident_id: int
    fields: dict[str, Any] = field(default_factory=dict)

    def apply(self, store: IncidentStore, ids: dict[int, int]) -> Incident | None:
        if self.kind == "open":
            incident = store.open_incident(**self.fields)
            if self.incident_id < 0:
                ids[self.incident_id] = incident.id
            return incident
        real = ids.get(self.incident_id, self.incident_id)
        if self.kind == "update":
            store.update(real, **self.fields)
        else:
            store.add_event(real, self.fields["kind"], self.fields["detail"], at=self.fields["at"])
        return None

    def describe(self) -> str:
        return json.dumps({"write": self.kind, "incident": self.incident_id, **self.fields}, ensure_ascii=False, default=str)


class AsyncStore:
    def __init__(self, data_dir: Path, *, retry_s: float = RETRY_S, remind_s: float = REMIND_S) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ivr112-store")
        self._data_dir = data_dir
        self._store: IncidentStore | None = None
        self._retry_s = retry_s
        self._remind_s = remind_s
        # Touched only on the store's thread.
        self._pending: deque[_Write] = deque()
        self._ids: dict[int, int] = {}
        self._next_provisional = -1
        self._reopen = False
        self._reminded = 0.0
        # Read from the event loop (health, metrics).
        self.failure = ""
        self.faults = 0
        self.replayed = 0
        # Called (on the store's thread) for each fault: a metrics counter, say.
        self.on_fault: Callable[[], None] | None = None
        self._retry_task: asyncio.Task[None] | None = None

    # Health -----------------------------------------------------------------------------

    @property
    def ok(self) -> bool:
        """True when the last write went to disk and none is waiting."""
        return not self.failure

    @property
    def pending(self) -> int:
        """Writes kept in memory, waiting for the store to take them."""
        return len(self._pending)

    @property
    def health(self) -> str:
        """"ok", or "failing: <why>; <n> writes waiting" for /health and the logs."""
        if not self.failure:
            return "ok"
        return f"failing: {self.failure}; {len(self._pending)} writes waiting"

    # Life cycle -------------------------------------------------------------------------

    async def open(self) -> None:
        """Open the store; if it cannot be opened, start anyway (calls go on) and keep trying."""
        await self._run(self._open_or_fail)
        self._retry_task = asyncio.create_task(self._retry_loop(), name="ivr112-store-retry")

    def _open_or_fail(self) -> None:
        try:
            self._store = open_store(self._data_dir)
        except Exception as exc:
            if not is_store_fault(exc):
                raise
            self._fail(exc, "opening")

    async def close(self) -> None:
        if self._retry_task is not None:
            self._retry_task.cancel()
            await asyncio.gather(self._retry_task, return_exceptions=True)
            self._retry_task = None
        await self._run(self._flush)
        await self._run(self._close_now)
        self._executor.shutdown(wait=True)

    def _close_now(self) -> None:
        for write in self._pending:
            log.error("incident store: stopping with a write never stored (%s): %s", self.failure, write.describe())
        if self._store is not None:
            try:
                self._store.close()
            except sqlite3.Error as exc:
                log.error("incident store: closing failed: %r", exc)
            self._store = None

    async def _run(self, fn: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn)

    # Faults and recovery (on the store's thread) ----------------------------------------

    def _fail(self, exc: BaseException, doing: str) -> None:
        why = f"{doing}: {exc}"
        self.faults += 1
        if self.on_fault is not None:
            self.on_fault()
        self._reopen = True
        moment = time.monotonic()
        if why != self.failure or moment - self._reminded >= self._remind_s:
            log.error(
                "incident store %s FAILING (%s); calls go on, %d writes kept in memory and retried every %g s",
                self._data_dir, why, len(self._pending) + 1, self._retry_s,
            )
            self._reminded = moment
        self.failure = why

    def _flush(self) -> None:
        """Reopen the store if a fault may have spoiled the connection, then write what waits."""
        if not self.failure and not self._pending:
            return
        try:
            if self._reopen or self._store is None:
                if self._store is not None:
                    try:
                        self._store.close()
                    except sqlite3.Error:
                        pass
                    self._store = None
                self._store = open_store(self._data_dir)
                self._reopen = False
            count = 0
            while self._pending:
                self._pending[0].apply(self._store, self._ids)
                self._pending.popleft()
                count += 1
        except Exception as exc:
            if not is_store_fault(exc):
                # A write the store refuses for good (a bug): dropped loudly, not retried for ever.
                bad = self._pending.popleft() if self._pending else None
                log.error("incident store: a kept write was refused (%r) and dropped: %s", exc, bad.describe() if bad else "-")
                return
            self._fail(exc, "retrying")
            return
        if self.failure:
            log.warning("incident store %s writes again: %d kept writes stored (was failing: %s)", self._data_dir, count, self.failure)
        self.replayed += count
        self.failure = ""

    async def _retry_loop(self) -> None:
        while True:
            await asyncio.sleep(self._retry_s)
            if self.failure or self._pending:
                await self._run(self._flush)

    # The incident's writes: kept and replayed when the store fails ------------------------

    def _write(self, write: _Write) -> Incident | None:
        if not self._pending and self._store is not None:
            try:
                return write.apply(self._store, self._ids)
            except Exception as exc:
                if not is_store_fault(exc):
                    raise
                self._fail(exc, f"writing ({write.kind})")
        elif self._store is None and not self.failure:
            raise StoreUnavailable("the incident store is not open")
        self._pending.append(write)
        if write.kind == "open":
            return Incident(id=write.incident_id, **{k: write.fields[k] for k in _OPEN_FIELDS})
        return None

    async def open_incident(self, **fields: Any) -> Incident:
        fields.setdefault("arrived_at", now())
        fields.setdefault("carrier", "")
        fields.setdefault("language", "id")

        def write() -> Incident:
            provisional = self._next_provisional
            incident = self._write(_Write("open", provisional, dict(fields)))
            assert incident is not None
            if incident.id == provisional:
                self._next_provisional -= 1
            return incident

        return await self._run(write)

    async def update(self, incident_id: int, **fields: Any) -> None:
        await self._run(lambda: self._write(_Write("update", incident_id, fields)))

    async def add_event(self, incident_id: int, kind: str, detail: dict[str, Any] | None = None) -> None:
        write = _Write("event", incident_id, {"kind": kind, "detail": detail, "at": now()})
        await self._run(lambda: self._write(write))

    # Everything else ------------------------------------------------------------------------

    def _s(self) -> IncidentStore:
        if self._store is None:
            raise StoreUnavailable(f"the incident store is not open ({self.failure or 'not opened yet'})")
        return self._store

    async def run(self, fn: Callable[[IncidentStore], T]) -> T:
        """Any store call, on the store's own thread: `await store.run(lambda s: s.cell(key))`.

        Raises StoreUnavailable when the disk or file fails (the store is then marked failing).
        """

        def call() -> T:
            try:
                return fn(self._s())
            except StoreUnavailable:
                raise
            except Exception as exc:
                if not is_store_fault(exc):
                    raise
                self._fail(exc, "a store call")
                raise StoreUnavailable(f"incident store failing: {exc}") from exc

        return await self._run(call)

    def real_id(self, incident_id: int) -> int:
        """The stored id of an incident opened with a provisional id (itself otherwise)."""
        return self._ids.get(incident_id, incident_id)

    async def get(self, incident_id: int) -> Incident | None:
        return await self.run(lambda s: s.get(self.real_id(incident_id)))

    async def by_channel(self, channel_id: str) -> Incident | None:
        return await self.run(lambda s: s.by_channel(channel_id))

    async def events(self, incident_id: int) -> list[IncidentEvent]:
        return await self.run(lambda s: s.events(self.real_id(incident_id)))

    async def recent(self, limit: int = 50) -> list[Incident]:
        return await self.run(lambda s: s.recent(limit))


_OPEN_FIELDS = ("channel_id", "plan_id", "caller_number", "called_number", "carrier", "language", "arrived_at")
