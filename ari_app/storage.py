"""The incident store under asyncio: every read and write goes through one thread,
so SQLite sees a single writer and the event loop never waits on the disk.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from ivr.store import Incident, IncidentEvent, IncidentStore, open_store

log = logging.getLogger(__name__)
T = TypeVar("T")


class AsyncStore:
    def __init__(self, data_dir: Path) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ivr112-store")
        self._data_dir = data_dir
        self._store: IncidentStore | None = None

    async def open(self) -> None:
        self._store = await self._run(lambda: open_store(self._data_dir))

    async def close(self) -> None:
        if self._store is not None:
            store = self._store
            await self._run(store.close)
            self._store = None
        self._executor.shutdown(wait=True)

    async def _run(self, fn: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn)

    def _s(self) -> IncidentStore:
        if self._store is None:
            raise RuntimeError("the incident store is not open")
        return self._store

    async def run(self, fn: Callable[[IncidentStore], T]) -> T:
        """Any store call, on the store's own thread: `await store.run(lambda s: s.cell(key))`."""
        return await self._run(lambda: fn(self._s()))

    async def open_incident(self, **fields: Any) -> Incident:
        return await self._run(lambda: self._s().open_incident(**fields))

    async def update(self, incident_id: int, **fields: Any) -> None:
        await self._run(lambda: self._s().update(incident_id, **fields))

    async def add_event(self, incident_id: int, kind: str, detail: dict[str, Any] | None = None) -> None:
        await self._run(lambda: self._s().add_event(incident_id, kind, detail))

    async def get(self, incident_id: int) -> Incident | None:
        return await self._run(lambda: self._s().get(incident_id))

    async def by_channel(self, channel_id: str) -> Incident | None:
        return await self._run(lambda: self._s().by_channel(channel_id))

    async def events(self, incident_id: int) -> list[IncidentEvent]:
        return await self._run(lambda: self._s().events(incident_id))

    async def recent(self, limit: int = 50) -> list[Incident]:
        return await self._run(lambda: self._s().recent(limit))
