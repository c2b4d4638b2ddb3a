"""The incident store when its disk fails: calls' writes are kept in order and replayed,
the failure shows in `health`, and a store that cannot be opened does not stop the app."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ari_app.storage import AsyncStore, StoreUnavailable
from ivr.store import IncidentStore, open_store
from tests.support.poll import eventually


class Disk:
    """Switches a real store's writes to fail as a full disk does."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.full = False
        for name in ("open_incident", "update", "add_event", "log_operator"):
            real = getattr(IncidentStore, name)
            monkeypatch.setattr(IncidentStore, name, self._guard(real))

    def _guard(self, real: Any) -> Any:
        def write(store: IncidentStore, *args: Any, **kwargs: Any) -> Any:
            if self.full:
                raise sqlite3.OperationalError("database or disk is full")
            return real(store, *args, **kwargs)

        return write


@pytest.fixture
def disk(monkeypatch: pytest.MonkeyPatch) -> Iterator[Disk]:
    yield Disk(monkeypatch)


async def test_writes_kept_while_the_disk_is_full_are_stored_in_order_with_the_real_id(tmp_path: Path, disk: Disk) -> None:
    store = AsyncStore(tmp_path, retry_s=0.02)
    await store.open()
    try:
        before = await store.open_incident(channel_id="c0", plan_id="kotim", caller_number="0811", called_number="112")
        disk.full = True
        incident = await store.open_incident(channel_id="c1", plan_id="kotim", caller_number="0812", called_number="112")
        assert incident.id < 0 and incident.caller_number == "0812" and incident.arrived_at
        await store.update(incident.id, answered_at="2026-01-01T00:00:00.000+00:00")
        await store.add_event(incident.id, "prompt", {"prompts": "greeting"})
        await store.update(before.id, ended_at="2026-01-01T00:00:01.000+00:00")
        assert not store.ok and store.health.startswith("failing: writing (open): database or disk is full")
        assert store.pending == 4
        with pytest.raises(StoreUnavailable, match="disk is full"):
            await store.run(lambda s: s.log_operator("operator1", "login"))
        disk.full = False
        await eventually(lambda: store.ok)
        assert store.health == "ok" and store.pending == 0 and store.replayed == 4
        real = store.real_id(incident.id)
        assert real == before.id + 1
        stored = await store.get(incident.id)  # the provisional id still finds it
        assert stored is not None and stored.id == real and stored.answered_at and stored.arrived_at == incident.arrived_at
        assert [e.kind for e in await store.events(real)] == ["prompt"]
        # Writes made after the fault with the provisional id go to the real row.
        await store.update(incident.id, ended_at="2026-01-01T00:00:02.000+00:00")
        stored = await store.get(real)
        assert stored is not None and stored.ended_at
    finally:
        await store.close()


async def test_a_store_that_cannot_be_opened_does_not_stop_the_app_and_is_opened_when_it_can(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.write_text("not a folder")  # the store's folder cannot be made: OSError
    store = AsyncStore(data, retry_s=0.02)
    await store.open()
    try:
        assert store.health.startswith("failing: opening:")
        incident = await store.open_incident(channel_id="c1", plan_id="kotim", caller_number="0812", called_number="112")
        await store.update(incident.id, ended_at="2026-01-01T00:00:02.000+00:00")
        with pytest.raises(StoreUnavailable):
            await store.recent()
        data.unlink()
        await eventually(lambda: store.ok)
        rows = await store.recent()
        assert [(r.caller_number, bool(r.ended_at)) for r in rows] == [("0812", True)]
    finally:
        await store.close()


async def test_a_programming_error_is_raised_not_kept(tmp_path: Path) -> None:
    store = AsyncStore(tmp_path)
    await store.open()
    try:
        incident = await store.open_incident(channel_id="c1", plan_id="kotim", caller_number="0812", called_number="112")
        with pytest.raises(ValueError, match="unknown incident fields"):
            await store.update(incident.id, no_such_field=1)
        assert store.ok and store.pending == 0
    finally:
        await store.close()


async def test_writes_still_waiting_at_shutdown_are_logged_whole(tmp_path: Path, disk: Disk, caplog: pytest.LogCaptureFixture) -> None:
    store = AsyncStore(tmp_path, retry_s=60)
    await store.open()
    disk.full = True
    incident = await store.open_incident(channel_id="c9", plan_id="kotim", caller_number="0819", called_number="112")
    await store.close()
    assert any("never stored" in r.message and '"channel_id": "c9"' in r.message for r in caplog.records)
    check = open_store(tmp_path)
    try:
        assert check.by_channel("c9") is None and incident.id < 0
    finally:
        check.close()
