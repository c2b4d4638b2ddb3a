"""Named writes (ari_app/store/writes.py): the call path's writes beyond the incident's own
(the callback list, positions, recordings, the operators' log, AML matches) made while
the store fails are kept, in order, and land once when it is back: across an app restart
(the spool), and when a spool already drained is replayed again (a crash after the drain).
Each test runs on both engines; the last one stops and kills a real PostgreSQL server."""

from __future__ import annotations

import shutil
import signal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from ari_app.store import IncidentStore, open_store, writes
from ari_app.store.schema import applied_writes
from ari_app.store.writer import AsyncStore
from ivr.location import Location
from tests import pg
from tests.store.conftest import Disk, writer_on
from tests.support.poll import eventually

SPOOL = "store-spool.jsonl"
GPS = Location(source="aml", latitude=-2.53, longitude=112.95, radius_m=12.0, method="GPS", polygon=((-2.5, 112.9), (-2.6, 113.0)),
               detail={"imei": "35"})


async def _call_while_down(store: AsyncStore, before_id: int) -> int:
    """What the call path hands over while the store fails, for an incident opened before
    the fault and one opened during it; returns the provisional id of the second."""
    await store.write("add_recording", before_id, kind="call", name="rec-a", path="/r/rec-a.wav", at="2026-01-01T00:00:01.000+00:00")
    await store.write("add_location", before_id, location=writes.location_args(GPS), kecamatan="Baamang", description="GPS 12 m",
                      hint=False, at="2026-01-01T00:00:02.000+00:00")
    await store.write("log_operator", operator="op1", action="login", detail={"phone": "6001"}, at="2026-01-01T00:00:03.000+00:00")
    await store.write("callback_missed", before_id, number="0811", at="2026-01-01T00:00:04.000+00:00")
    during = await store.open_incident(channel_id="c2", plan_id="kotim", caller_number="0812", called_number="112")
    await store.write("add_recording", during.id, kind="call", name="rec-b", path="/r/rec-b.wav", at="2026-01-01T00:00:05.000+00:00")
    await store.write("log_operator", operator="op1", action="pause", detail={}, at="2026-01-01T00:00:06.000+00:00")
    await store.update(during.id, ended_at="2026-01-01T00:00:07.000+00:00")
    await store.write("callback_missed", during.id, number="0812", at="2026-01-01T00:00:07.000+00:00")
    await store.write("callback_answered", number="0811", reason="answered by op1")
    await store.settle()
    return during.id


WRITES_WHILE_DOWN = 10  # the writes _call_while_down hands over (its open and update included)


def _landed(s: IncidentStore) -> dict[str, Any]:
    """What the writes of _call_while_down left in the store, as a user reads it."""
    first, second = s.by_channel("c1"), s.by_channel("c2")
    assert first is not None and second is not None
    one, two = s.callback("0811"), s.callback("0812")
    return {
        "recordings": [(r.incident_id, r.name) for r in s.recordings(first.id) + s.recordings(second.id)],
        "locations": [(p.kecamatan, p.latitude, p.radius_m, p.detail) for p in s.locations(first.id)],
        "log": [(line["operator"], line["action"]) for line in reversed(s.operator_log("op1"))],
        "callbacks": {n: (e.status, e.calls, e.incident_id) for n, e in (("0811", one), ("0812", two)) if e is not None},
        "listed": [[e.kind for e in s.events(i.id)].count("callback_listed") for i in (first, second)],
        "ids": (first.id, second.id),
    }


def _expected(first: int, second: int) -> dict[str, Any]:
    return {
        "recordings": [(first, "rec-a"), (second, "rec-b")],
        "locations": [("Baamang", -2.53, 12.0, {"imei": "35"})],
        "log": [("op1", "login"), ("op1", "pause")],
        "callbacks": {"0811": ("closed", 1, first), "0812": ("open", 1, second)},
        "listed": [1, 1],
        "ids": (first, second),
    }


async def test_writes_made_while_the_store_is_down_land_after_it_returns_once_and_in_order(
    store_url: str, tmp_path: Path, disk: Disk
) -> None:
    store = AsyncStore(tmp_path, url=store_url, retry_s=0.02)
    await store.open()
    try:
        first = await store.open_incident(channel_id="c1", plan_id="kotim", caller_number="0811", called_number="112")
        disk.full = True
        second = await _call_while_down(store, first.id)
        assert second < 0 and not store.ok and store.pending == WRITES_WHILE_DOWN
        assert (tmp_path / SPOOL).read_text().count("\n") == store.pending
        disk.full = False
        await eventually(lambda: store.ok, what="the store to catch up")
        assert store.pending == 0 and store.replayed == WRITES_WHILE_DOWN
        assert not (tmp_path / SPOOL).exists()
        got = await store.run(_landed)
        assert got == _expected(first.id, store.real_id(second))
    finally:
        await store.close()


