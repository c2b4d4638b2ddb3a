"""A recorded fake of the incident store as a call uses it (ari_app.calls.ports.CallStore):
every call is kept in order, and the work is done by a real IncidentStore in a temporary
folder (run() hands it the same store the app's functions expect)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from ari_app.store import IncidentStore, open_store, writes
from ivr.store import Incident

T = TypeVar("T")


class FakeCallStore:
    def __init__(self, folder: Path) -> None:
        self.store: IncidentStore = open_store(folder)
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.failing: Exception | None = None  # raised by every call while set

    def _record(self, request: str, /, **args: Any) -> None:
        self.calls.append((request, args))
        if self.failing is not None:
            raise self.failing

    def kinds(self, incident_id: int = 1) -> list[str]:
        """The incident's event kinds, in order."""
        return [e.kind for e in self.store.events(incident_id)]

    def details(self, kind: str, incident_id: int = 1) -> list[dict[str, Any]]:
        return [e.detail for e in self.store.events(incident_id) if e.kind == kind]

    def incident(self, incident_id: int = 1) -> Incident:
        found = self.store.get(incident_id)
        assert found is not None, f"no incident {incident_id}"
        return found

    async def open_incident(self, **fields: Any) -> Incident:
        self._record("open_incident", **fields)
        return self.store.open_incident(**fields)

    async def update(self, incident_id: int, **fields: Any) -> None:
        self._record("update", incident_id=incident_id, **fields)
        self.store.update(incident_id, **fields)

    async def add_event(self, incident_id: int, kind: str, detail: dict[str, Any] | None = None) -> None:
        self._record("add_event", incident_id=incident_id, kind=kind)
        self.store.add_event(incident_id, kind, detail or {})

    async def get(self, incident_id: int) -> Incident | None:
        self._record("get", incident_id=incident_id)
        return self.store.get(incident_id)

    async def by_channel(self, channel_id: str) -> Incident | None:
        self._record("by_channel", channel_id=channel_id)
        return self.store.by_channel(channel_id)

    async def run(self, fn: Callable[[IncidentStore], T]) -> T:
        self._record("run")
        return fn(self.store)

    async def write(self, name: str, incident_id: int | None = None, /, *, wait: bool = False, **args: Any) -> Any:
        self._record(f"write:{name}", incident_id=incident_id, **args)
        return writes.apply(self.store, name, incident_id, args, uuid.uuid4().hex)

    @property
    def ok(self) -> bool:
        return self.failing is None

    def close(self) -> None:
        self.store.close()
