"""The store when it fails (a full disk, a PostgreSQL server stopped or killed): calls'
writes are kept in order, in memory and in the spool, and replayed exactly once; the
failure shows in `health`; a store that cannot be opened does not stop the app; an app
restarted meanwhile loses nothing. Each test runs on both engines where it can."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import pytest

from ari_app.store.writer import AsyncStore, StoreUnavailable
from tests import pg
from tests.store.conftest import Disk, writer_on
from tests.support.poll import eventually


async def test_writes_kept_while_the_disk_is_full_are_stored_in_order_with_the_real_id(store_url: str, tmp_path: Path, disk: Disk) -> None:
    store = AsyncStore(tmp_path, url=store_url, retry_s=0.02)
    await store.open()
    try:
        before = await store.open_incident(channel_id="c0", plan_id="kotim", caller_number="0811", called_number="112")
        disk.full = True
        incident = await store.open_incident(channel_id="c1", plan_id="kotim", caller_number="0812", called_number="112")
        assert incident.id < 0 and incident.caller_number == "0812" and incident.arrived_at
        await store.update(incident.id, answered_at="2026-01-01T00:00:00.000+00:00")
        await store.add_event(incident.id, "prompt", {"prompts": "greeting"})
        await store.update(before.id, ended_at="2026-01-01T00:00:01.000+00:00")
        await store.settle()
        # "writing (open): ...", or "retrying: ..." once the retry loop has run meanwhile.
        assert not store.ok and store.health.startswith("failing: ") and "database or disk is full; 4 writes waiting" in store.health
        assert store.pending == 4
        with pytest.raises(StoreUnavailable, match="disk is full"):
            await store.run(lambda s: s.log_operator("operator1", "login"))
        disk.full = False
        await eventually(lambda: store.ok, what="the store to catch up")
        assert store.health == "ok" and store.pending == 0 and store.replayed == 4
        real = store.real_id(incident.id)
        assert real == before.id + 1
        assert store.mapped == 1  # the kept open's call goes on with its provisional id; `before` was told its own
        stored = await store.get(incident.id)  # the provisional id still finds it
        assert stored is not None and stored.id == real and stored.answered_at and stored.arrived_at == incident.arrived_at
        assert [e.kind for e in await store.events(real)] == ["prompt"]
        # Writes made after the fault with the provisional id go to the real row.
        await store.update(incident.id, ended_at="2026-01-01T00:00:02.000+00:00")
        stored = await store.get(real)  # reads come after the writes handed over before them
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
        await eventually(lambda: store.ok, what="the store to catch up")
        rows = await store.recent()
        assert [(r.caller_number, bool(r.ended_at)) for r in rows] == [("0812", True)]
    finally:
        await store.close()


async def test_a_programming_error_is_raised_not_kept(store_url: str, tmp_path: Path) -> None:
    store = AsyncStore(tmp_path, url=store_url)
    await store.open()
    try:
        incident = await store.open_incident(channel_id="c1", plan_id="kotim", caller_number="0812", called_number="112")
        with pytest.raises(ValueError, match="unknown incident fields"):
            await store.update(incident.id, no_such_field=1)
        assert store.ok and store.pending == 0
    finally:
        await store.close()


async def test_writes_waiting_at_shutdown_are_spooled_and_stored_once_at_the_next_start(
    store_url: str, tmp_path: Path, disk: Disk, caplog: pytest.LogCaptureFixture
) -> None:
    store = AsyncStore(tmp_path, url=store_url, retry_s=60)
    await store.open()
    disk.full = True
    incident = await store.open_incident(channel_id="c9", plan_id="kotim", caller_number="0819", called_number="112")
    await store.add_event(incident.id, "prompt", {"prompts": "greeting"})
    await store.close()
    assert incident.id < 0 and any("kept in" in r.message and "store-spool.jsonl" in r.message for r in caplog.records)
    disk.full = False
    restarted = AsyncStore(tmp_path, url=store_url, retry_s=60)
    await restarted.open()
    try:
        assert restarted.ok and restarted.pending == 0 and restarted.replayed == 2
        stored = await restarted.by_channel("c9")
        assert stored is not None and [e.kind for e in await restarted.events(stored.id)] == ["prompt"]
        # A provisional id of this run never takes one the spool still used.
        fresh = await restarted.open_incident(channel_id="c10", plan_id="kotim", caller_number="0810", called_number="112")
        assert fresh.id > 0
    finally:
        await restarted.close()
    assert not (tmp_path / "store-spool.jsonl").exists()


async def test_a_call_goes_on_while_postgresql_is_down_and_nothing_is_lost_or_doubled(
    own_pg: pg.PostgresServer, tmp_path: Path, fault: signal.Signals
) -> None:
    async with writer_on(own_pg, tmp_path, f"down_{fault.name.lower()}") as store:
        first = await store.open_incident(channel_id="c1", plan_id="kotim", caller_number="0811", called_number="112")
        await store.add_event(first.id, "digit", {"digit": "1"})
        await store.settle()
        own_pg.stop(fault)
        # The call goes on: each write returns at once, the next caller gets a provisional id.
        async with asyncio.timeout(1.0):
            await store.add_event(first.id, "digit", {"digit": "2"})
            await store.update(first.id, route="queue:operators")
            await store.settle()
            second = await store.open_incident(channel_id="c2", plan_id="kotim", caller_number="0812", called_number="112")
            await store.add_event(second.id, "prompt", {"prompts": "greeting"})
            await store.update(second.id, ended_at="2026-01-01T00:00:02.000+00:00")
        await store.settle()
        assert second.id < 0 and not store.ok and store.pending == 5 and "writes waiting" in store.health
        assert (tmp_path / "store-spool.jsonl").read_text().count("\n") == 5
        own_pg.start()
        await eventually(lambda: store.ok, within_s=20.0, what="the store to catch up")
        assert store.pending == 0 and store.backlog == 0
        one = await store.get(first.id)
        two = await store.get(second.id)
        assert one is not None and one.route == "queue:operators"
        assert two is not None and two.id > first.id and two.ended_at
        assert [e.detail for e in await store.events(first.id)] == [{"digit": "1"}, {"digit": "2"}]
        assert [e.kind for e in await store.events(two.id)] == ["prompt"]
        assert [i.channel_id for i in await store.recent()] == ["c2", "c1"]