async def test_writes_spooled_at_shutdown_land_once_at_the_next_start_even_when_the_spool_is_replayed_twice(
    store_url: str, tmp_path: Path, disk: Disk
) -> None:
    store = AsyncStore(tmp_path, url=store_url, retry_s=60)
    await store.open()
    first = await store.open_incident(channel_id="c1", plan_id="kotim", caller_number="0811", called_number="112")
    disk.full = True
    await _call_while_down(store, first.id)
    await store.close()
    disk.full = False
    kept = tmp_path / "spool-copy.jsonl"
    shutil.copy(tmp_path / SPOOL, kept)

    async def start() -> AsyncStore:
        restarted = AsyncStore(tmp_path, url=store_url, retry_s=60)
        await restarted.open()
        assert restarted.ok and restarted.pending == 0 and restarted.replayed == WRITES_WHILE_DOWN
        assert not (tmp_path / SPOOL).exists()
        return restarted

    again = await start()
    try:
        second = await again.by_channel("c2")
        assert second is not None
        expected = _expected(first.id, second.id)
        assert await again.run(_landed) == expected
    finally:
        await again.close()
    # The app killed after the drain and before the spool was removed: the next start
    # replays all of it again, and nothing is doubled.
    shutil.copy(kept, tmp_path / SPOOL)
    third = await start()
    try:
        assert await third.run(_landed) == expected
    finally:
        await third.close()


async def test_a_spool_of_writes_about_no_incident_is_replayed_at_start(store_url: str, tmp_path: Path, disk: Disk) -> None:
    store = AsyncStore(tmp_path, url=store_url, retry_s=60)
    await store.open()
    disk.full = True
    await store.write("log_operator", operator="op1", action="login", detail={}, at="2026-01-01T00:00:01.000+00:00")
    await store.close()
    disk.full = False
    restarted = AsyncStore(tmp_path, url=store_url, retry_s=60)
    await restarted.open()
    try:
        assert restarted.ok and restarted.replayed == 1
        assert [line["action"] for line in await restarted.run(lambda s: s.operator_log("op1"))] == ["login"]
        assert (await restarted.open_incident(channel_id="c1", plan_id="kotim", caller_number="0811", called_number="112")).id > 0
    finally:
        await restarted.close()


def test_a_keyed_write_replayed_lands_once_and_a_failed_one_leaves_no_key(store: IncidentStore, disk: Disk) -> None:
    incident = store.open_incident(channel_id="c1", plan_id="kotim", caller_number="0811", called_number="112")
    args = {"kind": "call", "name": "rec", "path": "/r/rec.wav", "at": "2026-01-01T00:00:01.000+00:00"}
    disk.full = True
    with pytest.raises(Exception, match="disk is full"):
        writes.apply(store, "add_recording", incident.id, args, "k1")
    disk.full = False
    with store.engine.connect() as conn:
        assert list(conn.execute(select(applied_writes.c.key))) == []  # rolled back with the write
    for _ in range(2):
        writes.apply(store, "add_recording", incident.id, args, "k1")
    assert [r.name for r in store.recordings(incident.id)] == ["rec"]


def test_an_unknown_write_name_is_refused_saying_which_are_known() -> None:
    with pytest.raises(writes.UnknownWrite, match="no named write 'no_such'"):
        writes.check("no_such")


async def test_arguments_json_cannot_carry_are_refused_before_they_are_kept(tmp_path: Path) -> None:
    store = AsyncStore(tmp_path, retry_s=60)
    await store.open()
    try:
        with pytest.raises(ValueError, match="plain JSON"):
            await store.write("add_location", 1, location=GPS, kecamatan=None, description="", hint=False, at="x")
        with pytest.raises(writes.UnknownWrite):
            await store.write("no_such", 1)
        assert store.ok and store.backlog == 0
    finally:
        await store.close()


async def test_named_writes_made_while_postgresql_is_down_land_once_in_order(
    own_pg: pg.PostgresServer, tmp_path: Path, fault: signal.Signals
) -> None:
    async with writer_on(own_pg, tmp_path, f"named_{fault.name.lower()}") as store:
        first = await store.open_incident(channel_id="c1", plan_id="kotim", caller_number="0811", called_number="112")
        await store.settle()
        own_pg.stop(fault)
        second = await _call_while_down(store, first.id)
        assert second < 0 and not store.ok and store.pending == WRITES_WHILE_DOWN
        own_pg.start()
        await eventually(lambda: store.ok, within_s=20.0, what="the store to catch up")
        assert await store.run(_landed) == _expected(first.id, store.real_id(second))


def test_a_replayed_missed_call_of_an_answered_incident_is_not_listed(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    try:
        incident = store.open_incident(channel_id="c1", plan_id="kotim", caller_number="0811", called_number="112")
        writes.apply(store, "operator_answered", None, {"channel": "c1", "operator": "op1", "caller": "0811", "hold_s": "3",
                                                        "at": "2026-01-01T00:00:01.000+00:00"}, "k1")
        assert writes.apply(store, "callback_missed", incident.id, {"number": "0811", "at": "2026-01-01T00:00:02.000+00:00"}, "k2") is None
        assert store.callback("0811") is None
        got = store.get(incident.id)
        assert got is not None and got.operator == "op1"
    finally:
        store.close()
