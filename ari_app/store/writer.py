"""The store under asyncio: every read and write goes through one thread, so the store
sees a single writer and the event loop never waits on a disk or a server.

The call path hands its writes to that thread as named writes (writes.py: open an
incident, update it, add an event, list a missed caller, index a recording, keep a
position, a line of the operators' log...) and goes on: they return at once, and the few
that return something (`open_incident` its row's id) wait for it only while the store is
healthy. A store that cannot be written (disk full, read-only,
a PostgreSQL server down or unreachable) never stops a call: the writes are kept in order,
in memory (bounded by `backlog_max`) and in a local spool file (an app restart loses
none), and replayed as soon as the store takes writes again, each exactly once (see
spool.py). An incident opened meanwhile gets a provisional negative id, mapped to its real
id when its row is written.

Writes are grouped: the thread takes every write handed over since it last looked and
stores them in one transaction (one commit, so one fsync on SQLite and one WAL flush on
PostgreSQL, however many calls wrote meanwhile), in the order they were handed over, so an
incident's end is never stored before the events that came before it. A keyed write's key
(applied_writes, writes.py) goes in the same transaction as its change, so a group that
fails leaves neither. A write the store refuses for good (a bug) spoils only itself: the
group is then stored one write at a time, and that one is dropped loudly.

The failure is loud: an ERROR line when it starts and every `remind_s` while it lasts,
`health` says "failing: <why>; <n> writes waiting", and a WARNING says how many writes were
replayed when it ends. Reads (`run`) raise StoreUnavailable while the store fails; callers
treat that like any other error on a call (a person takes it).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
import time
from collections import ChainMap, deque
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from ari_app.store import IncidentStore, open_store, writes
from ari_app.store.engine import is_store_fault, safe_url
from ari_app.store.incidents import check_fields
from ari_app.store.spool import SPOOL_FILE, Spool
from ari_app.store.thread import StoreThread, answer_later
from ari_app.threads import STORE_THREAD
from ari_app.unique import new_id
from ivr.errors import Ivr112Error
from ivr.store import Incident, IncidentEvent, now

log = logging.getLogger(__name__)
T = TypeVar("T")

RETRY_S = 1.0
REMIND_S = 30.0
BACKLOG_MAX = 100_000
GROUP_MAX = 500  # writes stored in one transaction at most (an opening call waits for its group)
# The writes that keep no key whose table methods read and write on the group's connection
# (Tables.transaction), so they may share a transaction; every keyed write does too (its key
# and its change go in `writes._once`'s transaction, the group's). Any other is stored alone.
UNKEYED_GROUPED = frozenset({"open", "update", "event"})



class StoreUnavailable(Ivr112Error):
    """The incident store cannot be written (or opened) just now; see the message for why."""


_OPEN_FIELDS = ("channel_id", "plan_id", "caller_number", "called_number", "carrier", "language", "arrived_at")


@dataclass
class _Write:
    """One named write (writes.py), as handed over, kept and spooled while the store fails."""

    kind: str  # the write's name: open, update, event, add_location, callback_missed...
    incident_id: int | None  # as the call knows it (provisional while negative); None: about no incident
    fields: dict[str, Any] = field(default_factory=dict)
    key: str = field(default_factory=new_id)  # applied_writes, incident_events.write_key
    # An open whose caller waits for it and is told its real id: the call never uses the
    # provisional one, so no mapping is kept for it (one per call, for the app's life).
    told: bool = field(default=False, compare=False)

    def apply(self, store: IncidentStore, ids: MutableMapping[int, int]) -> Any:
        if self.kind == "open":
            incident = writes.apply(store, "open", self.incident_id, self.fields, self.key)
            if self.incident_id is not None and self.incident_id < 0 and not self.told:
                ids[self.incident_id] = incident.id
            return incident
        real = None if self.incident_id is None else ids.get(self.incident_id, self.incident_id)
        if real is not None and real < 0:
            raise ValueError(f"incident {self.incident_id} was never opened")
        return writes.apply(store, self.kind, real, self.fields, self.key)

    def saved(self, ids: Mapping[int, int]) -> dict[str, Any]:
        """As a spool line, with the real id where it is known by now."""
        incident_id = None if self.incident_id is None else ids.get(self.incident_id, self.incident_id)
        return {"kind": self.kind, "incident_id": incident_id, "fields": self.fields, "key": self.key}

    def describe(self) -> str:
        return json.dumps({"write": self.kind, "incident": self.incident_id, **self.fields}, ensure_ascii=False, default=str)


class AsyncStore:
    def __init__(self, data_dir: Path, *, url: str = "", retry_s: float = RETRY_S, remind_s: float = REMIND_S,
                 backlog_max: int = BACKLOG_MAX) -> None:
        self._thread = StoreThread(STORE_THREAD)
        self._data_dir = data_dir
        self._url = url
        self.where = safe_url(url) if url else str(data_dir)
        self._store: IncidentStore | None = None
        self._retry_s = retry_s
        self._remind_s = remind_s
        self._backlog_max = backlog_max
        self.spool = Spool(data_dir / SPOOL_FILE)
        # Touched only on the store's thread.
        self._pending: deque[_Write] = deque()
        # Handed over and not yet taken by the store's thread (both sides, under the lock).
        self._lock = threading.Lock()
        self._queue: list[_Handed] = []
        self._drain_due = False
        self._ids: dict[int, int] = {}
        self._reopen = False
        self._reminded = 0.0
        self._handled = 0
        # Touched only on the event loop.
        self._next_provisional = -1
        self._submitted = 0
        # Read from the event loop (health, metrics).
        self.failure = ""
        self.faults = 0
        self.replayed = 0
        self.dropped = 0
        # Called (on the store's thread) for each fault: a metrics counter, say.
        self.on_fault: Callable[[], None] | None = None
        self._retry_task: asyncio.Task[None] | None = None

    # Health -----------------------------------------------------------------------------

    @property
    def ok(self) -> bool:
        """True when the last write went to the store and none is kept waiting."""
        return not self.failure

    @property
    def pending(self) -> int:
        """Writes kept (in memory and the spool), waiting for the store to take them."""
        return len(self._pending)

    @property
    def mapped(self) -> int:
        """Provisional incident ids mapped to real ones: one per open kept while the store
        failed (its call goes on with the provisional id), none for a call told its real id."""
        return len(self._ids)

    @property
    def backlog(self) -> int:
        """Writes handed over and not yet in the store: kept ones plus those queued for the thread."""
        return len(self._pending) + max(0, self._submitted - self._handled)

    @property
    def health(self) -> str:
        """"ok", or "failing: <why>; <n> writes waiting" for /health and the logs."""
        if not self.failure:
            return "ok"
        lost = f"; {self.dropped} writes dropped (backlog full)" if self.dropped else ""
        return f"failing: {self.failure}; {len(self._pending)} writes waiting{lost}"

    # Life cycle -------------------------------------------------------------------------

    async def open(self) -> None:
        """Take back what an earlier run spooled, then open the store; if it cannot be opened,
        start anyway (calls go on) and keep trying."""
        await self._run(self._load_spool)
        await self._run(self._open_or_fail)
        if self._store is not None and self._pending:
            await self._run(self._flush)
        self._retry_task = asyncio.create_task(self._retry_loop(), name="ivr112-store-retry")

    def _load_spool(self) -> None:
        for item in self.spool.load():
            incident_id = item.get("incident_id")
            self._pending.append(_Write(item["kind"], None if incident_id is None else int(incident_id), item["fields"], item["key"]))
        if self._pending:
            self._next_provisional = min([-1, *(w.incident_id - 1 for w in self._pending if w.incident_id is not None)])
            log.warning("incident store: %d writes spooled by an earlier run (%s) are replayed", len(self._pending), self.spool.path)

    def _open_or_fail(self) -> None:
        try:
            self._store = self._open_here()
        except Exception as exc:
            if not is_store_fault(exc):
                raise
            self._fail(exc, "opening")

    def _open_here(self) -> IncidentStore:
        """Open the store for this thread (the store's): it keeps one connection between its
        transactions instead of taking one from the pool for each (held.py)."""
        store = open_store(self._data_dir, self._url)
        store.hold()
        return store

    async def close(self) -> None:
        if self._retry_task is not None:
            self._retry_task.cancel()
            await asyncio.gather(self._retry_task, return_exceptions=True)
            self._retry_task = None
        await self._run(self._flush)
        await self._run(self._close_now)
        self._thread.stop()

    def _close_now(self) -> None:
        if self._pending:
            where = f"kept in {self.spool.path} for the next start" if not self.spool.broken else "NEVER STORED (the spool failed)"
            log.error("incident store: stopping with %d writes not stored (%s): %s", len(self._pending), self.failure, where)
            for write in self._pending:
                log.error("incident store: write not stored yet: %s", write.describe())
        if self._store is not None:
            try:
                self._store.close()
            except Exception as exc:
                log.error("incident store: closing failed: %r", exc)
            self._store = None

    async def _run(self, fn: Callable[[], T]) -> T:
        return await self._thread.run(fn)

    async def settle(self) -> None:
        """Wait until every write handed over so far has been stored or kept."""
        await self._run(lambda: None)

    # Faults and recovery (on the store's thread) ----------------------------------------

    def _fail(self, exc: BaseException, doing: str) -> None:
        why = f"{doing}: {_first_line(exc)}"
        self.faults += 1
        if self.on_fault is not None:
            self.on_fault()
        self._reopen = True
        moment = time.monotonic()
        if why != self.failure or moment - self._reminded >= self._remind_s:
            log.error(
                "incident store %s FAILING (%s); calls go on, %d writes kept (spool %s) and retried every %g s",
                self.where, why, len(self._pending) + 1, self.spool.path, self._retry_s,
            )
            self._reminded = moment
        self.failure = why

    def _flush(self) -> None:
        """Reopen the store if a fault may have spoiled the connection, then write what waits, in order."""
        if not self.failure and not self._pending:
            return
        count = 0
        try:
            if self._reopen or self._store is None:
                if self._store is not None:
                    try:
                        self._store.close()
                    except Exception:  # the connection is being replaced anyway
                        pass
                    self._store = None
                self._store = self._open_here()
                self._reopen = False
            while self._pending:
                self._pending[0].apply(self._store, self._ids)
                self._pending.popleft()
                count += 1
        except Exception as exc:
            if not is_store_fault(exc):
                # A write the store refuses for good (a bug): dropped loudly, not retried for ever.
                bad = self._pending.popleft() if self._pending else None
                log.error("incident store: a kept write was refused (%r) and dropped: %s", exc, bad.describe() if bad else "-")
                self.spool.rewrite([w.saved(self._ids) for w in self._pending])
                return
            self.spool.rewrite([w.saved(self._ids) for w in self._pending])
            self.replayed += count
            self._fail(exc, "retrying")
            return
        self.spool.rewrite([])
        if self.failure:
            log.warning("incident store %s writes again: %d kept writes stored (was failing: %s)", self.where, count, self.failure)
        self.replayed += count
        self.failure = ""

    async def _retry_loop(self) -> None:
        while True:
            await asyncio.sleep(self._retry_s)
            if self.failure or self._pending:
                await self._run(self._flush)

    # The incident's writes: handed over, kept and replayed when the store fails ---------

    def _drain(self) -> None:
        """Store what was handed over since the last drain, in groups (see the module's doc)."""
        with self._lock:
            taken, self._queue = self._queue, []
            self._drain_due = False
        for group in _groups(taken):
            self._store_group(group)

    def _store_group(self, group: list[_Handed]) -> None:
        # A caller that stopped waiting (its task cancelled) still has its write stored; only
        # its answer is not set (thread.py).
        for write, answer in group:
            write.told = answer is not None
        try:
            results = self._write_group([write for write, _ in group])
        except Exception as exc:  # a bug here must not leave a waiting call waiting for ever
            log.exception("incident store: %d writes could not be handed to the store", len(group))
            results = [exc] * len(group)
        for (write, answer), result in zip(group, results, strict=True):
            if answer is not None:
                answer(result)
            elif isinstance(result, BaseException):
                log.error("incident store: a write was refused and dropped (%r): %s", result, write.describe())

    def _write_group(self, group: list[_Write]) -> list[Any]:
        """Each write's result: what it returned, what a kept one gives back, or why it was refused."""
        try:
            if not self._pending and self._store is not None:
                try:
                    return self._apply_together(self._store, group)
                except Exception as exc:
                    if not is_store_fault(exc):
                        return [self._write_alone(write) for write in group]
                    self._fail(exc, f"writing ({', '.join(sorted({w.kind for w in group}))})")
            elif self._store is None and not self.failure:
                return [StoreUnavailable("the incident store is not open") for _ in group]
            for write in group:
                self._keep(write)
            return [_kept(write) for write in group]
        finally:
            self._handled += len(group)

    def _apply_together(self, store: IncidentStore, group: list[_Write]) -> list[Any]:
        """The group in one transaction; ids of opens replayed in it count only once it is committed."""
        fresh: dict[int, int] = {}
        ids = ChainMap(fresh, self._ids)  # the group's new ids go to `fresh`
        # A write alone needs no batch: it is in a transaction of its own (or, one statement,
        # needs none: Tables.statement).
        with store.batch() if len(group) > 1 and all(_grouped(w.kind) for w in group) else contextlib.nullcontext():
            results = [write.apply(store, ids) for write in group]
        self._ids.update(fresh)
        return results

    def _write_alone(self, write: _Write) -> Any:
        """One write in its own transaction, after its group was refused: a bug spoils only its own write."""
        if not self._pending and self._store is not None:
            try:
                return write.apply(self._store, self._ids)
            except Exception as exc:
                if not is_store_fault(exc):
                    return exc
                self._fail(exc, f"writing ({write.kind})")
        self._keep(write)
        return _kept(write)

    def _keep(self, write: _Write) -> None:
        if len(self._pending) >= self._backlog_max:
            self.dropped += 1
            log.error("incident store: backlog full (%d writes), a write is DROPPED: %s", self._backlog_max, write.describe())
            return
        write.told = False  # its caller is given the provisional id
        self._pending.append(write)
        self.spool.append(write.saved(self._ids))

    def _hand_over(self, write: _Write, answer: Callable[[Any], None] | None = None) -> None:
        """Queue a write for the store's thread and go on; a bug in it is logged there (or
        given to its waiting caller, `answer`). A drain is due once per group: FIFO with
        `run`, so a store call sees every write handed over before it."""
        self._submitted += 1
        with self._lock:
            self._queue.append((write, answer))
            if self._drain_due:
                return
            self._drain_due = True
        self._thread.put(self._drain)

    async def open_incident(self, **fields: Any) -> Incident:
        """Open the call's incident. Its real id while the store is healthy; a provisional
        (negative) one at once while it fails: later writes with it reach the real row."""
        fields.setdefault("arrived_at", now())
        fields.setdefault("carrier", "")
        fields.setdefault("language", "id")
        incident_id = self._next_provisional
        self._next_provisional -= 1
        incident: Incident = await self.write("open", incident_id, wait=True, **fields)
        return incident

    async def update(self, incident_id: int, **fields: Any) -> None:
        """Set fields of the incident (handed over: returns at once). Unknown fields raise ValueError."""
        check_fields(fields)
        await self.write("update", incident_id, **fields)

    async def add_event(self, incident_id: int, kind: str, detail: dict[str, Any] | None = None) -> None:
        """Record one step of the call (handed over: returns at once)."""
        await self.write("event", incident_id, kind=kind, detail=detail, at=now())

    async def write(self, name: str, incident_id: int | None = None, /, *, wait: bool = False, **args: Any) -> Any:
        """Hand the named write `name` (ari_app/store/writes.py) to the store's thread, kept
        and replayed exactly once while the store fails. Returns at once (None); with `wait`,
        and while the store is healthy, waits for it and returns what it returned (None, or
        a provisional incident for `open`, when it was kept instead).

        `args` must be plain JSON (they may wait in the spool); an unknown name, or
        arguments JSON cannot carry, raise at once: a programming error."""
        writes.check(name)
        try:
            json.dumps(args, ensure_ascii=False)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"write {name}: arguments must be plain JSON ({exc})") from exc
        write = _Write(name, incident_id, args)
        if wait and not self.failure:
            done, answer = answer_later(asyncio.get_running_loop())
            self._hand_over(write, answer)
            return await done
        self._hand_over(write)
        return _provisional(write) if name == "open" else None

    # Everything else ------------------------------------------------------------------------

    def _s(self) -> IncidentStore:
        if self._store is None:
            raise StoreUnavailable(f"the incident store is not open ({self.failure or 'not opened yet'})")
        return self._store

    async def run(self, fn: Callable[[IncidentStore], T]) -> T:
        """Any store call, on the store's own thread, after the writes handed over before it:
        `await store.run(lambda s: s.cell(key))`.

        Raises StoreUnavailable when the store fails (it is then marked failing).
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
                raise StoreUnavailable(f"incident store failing: {_first_line(exc)}") from exc

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


def _first_line(exc: BaseException) -> str:
    # SQLAlchemy appends the statement and a link to its error page: the first line says why.
    return str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)


_Handed = tuple[_Write, Callable[[Any], None] | None]  # the write, and how its waiting caller is answered


def _groups(taken: list[_Handed]) -> Iterator[list[_Handed]]:
    """Runs of writes that may share a transaction, each up to GROUP_MAX, and any other write alone; in order."""
    group: list[_Handed] = []
    for item in taken:
        if _grouped(item[0].kind) and len(group) < GROUP_MAX:
            group.append(item)
            continue
        if group:
            yield group
            group = []
        if _grouped(item[0].kind):
            group.append(item)
        else:
            yield [item]
    if group:
        yield group


def _grouped(kind: str) -> bool:
    return kind in UNKEYED_GROUPED or (kind in writes.WRITES and writes.WRITES[kind].keyed)


def _kept(write: _Write) -> Incident | None:
    """What a kept write gives back at once: an open's incident under its provisional id."""
    return _provisional(write) if write.kind == "open" else None


def _provisional(write: _Write) -> Incident:
    """The incident of an `open` kept for later, under its provisional id."""
    assert write.incident_id is not None
    return Incident(id=write.incident_id, answered_at=write.fields.get("answered_at"), **{k: write.fields[k] for k in _OPEN_FIELDS})
