"""What every table group shares: the engine, a transaction for writes, and the one
statement that differs between the engines (insert-or-replace), written once here."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, Engine, Insert, Table
from sqlalchemy.dialects import postgresql, sqlite


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


def insert_once(conn: Connection, table: Table, row: Mapping[str, Any], *, keys: Sequence[str]) -> None:
    """Insert `row` unless one with the same `keys` is there (a replayed write lands once)."""
    conn.execute(_insert(conn, table).values(**row).on_conflict_do_nothing(index_elements=list(keys)))


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
