"""Numbered migrations that run on both engines, each idempotent: it brings a store of any
earlier shape (including the files sqlite-utils' migrations made before this package) to
its own, so running it twice, or on a store another node just migrated, changes nothing.

A store whose version is newer than the code's is refused: the code would not know its
rows. On PostgreSQL an advisory lock makes nodes starting together migrate one at a time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Connection, Engine, Table, func, inspect, select, text

from ari_app.store import schema
from ivr.errors import Ivr112Error
from ivr.store import now

# Any number will do, as long as no other program takes the same advisory lock on this database.
_PG_LOCK = 112_015


class StoreTooNew(Ivr112Error):
    """The store was migrated by a newer ivr112 than this one."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    apply: Callable[[Connection], None]


def _add_missing_columns(conn: Connection, table: Table) -> None:
    """Add the columns of `table` the stored table lacks (ALTER TABLE ADD COLUMN, both engines)."""
    have = {c["name"] for c in inspect(conn).get_columns(table.name)}
    preparer = conn.dialect.identifier_preparer
    for column in table.columns:
        if column.name not in have:
            kind = column.type.compile(dialect=conn.dialect)
            conn.execute(text(f"ALTER TABLE {preparer.format_table(table)} ADD COLUMN {preparer.format_column(column)} {kind}"))


def _m001_tables(conn: Connection) -> None:
    """Every table of the first release: incidents and events, locations, recordings, cells,
    the AML inbox, operators' log, callbacks, prank clears, console users and sessions."""
    for table in schema.metadata.sorted_tables:
        if table in (schema.store_version, schema.applied_writes, schema.agency_outbox) or table.name.startswith("text_"):
            continue
        table.create(conn, checkfirst=True)
        _add_missing_columns(conn, table)
        for index in table.indexes:
            if index.name != "idx_incident_events_write_key":
                index.create(conn, checkfirst=True)


def _create(conn: Connection, *tables: Table) -> None:
    """Create `tables` and their indexes where missing."""
    for table in tables:
        table.create(conn, checkfirst=True)
        _create_indexes(conn, table)


def _widen(conn: Connection, table: Table) -> None:
    """Give a stored table the columns and indexes it lacks."""
    _add_missing_columns(conn, table)
    _create_indexes(conn, table)


def _create_indexes(conn: Connection, table: Table) -> None:
    for index in table.indexes:
        index.create(conn, checkfirst=True)


def _m002_event_write_keys(conn: Connection) -> None:
    """Events carry the key of the write that made them, unique: a replayed write lands once."""
    _widen(conn, schema.incident_events)


def _m003_console_audit(conn: Connection) -> None:
    """The console's audit log: logins, failed logins, lock-outs, supervisors' actions."""
    _create(conn, schema.console_audit)


def _m004_texts(conn: Connection) -> None:
    """Text to 112: the conversations' messages and the replies' outbox."""
    _create(conn, schema.text_messages, schema.text_outbox)


def _m005_applied_writes(conn: Connection) -> None:
    """The keys of named writes applied, so that a write replayed from the spool lands once."""
    _create(conn, schema.applied_writes)


def _m006_agency_outbox(conn: Connection) -> None:
    """The EIDO updates waiting for the agencies' webhooks."""
    _create(conn, schema.agency_outbox)


def _m007_text_source_keys(conn: Connection) -> None:
    """A received text keeps where it was read (its journal line), unique: read twice, kept once."""
    _widen(conn, schema.text_messages)


MIGRATIONS = (
    Migration(1, "tables", _m001_tables),
    Migration(2, "event write keys", _m002_event_write_keys),
    Migration(3, "console audit", _m003_console_audit),
    Migration(4, "texts", _m004_texts),
    Migration(5, "applied writes", _m005_applied_writes),
    Migration(6, "agency outbox", _m006_agency_outbox),
    Migration(7, "text source keys", _m007_text_source_keys),
)
LATEST = MIGRATIONS[-1].version


def version(conn: Connection) -> int:
    """The store's version: the newest migration applied (0 for an empty store)."""
    if not inspect(conn).has_table(schema.store_version.name):
        return 0
    return int(conn.execute(select(func.coalesce(func.max(schema.store_version.c.version), 0))).scalar_one())


def migrate(engine: Engine) -> list[int]:
    """Apply the migrations the store lacks, in order, in one transaction; returns their numbers.

    Raises StoreTooNew when the store is newer than this code."""
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK})
        schema.store_version.create(conn, checkfirst=True)
        current = version(conn)
        if current > LATEST:
            raise StoreTooNew(
                f"the store {engine.url.render_as_string(hide_password=True)} is at version {current}, "
                f"this ivr112 knows up to {LATEST}: run the newer ivr112, or restore a backup made for this one"
            )
        done = []
        for migration in MIGRATIONS:
            if migration.version > current:
                migration.apply(conn)
                conn.execute(schema.store_version.insert().values(version=migration.version, name=migration.name, applied_at=now()))
                done.append(migration.version)
        return done
