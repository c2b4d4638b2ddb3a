"""The store thread keeps one connection between its transactions (ari_app/store/held.py):
what the pool did for each use still holds. A server restarted under it costs no failed
write once the connection sat idle (it is tried first, as a pooled one was); one used a
moment before the restart fails its write, which is kept and stored once; and a read
leaves no transaction open that would block another node's migration."""

from __future__ import annotations

import signal
from pathlib import Path

import psycopg
import pytest

from ari_app.store import held
from ari_app.store.engine import libpq_url
from ari_app.store.writer import AsyncStore
from ivr.store import Incident
from tests import pg
from tests.store.conftest import writer_on
from tests.support.poll import eventually


async def test_after_a_restart_an_idle_held_connection_is_replaced_before_the_first_write(
    own_pg: pg.PostgresServer, tmp_path: Path, fault: signal.Signals, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Every use counts as idle: the held connection is tried before each one.
    monkeypatch.setattr(held, "PING_IDLE_S", 0.0)
    async with writer_on(own_pg, tmp_path, f"idle_{fault.name.lower()}") as store:
        first = await _restart_after_a_write(store, own_pg, fault)
        await store.add_event(first.id, "digit", {"digit": "1"})
        second = await store.open_incident(channel_id="c2", plan_id="kotim", caller_number="0812", called_number="112")
        await store.settle()
        assert store.ok and store.faults == 0, store.health
        assert second.id > first.id
        assert [e.detail for e in await store.events(first.id)] == [{"digit": "1"}]


async def test_a_write_on_a_held_connection_the_restart_broke_is_kept_and_stored_once(
    own_pg: pg.PostgresServer, tmp_path: Path, fault: signal.Signals, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Never idle enough to be tried: the first write after the restart meets the dead connection.
    monkeypatch.setattr(held, "PING_IDLE_S", 3600.0)
    async with writer_on(own_pg, tmp_path, f"broken_{fault.name.lower()}") as store:
        first = await _restart_after_a_write(store, own_pg, fault)
        await store.add_event(first.id, "digit", {"digit": "1"})
        await store.update(first.id, route="queue:operators")
        await store.settle()
        await eventually(lambda: store.ok, within_s=20.0, what="the kept writes to be stored")
        # One fault, the dead connection's; the retry took a fresh one.
        assert store.faults == 1 and store.pending == 0, store.health
        stored = await store.get(first.id)
        assert stored is not None and stored.route == "queue:operators"
        assert [e.detail for e in await store.events(first.id)] == [{"digit": "1"}]
        # The store thread's reads go on, on a fresh connection.
        assert [i.channel_id for i in await store.recent()] == ["c1"]


async def _restart_after_a_write(store: AsyncStore, server: pg.PostgresServer, fault: signal.Signals) -> Incident:
    """A call's incident stored on the held connection, then the server stopped (or killed) and started."""
    first = await store.open_incident(channel_id="c1", plan_id="kotim", caller_number="0811", called_number="112")
    await store.settle()
    server.stop(fault)
    server.start()
    return first


async def test_a_read_on_the_held_connection_leaves_no_transaction_open_and_closing_leaves_no_connection(
    pg_server: pg.PostgresServer, tmp_path: Path
) -> None:
    url, conninfo = _database(pg_server, "held_read")
    store = AsyncStore(tmp_path, url=url)
    await store.open()
    with psycopg.connect(conninfo, autocommit=True) as other:
        try:
            incident = await store.open_incident(channel_id="c1", plan_id="kotim", caller_number="0811", called_number="112")
            assert (await store.get(incident.id)) is not None
            assert (await store.by_channel("c1")) is not None
            # Another node migrating the table (an exclusive lock) is not kept waiting by
            # this node's idle store thread: its reads took no lock they still hold.
            other.execute("SET lock_timeout = '2s'")
            other.execute("ALTER TABLE incidents ADD COLUMN probe text")
            assert _sessions(other) == ["idle"]
        finally:
            await store.close()
        # The held connection was closed with the store, not left to the server.
        assert _sessions(other) == []


async def test_a_calls_lone_writes_are_committed_as_they_run_and_hold_no_transaction(
    pg_server: pg.PostgresServer, tmp_path: Path
) -> None:
    # A write that is one statement runs in autocommit on the held connection (no BEGIN and
    # COMMIT): another node sees each one at once, and none is left in a transaction.
    url, conninfo = _database(pg_server, "held_lone")
    store = AsyncStore(tmp_path, url=url)
    await store.open()
    try:
        with psycopg.connect(conninfo, autocommit=True) as other:
            incident = await store.open_incident(channel_id="c1", plan_id="kotim", caller_number="0811", called_number="112",
                                                 answered_at="2026-12-02T02:00:00.400+00:00")
            await store.add_event(incident.id, "prompt", {"prompts": "greeting"})
            await store.settle()
            assert other.execute("SELECT answered_at FROM incidents WHERE id = %s", (incident.id,)).fetchall() == [
                ("2026-12-02T02:00:00.400+00:00",)]
            assert other.execute("SELECT kind FROM incident_events WHERE incident_id = %s", (incident.id,)).fetchall() == [
                ("prompt",)]
            await store.update(incident.id, ended_at="2026-12-02T02:00:09.000+00:00", end_reason="caller hung up")
            await store.settle()
            assert _sessions(other) == ["idle"]
            assert other.execute("SELECT end_reason FROM incidents WHERE id = %s", (incident.id,)).fetchall() == [
                ("caller hung up",)]
            # The first end stands: a later one (another node's sweep) changes nothing.
            await store.update(incident.id, ended_at="2026-12-02T02:00:30.000+00:00", end_reason="node_lost")
            stored = await store.get(incident.id)
            assert stored is not None and (stored.ended_at, stored.end_reason) == ("2026-12-02T02:00:09.000+00:00", "caller hung up")
            other.execute("SET lock_timeout = '2s'")
            other.execute("ALTER TABLE incident_events ADD COLUMN probe text")
    finally:
        await store.close()


def _database(server: pg.PostgresServer, name: str) -> tuple[str, str]:
    """A new database of `server`: its store_url, and its libpq URL for a plain connection."""
    url = server.create_database(name)
    conninfo = libpq_url(url)
    assert conninfo is not None
    return url, conninfo


def _sessions(conn: psycopg.Connection[tuple[object, ...]]) -> list[str]:
    """The states of the app's store connections to this database (its writer's)."""
    found = conn.execute(
        "SELECT state FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'ivr112'"
    ).fetchall()
    return [str(state) for (state,) in found]
