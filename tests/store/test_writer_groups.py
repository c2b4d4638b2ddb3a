"""The store's thread stores the writes handed over meanwhile as one group, in one
transaction (group commit): many calls' writes cost one commit, they land in the order
they were handed over, and a write the store refuses for good spoils only itself.
Each test runs on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
import logging
import threading
from pathlib import Path

import pytest
from sqlalchemy import Engine, event

from ari_app.store.writer import AsyncStore

CALLS = 10


async def _held(store: AsyncStore) -> tuple[threading.Event, asyncio.Task[bool]]:
    """Keep the store's thread busy until the event is set (writes handed over meanwhile queue up)."""
    gate = threading.Event()
    busy = asyncio.create_task(store.run(lambda s: gate.wait(10)))
    await asyncio.sleep(0)  # let the task hand its call to the thread
    return gate, busy


def _count_commits(engine: Engine) -> list[int]:
    commits = [0]

    def counted(_conn: object) -> None:
        commits[0] += 1

    event.listen(engine, "commit", counted)
    return commits


async def test_calls_writes_handed_over_together_are_stored_in_one_commit_in_order(store_url: str, tmp_path: Path) -> None:
    store = AsyncStore(tmp_path, url=store_url)
    await store.open()
    try:
        commits = _count_commits(await store.run(lambda s: s.engine))
        gate, busy = await _held(store)
        opening = [asyncio.create_task(store.open_incident(channel_id=f"c{i}", plan_id="kotim", caller_number=f"08{i}",
                                                           called_number="112")) for i in range(CALLS)]
        await asyncio.sleep(0)
        gate.set()
        incidents = await asyncio.gather(*opening)
        assert await busy
        assert len({i.id for i in incidents}) == CALLS and all(i.id > 0 for i in incidents)
        assert commits[0] == 1  # ten opens, one commit
        # Each call was told its real id: the writer keeps no provisional id for any of them
        # (it kept one per call for the app's life, and copied them all for every group).
        assert store.mapped == 0

        gate, busy = await _held(store)
        for incident in incidents:
            for step in ("greeting", "menu", "queue"):
                await store.add_event(incident.id, "prompt", {"prompts": step})
            await store.write("add_recording", incident.id, kind="call", name=f"call-{incident.id}.wav", path="/rec",
                              at="2026-12-01T00:00:00.000+00:00")  # a keyed write: its key goes in the same commit
            await store.update(incident.id, ended_at="2026-12-01T00:00:00.000+00:00", end_reason="caller hung up")
        gate.set()
        await store.settle()
        assert commits[0] == 2  # fifty writes of ten calls, one more commit
        for incident in incidents:
            assert [e.detail["prompts"] for e in await store.events(incident.id)] == ["greeting", "menu", "queue"]
            stored = await store.get(incident.id)
            assert stored is not None and stored.end_reason == "caller hung up"
            assert [r.name for r in await store.run(lambda s, i=incident.id: s.recordings(i))] == [f"call-{incident.id}.wav"]
        assert store.ok and store.backlog == 0
    finally:
        await store.close()


async def test_a_write_refused_for_good_is_dropped_alone_and_its_group_is_stored(
    store_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = AsyncStore(tmp_path, url=store_url)
    await store.open()
    try:
        incident = await store.open_incident(channel_id="c1", plan_id="kotim", caller_number="0812", called_number="112")
        gate, busy = await _held(store)
        await store.add_event(incident.id, "digit", {"digit": "1"})
        await store.add_event(incident.id + 1000, "digit", {"digit": "9"})  # a bug: no such incident
        await store.add_event(incident.id, "digit", {"digit": "2"})
        await store.update(incident.id, ended_at="2026-12-01T00:00:00.000+00:00", end_reason="caller hung up")
        with caplog.at_level(logging.ERROR, logger="ari_app.store.writer"):
            gate.set()
            await store.settle()
        assert await busy
        assert [e.detail["digit"] for e in await store.events(incident.id)] == ["1", "2"]
        stored = await store.get(incident.id)
        assert stored is not None and stored.end_reason == "caller hung up"
        assert "a write was refused and dropped" in caplog.text and '"kind": "digit"' in caplog.text
        assert store.ok and store.pending == 0
    finally:
        await store.close()


async def test_a_call_that_stops_waiting_for_its_incident_does_not_stop_its_group(store_url: str, tmp_path: Path) -> None:
    store = AsyncStore(tmp_path, url=store_url)
    await store.open()
    try:
        gate, busy = await _held(store)
        gone = asyncio.create_task(store.open_incident(channel_id="c1", plan_id="kotim", caller_number="0811", called_number="112"))
        waiting = asyncio.create_task(store.open_incident(channel_id="c2", plan_id="kotim", caller_number="0812", called_number="112"))
        await asyncio.sleep(0)
        gone.cancel()  # the caller hung up and its task ended while the store was busy
        gate.set()
        assert await busy
        incident = await asyncio.wait_for(waiting, timeout=20)  # a guard against hanging, not a speed check
        assert incident.id > 0 and incident.caller_number == "0812"
        stored = await store.by_channel("c1")  # the write of the call that stopped waiting is stored all the same
        assert stored is not None and stored.caller_number == "0811"
        assert store.ok and store.backlog == 0
    finally:
        await store.close()
