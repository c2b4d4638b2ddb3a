"""The store itself, the same tests on both engines: what a call leaves on record survives
a reopening, reads come back as typed rows, and migrations run once and refuse a newer store."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import text

from ari_app.store import IncidentStore, StoreTooNew, open_store
from ari_app.store.migrations import LATEST, MIGRATIONS
from ivr.location import Location


def test_an_incident_survives_reopening_the_store(store_url: str, tmp_path: Path) -> None:
    store = open_store(tmp_path, store_url)
    inc = store.open_incident(channel_id="c1", plan_id="kotim", caller_number="0812", called_number="112")
    store.update(inc.id, answered_at="2026-11-28T10:00:00.000+00:00", route="queue:operators")
    store.add_event(inc.id, "prompt", {"prompts": "greeting"})
    assert store.open_incident(channel_id="c1", plan_id="kotim", caller_number="0812", called_number="112").id == inc.id
    store.close()
    again = open_store(tmp_path, store_url)
    got = again.by_channel("c1")
    assert got is not None and got.route == "queue:operators" and got.caller_number == "0812"
    assert [e.kind for e in again.events(inc.id)] == ["prompt"]
    assert [i.id for i in again.open_incidents()] == [inc.id]
    with pytest.raises(ValueError, match="unknown incident fields"):
        again.update(inc.id, colour="red")
    again.close()


def test_positions_and_recordings_past_retention_are_deleted_and_the_incident_stays(store: IncidentStore) -> None:
    old = store.open_incident(channel_id="old", plan_id="kotim", caller_number="0812", called_number="112",
                              arrived_at="2026-01-01T00:00:00.000+00:00")
    new = store.open_incident(channel_id="new", plan_id="kotim", caller_number="0812", called_number="112")
    for inc in (old, new):
        store.add_location(inc.id, Location(source="aml_http", latitude=-2.53, longitude=112.95, radius_m=12), kecamatan="Baamang", description="x")
        store.add_recording(inc.id, kind="caller_location", name=f"r{inc.id}", path=f"/srv/r{inc.id}.wav")
        store.enqueue_push(agency="police", plan_id="kotim", incident_id=inc.id, eido_id=f"urn:{inc.id}", digest="d",
                           render=lambda v: '{"locationComponent": []}')
    # The newer call from the same number finds the older position as a hint.
    hint = store.last_location("0812", since="2025-01-01T00:00:00+00:00", before_incident=new.id)
    assert hint is not None and hint.incident_id == old.id
    gone, paths = store.purge(before="2026-06-01T00:00:00.000+00:00")
    assert (gone, paths) == (1, [f"/srv/r{old.id}.wav"])
    assert store.locations(old.id) == [] and store.recordings(old.id) == []
    assert len(store.locations(new.id)) == 1
    assert [p.incident_id for p in store.pushes("police")] == [new.id]  # the EIDOs pushed to agencies hold positions too
    assert store.get(old.id) is not None


def test_opening_a_migrated_store_again_changes_nothing_and_a_newer_store_is_refused(store_url: str, tmp_path: Path) -> None:
    first = open_store(tmp_path, store_url)
    inc = first.open_incident(channel_id="c1", plan_id="kotim", caller_number="0812", called_number="112")
    with first.engine.begin() as conn:
        versions = [r[0] for r in conn.execute(text("select version from store_version order by version"))]
        assert versions == [m.version for m in MIGRATIONS]
        conn.execute(text("insert into store_version (version, name, applied_at) values (:v, 'from the future', 'x')"), {"v": LATEST + 1})
    first.close()
    with pytest.raises(StoreTooNew, match=f"version {LATEST + 1}, this ivr112 knows up to {LATEST}"):
        open_store(tmp_path, store_url)
    # The rows are untouched by the refusal.
    from sqlalchemy import create_engine

    from ari_app.store.engine import resolve_url

    engine = create_engine(resolve_url(store_url, tmp_path))
    with engine.connect() as conn:
        assert conn.execute(text("select caller_number from incidents where id = :i"), {"i": inc.id}).scalar_one() == "0812"
    engine.dispose()


def test_a_store_made_before_the_package_gains_the_new_columns_and_keeps_its_rows(tmp_path: Path) -> None:
    """A SQLite file from before: incidents without the classification columns, events without write keys."""
    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as db:
        db.execute("create table incidents (id integer primary key, channel_id text not null, plan_id text, caller_number text, "
                   "called_number text, carrier text, language text, arrived_at text not null, fallback integer default 0)")
        db.execute("create table incident_events (id integer primary key, incident_id integer, at text, kind text, detail text)")
        db.execute("insert into incidents (channel_id, plan_id, caller_number, called_number, arrived_at) "
                   "values ('old1', 'kotim', '0812', '112', '2026-01-01T00:00:00.000+00:00')")
    store = open_store(tmp_path, f"sqlite:///{path}")
    old = store.by_channel("old1")
    assert old is not None and old.caller_number == "0812" and old.category is None
    store.update(old.id, category="prank", classified_at="2026-01-01T00:01:00.000+00:00")
    store.add_event(old.id, "classified", {"category": "prank"}, key="k1")
    store.add_event(old.id, "classified", {"category": "prank"}, key="k1")  # a replay lands once
    assert [e.kind for e in store.events(old.id)] == ["classified"]
    store.close()


def test_an_event_replayed_with_its_key_lands_once_and_an_open_replayed_finds_its_row(store: IncidentStore) -> None:
    inc = store.open_incident(channel_id="c7", plan_id="kotim", caller_number="0817", called_number="112")
    for _ in range(2):
        store.add_event(inc.id, "digit", {"digit": "1"}, key="write-1")
        again = store.open_incident(channel_id="c7", plan_id="kotim", caller_number="0817", called_number="112")
        assert again.id == inc.id
    assert [(e.kind, e.detail) for e in store.events(inc.id)] == [("digit", {"digit": "1"})]


def test_an_open_says_when_the_dialplan_answered_and_a_replay_keeps_the_first_row(store: IncidentStore) -> None:
    inc = store.open_incident(channel_id="c8", plan_id="kotim", caller_number="0818", called_number="112",
                              arrived_at="2026-12-02T02:00:00.000+00:00", answered_at="2026-12-02T02:00:00.400+00:00")
    assert (inc.arrived_at, inc.answered_at) == ("2026-12-02T02:00:00.000+00:00", "2026-12-02T02:00:00.400+00:00")
    # Another node (or a replay) opening the same channel later changes nothing of it.
    again = store.open_incident(channel_id="c8", plan_id="other", caller_number="0818", called_number="112",
                                answered_at="2026-12-02T02:00:09.000+00:00")
    assert again == inc == store.get(inc.id)
    unanswered = store.open_incident(channel_id="c9", plan_id="kotim", caller_number="0819", called_number="112")
    assert unanswered.answered_at is None and unanswered.id != inc.id


def test_console_accounts_sessions_and_the_operators_log_read_back(store: IncidentStore) -> None:
    store.set_console_password("supervisor1", "supervisor", "hash1")
    store.set_console_password("supervisor1", "supervisor", "hash2")
    user = store.console_user("supervisor1")
    assert user is not None and user["password_hash"] == "hash2"
    store.save_session("k1", "supervisor1", "supervisor", "csrf", 2000.0)
    store.save_session("k2", "operator1", "operator", "csrf", 500.0)
    assert [s["key_hash"] for s in store.sessions(now_epoch=1000.0)] == ["k1"]  # the expired one is gone
    store.drop_session("k1")
    assert store.sessions(now_epoch=1000.0) == []
    store.log_operator("operator1", "login", {"device": "PJSIP/operator1"})
    store.log_operator("operator1", "pause")
    assert [(r["action"], r["detail"]) for r in store.operator_log("operator1")] == [("pause", {}), ("login", {"device": "PJSIP/operator1"})]


def test_cells_are_replaced_whole_and_aml_messages_wait_for_their_incident(store: IncidentStore) -> None:
    row = {"key": "510-10-1-2", "radio": "LTE", "mcc": "510", "mnc": "10", "area": 1, "cell": 2, "latitude": -2.5, "longitude": 112.9,
           "radius_m": 800.0, "name": "Sampit"}
    assert store.put_cells([row, {**row, "name": "Sampit 2"}]) == 2
    found = store.cell("510-10-1-2")
    assert store.cell_count() == 1 and found is not None and found["name"] == "Sampit 2"
    aml = store.add_aml(gateway="tsel", number="0812", kind="aml", location=Location(source="aml_http", latitude=-2.53, longitude=112.95),
                        raw="A\"ML=1", incident_id=None)
    waiting = store.unmatched_aml("0812", since="2000-01-01T00:00:00+00:00")
    assert [(i, loc.latitude) for i, loc in waiting] == [(aml, -2.53)]
    inc = store.open_incident(channel_id="c1", plan_id="kotim", caller_number="0812", called_number="112")
    store.match_aml(aml, inc.id)
    assert store.unmatched_aml("0812", since="2000-01-01T00:00:00+00:00") == []
    assert [p["latitude"] for p in store.aml_locations()] == [-2.53]


def test_figures_reads_find_agency_answers_and_trunk_results(store: IncidentStore) -> None:
    inc = store.open_incident(channel_id="c1", plan_id="kotim", caller_number="0812", called_number="112",
                              arrived_at="2026-02-01T10:00:00.000+00:00")
    store.add_event(inc.id, "trunk_failed", {"agency": "police", "trunk": "110", "cause": "busy"}, at="2026-02-01T10:00:05.000+00:00")
    store.add_event(inc.id, "trunk_answered", {"agency": "police", "trunk": "110"}, at="2026-02-01T10:00:09.000+00:00")
    assert store.agency_answers("2026-02-01T00:00:00", "2026-02-02T00:00:00") == {inc.id: "2026-02-01T10:00:09.000+00:00"}
    assert store.trunk_results("kotim") == {("police", "110"): {"result": "answered", "at": "2026-02-01T10:00:09.000+00:00", "cause": ""}}
    assert [i.id for i in store.incidents_between("2026-02-01T00:00:00", "2026-02-02T00:00:00")] == [inc.id]
    learned = store.learned([inc.id])
    assert learned == {inc.id: ([], [])}


def test_a_regencys_sqlite_history_is_copied_whole_and_new_ids_go_on_after_it(store: IncidentStore, tmp_path: Path) -> None:
    from ari_app.store.copy import CopyRefused, copy_store

    regency = open_store(tmp_path / "regency", "")
    try:
        for n in range(3):
            inc = regency.open_incident(channel_id=f"r{n}", plan_id="kotim", caller_number=f"081{n}", called_number="112")
            regency.add_event(inc.id, "prompt", {"prompts": "greeting"}, key=f"k{n}")
        regency.add_location(inc.id, Location(source="aml_http", latitude=-2.5, longitude=112.9), kecamatan=None, description="x")
        counts = copy_store(regency, store, say=lambda _line: None)
        assert (counts["incidents"], counts["incident_events"], counts["locations"]) == (3, 3, 1)
        assert [i.channel_id for i in store.recent()] == ["r2", "r1", "r0"]
        after = store.open_incident(channel_id="new", plan_id="kotim", caller_number="0899", called_number="112")
        assert after.id == inc.id + 1
        with pytest.raises(CopyRefused, match="already holds incidents"):
            copy_store(regency, store, say=lambda _line: None)
    finally:
        regency.close()


def test_a_calls_end_is_written_once_and_the_first_label_stands(store: IncidentStore) -> None:
    # A cluster's sweeper closes a lost node's call as node_lost; the node's own app, back,
    # must not relabel it. Other fields of the later update still land.
    incident = store.open_incident(channel_id="node1-1.1", plan_id="p", caller_number="0812", called_number="112")
    assert store.update(incident.id, ended_at="2026-12-01T10:00:00.000+00:00", end_reason="node_lost")
    assert not store.update(incident.id, ended_at="2026-12-01T10:00:05.000+00:00", end_reason="ended while away",
                            operator="operator1")
    stored = store.get(incident.id)
    assert stored is not None
    assert (stored.ended_at, stored.end_reason, stored.operator) == ("2026-12-01T10:00:00.000+00:00", "node_lost", "operator1")
