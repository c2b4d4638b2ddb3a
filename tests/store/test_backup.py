"""`ivr112 store backup` and `store restore` on both engines: a store with a call's whole
record (incident, events, position, recording, callback entry, operators' log, console
account, session and audit, a cleared number, texts and their outbox, cells, AML) backed up by the command, restored into a fresh store of the same
engine, has the same rows in every table; ids go on after the restored ones, a restore
never lands on a store that holds incidents, and a backup of the other engine is refused."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from sqlalchemy import func, select

from ari_app.store import IncidentStore, open_store, schema
from ivr import callbacks
from ivr.location import Location
from ivr.secrets import load_or_create
from ivr.settings import PROJECT_DIR
from tests import pg


def ivr112(tmp: Path, store_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    config = tmp / f"ivr112-{abs(hash(store_url))}.yaml"
    config.write_text(yaml.safe_dump({"data_dir": str(tmp / "data"), "store_url": store_url, "asterisk_root": str(tmp / "root")}))
    return subprocess.run([sys.executable, "-m", "ari_app.cli", "--config", str(config), "store", *args], capture_output=True,
                          text=True, cwd=PROJECT_DIR, check=False, timeout=120)


# The tables fill() writes to; counts() compares every table, these among them.
FILLED = ("incidents", "incident_events", "locations", "recordings", "callbacks", "number_clears", "operator_log",
          "console_users", "console_sessions", "console_audit", "text_messages", "text_outbox", "cells", "aml_inbox")


def fill(store: IncidentStore) -> None:
    """What a few calls leave on record, in every table."""
    for n in range(3):
        inc = store.open_incident(channel_id=f"c{n}", plan_id="kotim", caller_number=f"08125000{n}", called_number="112")
        store.add_event(inc.id, "prompt", {"prompts": "greeting"}, key=f"k{n}")
        store.update(inc.id, ended_at="2026-12-01T10:00:00.000+00:00", end_reason="caller_hangup")
    store.add_location(inc.id, Location(source="aml_http", latitude=-2.53, longitude=112.95), kecamatan="Baamang", description="AML")
    store.add_recording(inc.id, kind="call", name="c2", path="/rec/c2.wav", duration_s=12.5)
    callbacks.missed(store, "081250002", inc.id)
    store.log_operator("operator1", "login", {"device": "PJSIP/operator1"})
    store.set_console_password("supervisor1", "supervisor", "scrypt$hash")
    store.save_session("k1", "supervisor1", "supervisor", "csrf", 2000.0)
    store.audit("login", name="supervisor1", address="127.0.0.1")
    store.clear_number("081250001", by="supervisor1")
    got = store.receive_text(door="sms", number="081250002", address="081250002", body="tolong", notes="",
                             join_since="2000-01-01T00:00:00+00:00")
    assert got.incident.id == inc.id
    store.send_text(inc.id, door="sms", number="081250002", address="081250002", body="kami datang", author="operator1")
    store.put_cells([{"key": "510-10-1-2", "radio": "LTE", "mcc": "510", "mnc": "10", "area": 1, "cell": 2, "latitude": -2.5,
                      "longitude": 112.9, "radius_m": 800.0, "name": "Sampit"}])
    store.add_aml(gateway="tsel", number="081250002", kind="aml", location=Location(source="aml_http", latitude=-2.5, longitude=112.9),
                  raw="A\"ML=1", incident_id=inc.id)


def counts(store: IncidentStore) -> dict[str, int]:
    with store.engine.connect() as conn:
        return {t.name: int(conn.execute(select(func.count()).select_from(t)).scalar_one()) for t in schema.metadata.sorted_tables}


@pytest.fixture
def fresh_url(request: pytest.FixtureRequest, store_url: str, tmp_path: Path) -> str:
    """A second empty store of the same engine as `store_url`."""
    if store_url.startswith("sqlite"):
        return f"sqlite:///{tmp_path / 'restored' / 'store.sqlite'}"
    server: pg.PostgresServer = request.getfixturevalue("pg_server")
    return server.create_database(f"restored{abs(hash(str(tmp_path)))}")


def test_a_store_backed_up_and_restored_into_a_fresh_store_has_every_row(store: IncidentStore, store_url: str, fresh_url: str,
                                                                        tmp_path: Path) -> None:
    fill(store)
    before = counts(store)
    assert all(before[name] for name in FILLED), before  # something to lose in each

    made = ivr112(tmp_path, store_url, "backup", "-o", str(tmp_path / "backups"))
    assert made.returncode == 0, made.stderr
    path = Path(made.stdout.split("store backup written: ")[1].split()[0])
    assert path.parent == tmp_path / "backups" and path.stat().st_mode & 0o077 == 0
    assert path.suffix == (".sqlite" if store_url.startswith("sqlite") else ".pgdump")
    assert "3 incident(s)" in made.stdout

    done = ivr112(tmp_path, fresh_url, "restore", str(path))
    assert done.returncode == 0, done.stderr
    assert "3 incident(s)" in done.stdout
    restored = open_store(tmp_path, fresh_url)
    try:
        assert counts(restored) == before
        assert [i.caller_number for i in restored.recent()] == [i.caller_number for i in store.recent()]
        entry = restored.callback("081250002")
        assert entry is not None and entry.calls == 1
        # The ids go on after the restored ones (PostgreSQL's sequences came with the dump).
        new = restored.open_incident(channel_id="after", plan_id="kotim", caller_number="0899", called_number="112")
        assert new.id == max(i.id for i in store.recent()) + 1
    finally:
        restored.close()

    again = ivr112(tmp_path, fresh_url, "restore", str(path))
    assert again.returncode == 1 and "already holds 4 incident(s)" in again.stderr and "--force" in again.stderr
    forced = ivr112(tmp_path, fresh_url, "restore", str(path), "--force")
    assert forced.returncode == 0 and "3 incident(s)" in forced.stdout, forced.stderr


def test_a_backup_of_the_other_engine_is_refused_naming_store_copy(store: IncidentStore, store_url: str, tmp_path: Path) -> None:
    other = tmp_path / ("x.pgdump" if store_url.startswith("sqlite") else "x.sqlite")
    other.write_bytes(b"not restored")
    refused = ivr112(tmp_path, store_url, "restore", str(other))
    assert refused.returncode == 1 and "ivr112 store copy" in refused.stderr
    assert store.recent() == []


def test_a_database_that_does_not_exist_is_refused_saying_what_to_do(pg_server: pg.PostgresServer, tmp_path: Path) -> None:
    url = pg_server.url_for("nosuchdb")
    for args in (("backup", "-o", str(tmp_path)), ("restore", str(tmp_path / "x.pgdump"))):
        refused = ivr112(tmp_path, url, *args)
        assert refused.returncode == 1 and "create the database first" in refused.stderr, refused.stderr
        assert pg_server.password not in refused.stderr + refused.stdout and "Traceback" not in refused.stderr


def test_the_servers_archive_holds_a_pg_dump_and_restores_into_an_empty_database(pg_server: pg.PostgresServer, tmp_path: Path) -> None:
    """`ivr112 backup` / `restore` (the archive with secrets and plans) on a PostgreSQL store."""
    old_url, new_url = pg_server.create_database("archive_old"), pg_server.create_database("archive_new")
    secret = load_or_create(tmp_path / "old").console_secret
    store = open_store(tmp_path / "old", old_url)
    try:
        fill(store)
        before = counts(store)
    finally:
        store.close()

    def server(name: str, url: str) -> list[str]:
        config = tmp_path / f"{name}.yaml"
        config.write_text(yaml.safe_dump({"data_dir": str(tmp_path / name), "store_url": url, "asterisk_root": str(tmp_path / "root")}))
        return [sys.executable, "-m", "ari_app.cli", "--config", str(config)]

    made = subprocess.run([*server("old", old_url), "backup", "-o", str(tmp_path / "backups")], capture_output=True, text=True,
                          cwd=PROJECT_DIR, check=False, timeout=120)
    assert made.returncode == 0, made.stderr
    archive = Path(made.stdout.split("backup written: ")[1].split()[0])
    done = subprocess.run([*server("new", new_url), "restore", str(archive)], capture_output=True, text=True, cwd=PROJECT_DIR,
                          check=False, timeout=120)
    assert done.returncode == 0 and "3 incident(s)" in done.stdout, done.stderr
    assert (tmp_path / "new" / "plans").is_dir() and load_or_create(tmp_path / "new").console_secret == secret
    restored = open_store(tmp_path / "new", new_url)
    try:
        assert counts(restored) == before
    finally:
        restored.close()
