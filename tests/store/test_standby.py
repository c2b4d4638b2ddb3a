"""The standby procedure of docs/operations.md, run for real with Debian's PostgreSQL 15 on
loopback: a primary, a standby made from it by `pg_basebackup -R` streaming what a node
writes through the store, the primary lost (SIGKILL) while a call is being written, the
standby promoted, and the node pointed at it (its `store_url`) replaying the writes its
spool kept during the switch: nothing lost, nothing doubled, ids going on after the old ones.
Both servers run as the `postgres` system user in temporary folders and are stopped by pid."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import func, inspect, select, text

from ari_app.store import IncidentStore, pg_server, schema
from ari_app.store.backup import backup_store
from ari_app.store.engine import is_store_fault, libpq_url, make_engine
from ari_app.store.writer import AsyncStore
from tests import pg
from tests.support.poll import eventually


@pytest.fixture
def primary() -> Iterator[pg.PostgresServer]:
    with pg.running() as server:
        yield server


WATCH_LAG = """SELECT application_name, client_addr, state, write_lag, replay_lag,
       pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn) AS bytes_behind
  FROM pg_stat_replication"""


def rows(url: str, query: str) -> list[tuple[object, ...]]:
    """(state, bytes_behind) of each row of the lag watch."""
    engine = make_engine(url, Path())
    try:
        with engine.connect() as conn:
            return [(r.state, int(r.bytes_behind)) for r in conn.execute(text(query))]
    finally:
        engine.dispose()


def scalar(url: str, query: str) -> object:
    engine = make_engine(url, Path())
    try:
        with engine.connect() as conn:
            return conn.execute(text(query)).scalar_one()
    finally:
        engine.dispose()


def channels(url: str) -> list[str]:
    """The incidents' channels in id order; [] while the tables have not reached a standby yet."""
    engine = make_engine(url, Path())
    try:
        with engine.connect() as conn:
            if not inspect(conn).has_table(schema.incidents.name):
                return []
            return list(conn.execute(select(schema.incidents.c.channel_id).order_by(schema.incidents.c.id)).scalars())
    finally:
        engine.dispose()


async def call(store: AsyncStore, n: int) -> int:
    incident = await store.open_incident(channel_id=f"c{n}", plan_id="kotim", caller_number=f"08125000{n}", called_number="112")
    await store.add_event(incident.id, "prompt", {"prompts": "greeting"})
    await store.update(incident.id, ended_at="2026-12-01T10:00:00.000+00:00", end_reason="caller_hangup")
    return incident.id


async def test_a_promoted_standby_has_every_incident_and_takes_the_writes_kept_during_the_switch(
    primary: pg.PostgresServer, tmp_path: Path
) -> None:
    node_data = tmp_path / "node"
    url = primary.create_database("ivr112")
    node: AsyncStore | None = AsyncStore(node_data, url=url, retry_s=0.05)
    assert node is not None
    await node.open()
    try:
        for n in range(3):
            await call(node, n)
        await node.settle()
        replica = primary.standby()  # pg_basebackup -R: a copy of now, then the stream
        try:
            replica.start()
            standby_url = replica.url_for("ivr112")
            for n in range(3, 5):
                await call(node, n)
            await node.settle()
            # Written on the primary after the base backup: they reach the standby by streaming.
            await eventually(lambda: channels(standby_url) == [f"c{n}" for n in range(5)], within_s=20.0,
                             what="the standby to have the five incidents")
            # The lag watch of docs/operations.md: one standby, streaming, nothing left to replay.
            await eventually(lambda: rows(url, WATCH_LAG) == [("streaming", 0)], within_s=20.0, what="the standby to catch up")
            assert scalar(standby_url, "SELECT pg_is_in_recovery()") is True
            # A node pointed at the standby before promotion: its writes are refused as a store
            # fault (kept and retried), not a bug.
            read_only = IncidentStore(make_engine(standby_url, Path()))
            try:
                with pytest.raises(Exception) as refused:
                    read_only.open_incident(channel_id="x", plan_id="kotim", caller_number="0", called_number="112")
                assert is_store_fault(refused.value) and "read-only" in str(refused.value)
            finally:
                read_only.close()

            # The primary's machine is lost in the middle of a call.
            primary.stop(signal.SIGKILL)
            during = await call(node, 5)
            await node.settle()
            assert during < 0 and not node.ok and node.pending == 3
            # The node is restarted with the new store_url: its spool keeps the writes meanwhile.
            stopped, node = node, None
            await stopped.close()
            assert (node_data / "store-spool.jsonl").exists()

            replica.promote()
            assert scalar(standby_url, "SELECT pg_is_in_recovery()") is False
            node = AsyncStore(node_data, url=standby_url, retry_s=0.05)
            await node.open()
            assert node.ok and node.replayed == 3 and not (node_data / "store-spool.jsonl").exists()
            after = await call(node, 6)
            await node.settle()
            assert channels(standby_url) == [f"c{n}" for n in range(7)]  # every incident once, in order
            kept = await node.by_channel("c5")
            assert kept is not None and kept.ended_at and [e.kind for e in await node.events(kept.id)] == ["prompt"]
            assert after > kept.id > max(i.id for i in await node.recent() if i.channel_id != "c5" and i.channel_id != "c6")
            engine = make_engine(standby_url, Path())
            try:
                with engine.connect() as conn:
                    events = conn.execute(select(func.count()).select_from(schema.incident_events)).scalar_one()
            finally:
                engine.dispose()
            assert events == 7  # one prompt per call, none doubled by the replay
        finally:
            replica.destroy()
    finally:
        if node is not None:
            await node.close()


def both(primary: pg.PostgresServer, standby: pg.PostgresServer, database: str) -> str:
    """A store_url naming both servers: libpq takes the first that accepts writes."""
    return (f"postgresql://{pg_server.USER}:{primary.password}@/{database}?host={primary.host}:{primary.port}"
            f"&host={standby.host}:{standby.port}&target_session_attrs=read-write")


async def test_a_node_naming_both_servers_finds_the_promoted_standby_without_a_restart(primary: pg.PostgresServer,
                                                                                      tmp_path: Path) -> None:
    primary.create_database("ivr112")
    replica = primary.standby()
    try:
        replica.start()
        url = both(primary, replica, "ivr112")
        node = AsyncStore(tmp_path / "node", url=url, retry_s=0.05)
        await node.open()
        try:
            first = await call(node, 0)
            await node.settle()
            assert node.ok and first > 0  # on the primary: the standby takes no writes
            await eventually(lambda: channels(replica.url_for("ivr112")) == ["c0"], within_s=20.0, what="c0 on the standby")
            primary.stop(signal.SIGKILL)
            during = await call(node, 1)
            await node.settle()
            assert during < 0 and not node.ok  # no server takes writes: kept
            replica.promote()
            await eventually(lambda: node.ok, within_s=30.0, what="the node to reach the promoted standby")
            assert node.pending == 0 and channels(replica.url_for("ivr112")) == ["c0", "c1"]
            # A plain libpq connection (the node feed's LISTEN, a tool) finds it too.
            with psycopg.connect(libpq_url(url) or "") as conn:  # as the node feed connects
                assert conn.info.port == replica.port and conn.execute("SELECT pg_is_in_recovery()").fetchone() == (False,)
            # The backup command reaches the same server through the same URL (pg_dump, libpq's keywords).
            made = backup_store(url, tmp_path, tmp_path / "backups")
            assert made.incidents == 2 and made.path.suffix == ".pgdump"
        finally:
            await node.close()
    finally:
        replica.destroy()
