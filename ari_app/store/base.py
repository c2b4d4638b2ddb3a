"""What every table group shares: the engine, a transaction for writes (one per write, or
one for a group of them: `batch`), a locked one for a read-modify-write that several nodes
may race (`locked`), the one statement that differs between the engines
(insert-or-replace), written once here, and the call path's statements run as prepared
statements (`run`, `rows`, `row`)."""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any, Protocol, cast

from sqlalchemy import Connection, Engine, Executable, Insert, Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect

from ari_app.store.held import HeldConnection


class Tables:
    """Base of the table groups; `ari_app.store.IncidentStore` combines them over one engine.
    Every block reaches the store through `connect` (a read) or `begin` (a transaction): the
    held connection on the thread that holds the store (held.py), the pool's elsewhere."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._group: Connection | None = None
        self._held = HeldConnection(engine)

    def hold(self) -> None:
        """Keep one connection for the calling thread (the writer's) between its blocks."""
        self._held.hold()

    def connect(self, *, reading: bool = True) -> AbstractContextManager[Connection]:
        """A connection for a read (or, not `reading`, for changes the block commits itself);
        whatever the block leaves uncommitted is rolled back."""
        return self._held.connect(reading=reading) if self._held.mine() else self.engine.connect()

    def begin(self) -> AbstractContextManager[Connection]:
        """A transaction, committed at the end of the block, rolled back if it raises."""
        return self._held.begin() if self._held.mine() else self.engine.begin()

    def statement(self) -> AbstractContextManager[Connection]:
        """For a write that is one statement (or one and a read of it): nothing to roll back
        together. In a batch the batch's transaction; on the store thread's PostgreSQL
        connection autocommit (held.py); elsewhere a transaction of its own."""
        if self._group is not None:
            return nullcontext(self._group)
        return self._held.statement() if self._held.mine() else self.engine.begin()

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Every write in the block in one transaction: one commit (one fsync, one WAL flush)
        for all of them; an error rolls them all back."""
        with self.begin() as conn:
            self._group = conn
            try:
                yield
            finally:
                self._group = None

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """The transaction a write goes in: the batch's, or one of its own."""
        if self._group is not None:
            yield self._group
            return
        with self.begin() as conn:
            yield conn

    def close(self) -> None:
        """Close the held connection (call it on the holding thread), then the engine's pool."""
        self._held.close()
        self.engine.dispose()


def upsert(conn: Connection, table: Table, row: Mapping[str, Any], *, keys: Sequence[str]) -> None:
    """Insert `row`, or replace the columns of the row with the same `keys`."""
    run(conn, _upsert(conn.dialect.name, table, tuple(row), tuple(keys)), row)


def insert_once(conn: Connection, table: Table, row: Mapping[str, Any], *, keys: Sequence[str]) -> bool:
    """Insert `row` unless one with the same `keys` is there (a replayed write lands once);
    True when it was inserted."""
    # RETURNING rather than rowcount: psycopg reports -1 for this statement.
    return run(conn, _insert_unless_there(conn.dialect.name, table, tuple(keys), "key"), row).fetchone() is not None


@contextmanager
def locked(tables: Tables) -> Iterator[Connection]:
    """A transaction for a read-modify-write that another node may run at the same moment:
    on SQLite it takes the database's write lock at its start (BEGIN IMMEDIATE; a second
    writer waits for it), on PostgreSQL the rows it reads `FOR UPDATE` are locked.
    Committed at the end of the block, rolled back if it raises."""
    with tables.connect(reading=False) as conn:
        if conn.in_transaction():
            # Part of a larger write that holds its own transaction (a named write and its
            # key, writes.py): the change runs inside it and is committed with it. On SQLite
            # that transaction wrote the key first, so it holds the write lock already.
            yield conn
            return
        if conn.dialect.name == "sqlite":
            # pysqlite would begin a deferred transaction at the first write, after the read:
            # two nodes could both read before either writes. (A writer waits for the lock
            # up to pysqlite's busy timeout, 5 s.)
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            # The block's statements run on the driver's cursor (run): SQLAlchemy must know
            # of the transaction for the commit below to commit it.
            conn.begin()
        # On PostgreSQL a node that stalls holding the row (its host gone without closing the
        # connection) does not stall this node's writer for ever: every connection waits at
        # most engine.LOCK_TIMEOUT_S for a lock, then the change fails as a store fault.
        yield conn
        conn.commit()


def insert_ignoring(conn: Connection, table: Table, values: Mapping[str, Any], *, keys: Sequence[str]) -> None:
    """Insert `values` unless a row with the same `keys` is there (a replayed write lands
    once), when whether it was is of no use: nothing comes back to read."""
    run(conn, _insert_unless_there(conn.dialect.name, table, tuple(keys), ""), values)


def insert_returning(conn: Connection, table: Table, values: Mapping[str, Any], *, keys: Sequence[str]) -> dict[str, Any] | None:
    """Insert `values` unless a row with the same `keys` is there; the inserted row, read
    back in the same statement (RETURNING), or None when one was there already."""
    return row(conn, _insert_unless_there(conn.dialect.name, table, tuple(keys), "row"), values)


def insert_new(conn: Connection, table: Table, row: Mapping[str, Any], *, key: str) -> bool:
    """Insert `row` unless one with the same `key` column is there; True when it was inserted
    now (told by RETURNING: psycopg's rowcount says -1 for ON CONFLICT DO NOTHING)."""
    return insert_once(conn, table, row, keys=[key])


# The call path's statements, as prepared statements. Each is built once (a module constant
# taking its values as bind parameters), compiled once per engine and set of parameter
# names, and run straight on the driver's cursor: SQLAlchemy's execution around each
# statement (its cache key, execution context and result object) cost several times the
# statement itself, most of the store thread's CPU per call (docs/results.md). sqlite3
# keeps each statement prepared on its connection; psycopg prepares one on the server
# once it has run five times. The schema's types need no conversion (text, integers,
# floats: schema.py), and driver errors are what `engine.is_store_fault` reads.


class Cursor(Protocol):
    """What the call path uses of a DBAPI cursor."""

    description: Sequence[Sequence[Any]] | None
    rowcount: int

    def fetchone(self) -> Sequence[Any] | None: ...

    def fetchall(self) -> Sequence[Sequence[Any]]: ...


def run(conn: Connection, statement: Executable, params: Mapping[str, Any]) -> Cursor:
    """Run a statement built once with these parameters, on the connection's transaction."""
    sql, names, fixed = _compiled(conn.dialect, statement, tuple(params))
    values = {**fixed, **params} if fixed else params
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    cursor.execute(sql, values if names is None else [values[n] for n in names])
    return cast(Cursor, cursor)


def rows(conn: Connection, statement: Executable, params: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every row of a query built once, each as {column: value}."""
    cursor = run(conn, statement, params)
    found = cursor.fetchall()
    columns = _columns(statement, cursor)
    return [dict(zip(columns, r, strict=True)) for r in found]


def row(conn: Connection, statement: Executable, params: Mapping[str, Any]) -> dict[str, Any] | None:
    """The first row of a query built once, as {column: value}, or None."""
    cursor = run(conn, statement, params)
    found = cursor.fetchone()
    return None if found is None else dict(zip(_columns(statement, cursor), found, strict=True))


_COLUMNS: dict[Executable, tuple[str, ...]] = {}


def _columns(statement: Executable, cursor: Cursor) -> tuple[str, ...]:
    """The names of a statement's result columns, read from the driver once per statement:
    psycopg builds a description object per column at each reading, a tenth of the store
    thread's CPU on PostgreSQL (the incident has some 25 columns)."""
    found = _COLUMNS.get(statement)
    if found is None:
        found = _COLUMNS[statement] = tuple(d[0] for d in cursor.description or ())
    return found


_Compiled = tuple[str, tuple[str, ...] | None, dict[str, Any]]
_COMPILED: dict[tuple[str, Executable, tuple[str, ...]], _Compiled] = {}


def _compiled(dialect: Dialect, statement: Executable, names: tuple[str, ...]) -> _Compiled:
    """The statement's SQL for this engine, the order of its positional parameters (None:
    the driver takes them by name), and the values it holds itself (a constant compared
    with, a LIMIT)."""
    key = (dialect.name, statement, names)
    found = _COMPILED.get(key)
    if found is None:
        compiled = statement.compile(dialect=dialect, column_keys=list(names))  # type: ignore[attr-defined]
        order = tuple(compiled.positiontup) if compiled.positional else None
        fixed = {name: bind.effective_value for name, bind in compiled.binds.items() if name not in names}
        missing = [name for name in fixed if compiled.binds[name].required]
        if missing:
            raise ValueError(f"statement needs parameters {sorted(missing)} it was not given: {compiled.string}")
        found = _COMPILED[key] = (compiled.string, order, fixed)
    return found


# The statements are built once per shape and take their values as parameters: building
# one per write (`.values(**row)`) was most of a write's CPU, and a statement of the same
# shape is one entry of SQLAlchemy's compiled cache (and of psycopg's prepared statements).
@functools.cache
def _upsert(dialect: str, table: Table, columns: tuple[str, ...], keys: tuple[str, ...]) -> Any:
    insert = _insert(dialect, table)
    changed = {c: insert.excluded[c] for c in columns if c not in keys}
    return (insert.on_conflict_do_update(index_elements=list(keys), set_=changed) if changed
            else insert.on_conflict_do_nothing(index_elements=list(keys)))


@functools.cache
def _insert_unless_there(dialect: str, table: Table, keys: tuple[str, ...], returning: str) -> Any:
    """INSERT ... ON CONFLICT (keys) DO NOTHING, returning nothing (""), the first key
    column ("key") or the whole row ("row")."""
    insert = _insert(dialect, table).on_conflict_do_nothing(index_elements=list(keys))
    if returning == "key":
        return insert.returning(table.c[keys[0]])
    return insert.returning(*table.c) if returning == "row" else insert


def _insert(dialect: str, table: Table) -> Any:
    # Both dialects' Insert have on_conflict_do_update/do_nothing with the same arguments.
    maker = postgresql.insert if dialect == "postgresql" else sqlite.insert
    insert: Insert = maker(table)
    return insert


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def loads(text: str | None) -> Any:
    return json.loads(text or "{}")
