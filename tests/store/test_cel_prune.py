"""Asterisk's own record of a cluster node's calls (CEL in `ivr112_cel`, written by
cel_pgsql) does not grow forever: retention prunes every row the sweeper can never need
again, and keeps the rows of a call its app never saw until the sweeper has recorded it.
On PostgreSQL, the only engine a cluster's nodes share.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import text

from ari_app.asterisk import cel
from ari_app.cluster import sweep
from ari_app.retention import purge_store
from ari_app.store import IncidentStore, open_store
from ivr.settings import load_settings
from tests import pg

PLAN = f"{sweep.PLAN_CONTEXT}kotim"


def _row(store: IncidentStore, event: str, at: datetime, uniqueid: str, *, linkedid: str = "", context: str = PLAN) -> None:
    with store.engine.begin() as conn:
        conn.execute(text(f"INSERT INTO {cel.TABLE} (eventtype, eventtime, cid_num, exten, context, channame, appname, uniqueid, "
                          "linkedid) VALUES (:e, :t, '0812', '112', :c, 'PJSIP/x', 'asterisk-node1', :u, :l)"),
                     {"e": event, "t": at.replace(tzinfo=None), "c": context, "u": uniqueid, "l": linkedid or uniqueid})


def _call(store: IncidentStore, at: datetime, uniqueid: str) -> None:
    for event in cel.EVENTS:
        _row(store, event, at, uniqueid)


def _left(store: IncidentStore) -> list[tuple[str, str]]:
    with store.engine.connect() as conn:
        return [(r.uniqueid, r.eventtype) for r in conn.execute(text(f"SELECT uniqueid, eventtype FROM {cel.TABLE} ORDER BY id"))]


def test_retention_prunes_the_cel_rows_the_sweeper_cannot_need_and_keeps_an_unrecorded_calls(
        pg_server: pg.PostgresServer, tmp_path: Path) -> None:
    store = open_store(tmp_path, pg_server.create_database("cel_prune"))
    try:
        with store.engine.begin() as conn:
            conn.execute(text(cel.CREATE_TABLE))
        week_ago, now = datetime.now(UTC) - timedelta(days=7), datetime.now(UTC)
        _call(store, week_ago, "node1-1.1")  # its app recorded it: an incident exists
        store.open_incident(channel_id="node1-1.1", plan_id="kotim", caller_number="0812", called_number="112")
        _row(store, "ANSWER", week_ago, "node1-1.2", linkedid="node1-1.1", context="ivr112-queues")  # an operator's leg
        _call(store, week_ago, "node1-1.3")  # answered by the dialplan while its app was dead: no incident
        _call(store, now, "node1-1.4")  # today's call, its app not (yet) seen it
        settings = load_settings(environ={"IVR112_NODE_NAME": "node1", "IVR112_STORE_URL": pg_server.url_for("cel_prune"),
                                          "IVR112_DATA_DIR": str(tmp_path)})

        purge_store(store, settings)

        assert _left(store) == [("node1-1.3", e) for e in cel.EVENTS] + [("node1-1.4", e) for e in cel.EVENTS]
        # What was kept still does its work: node1 lost, the sweeper records both; node1 up,
        # it records the call that ended unseen (and not yet today's, just ended).
        assert [c.channel_id for c in sweep.unrecorded(store, "node1")] == ["node1-1.3", "node1-1.4"]
        ended = sweep.unrecorded(store, "node1", ended_before=now - timedelta(seconds=30))
        assert [c.channel_id for c in ended] == ["node1-1.3"]
        sweep.record_unseen(store, ended[0], by="node2")
        purge_store(store, settings)
        assert _left(store) == [("node1-1.4", e) for e in cel.EVENTS]
    finally:
        store.close()


def test_without_asterisks_table_pruning_does_nothing(pg_server: pg.PostgresServer, tmp_path: Path) -> None:
    store = open_store(tmp_path, pg_server.create_database("cel_none"))
    try:
        assert sweep.prune_cel(store, before=datetime.now(UTC)) == 0
    finally:
        store.close()
