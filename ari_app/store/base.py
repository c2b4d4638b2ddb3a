"""What every table group shares: the engine, a transaction for writes, a locked one for
a read-modify-write that several nodes may race (`locked`), and the one statement that
differs between the engines (insert-or-replace), written once here."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, Insert, Table
from sqlalchemy.dialects import postgresql, sqlite

# Longest wait for a row another node holds locked (PostgreSQL), before the change fails as a store fault.
LOCK_TIMEOUT_S = 5.0


class Tables:
    """Base of the table groups; `ari_app.store.IncidentStore` combines them over one engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def close(self) -> None:
        self.engine.dispose()


def upsert(conn: Connection, table: Table, row: Mapping[str, Any], *, keys: Sequence[str]) -> None:
    """Insert `row`, or replace the columns of the row with the same `keys`."""
    insert = _insert(conn, table).values(**row)
    changed = {k: v for k, v in row.items() if k not in keys}
    conn.execute(insert.on_conflict_do_update(index_elements=list(keys), set_=changed) if changed
                 else insert.on_conflict_do_nothing(index_elements=list(keys)))


def insert_once(conn: Connection, table: Table, row: Mapping[str, Any], *, keys: Sequence[str]) -> bool:
    """Insert `row` unless one with the same `keys` is there (a replayed write lands once);
    True when it was inserted."""
    # RETURNING rather than rowcount: psycopg through SQLAlchemy reports -1 for this statement.
    insert = _insert(conn, table).values(**row).on_conflict_do_nothing(index_elements=list(keys))
    return conn.execute(insert.returning(table.c[keys[0]])).first() is not None


@contextmanager
def locked(engine: Engine) -> Iterator[Connection]:
    """A transaction for a read-modify-write that another node may run at the same moment:
    on SQLite it takes the database's write lock at its start (BEGIN IMMEDIATE; a second
    writer waits for it), on PostgreSQL the rows it reads `FOR UPDATE` are locked.
    Committed at the end of the block, rolled back if it raises."""
    with engine.connect() as conn:
        if conn.in_transaction():
            # Part of a larger write that holds its own transaction (a named write and its
            # key, writes.py): the change runs inside it and is committed with it. On SQLite
            # that transaction wrote the key first, so it holds the write lock already.
            if conn.dialect.name != "sqlite":
                conn.exec_driver_sql(f"SET LOCAL lock_timeout = '{int(LOCK_TIMEOUT_S * 1000)}ms'")
            yield conn
            return
        if conn.dialect.name == "sqlite":
            # pysqlite would begin a deferred transaction at the first write, after the read:
            # two nodes could both read before either writes. (A writer waits for the lock
            # up to pysqlite's busy timeout, 5 s.)
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            # A node that stalls holding the row (its host gone without closing the
            # connection) must not stall this node's writer for ever: a store fault instead.
            conn.exec_driver_sql(f"SET LOCAL lock_timeout = '{int(LOCK_TIMEOUT_S * 1000)}ms'")
        yield conn
        conn.commit()


def insert_new(conn: Connection, table: Table, row: Mapping[str, Any], *, key: str) -> bool:
    """Insert `row` unless one with the same `key` column is there; True when it was inserted
    now (told by RETURNING: psycopg's rowcount says -1 for ON CONFLICT DO NOTHING)."""
    insert = _insert(conn, table).values(**row).on_conflict_do_nothing(index_elements=[key]).returning(table.c[key])
    return conn.execute(insert).first() is not None


def _insert(conn: Connection, table: Table) -> Any:
    # Both dialects' Insert have on_conflict_do_update/do_nothing with the same arguments.
    maker = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    insert: Insert = maker(table)
    return insert


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def loads(text: str | None) -> Any:
    return json.loads(text or "{}")
