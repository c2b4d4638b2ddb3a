"""Copy a whole store to another (a regency's SQLite history into the province's PostgreSQL),
table by table in dependency order, with the row counts checked on both sides."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import func, select, text

from ari_app.store import IncidentStore, schema
from ivr.errors import Ivr112Error

BATCH = 2000


class CopyRefused(Ivr112Error):
    """The copy cannot go ahead, or its counts do not match."""


def copy_store(source: IncidentStore, target: IncidentStore, *, say: Callable[[str], None] = print) -> dict[str, int]:
    """Copy every row of `source` into `target`, which must hold no incident yet; returns rows per table."""
    with target.engine.connect() as conn:
        if conn.execute(select(func.count()).select_from(schema.incidents)).scalar_one():
            raise CopyRefused(f"{target.where} already holds incidents: copy into an empty store (ids are kept as they are)")
    counts: dict[str, int] = {}
    tables = [t for t in schema.metadata.sorted_tables if t is not schema.store_version]
    with source.engine.connect() as src, target.engine.begin() as dst:
        for table in reversed(tables):
            dst.execute(table.delete())
        for table in tables:
            result = src.execute(select(table)).mappings()
            copied = 0
            while batch := result.fetchmany(BATCH):
                dst.execute(table.insert(), [dict(r) for r in batch])
                copied += len(batch)
            have = int(dst.execute(select(func.count()).select_from(table)).scalar_one())
            if have != copied:
                raise CopyRefused(f"{table.name}: {copied} rows read from {source.where}, {have} in {target.where}")
            counts[table.name] = copied
            say(f"{table.name}: {copied} rows")
        if dst.dialect.name == "postgresql":
            # Ids were copied as they are: each sequence goes on after the highest.
            for table in tables:
                if "id" in table.c and table.c.id.primary_key:
                    dst.execute(text(f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "
                                     f"COALESCE((SELECT max(id) FROM {table.name}), 0) + 1, false)"))
    return counts
