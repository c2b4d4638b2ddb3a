"""Which engine holds the store, from the `store_url` setting, and which of its errors
are faults of the store (down, full, unreachable: retried) rather than bugs (raised).

`store_url` unset or `sqlite:///PATH` is the embedded SQLite file (WAL, synchronous=FULL,
so a row written survives a kill of the app); `postgresql://user:password@host:port/db`
is a PostgreSQL server, spoken to with psycopg 3.
"""

from __future__ import annotations

import functools
import sqlite3
import time
from pathlib import Path
from typing import Any

import psycopg
from psycopg.conninfo import make_conninfo
from sqlalchemy import Engine, create_engine, event, exc
from sqlalchemy.engine import make_url

from ivr.errors import ConfigError
from ivr.store import STORE_FILE

# Seconds to wait for PostgreSQL to accept a connection before the store counts as down.
CONNECT_TIMEOUT_S = 3
# Longest wait for a lock another node holds (PostgreSQL: a row a node locked for a change,
# base.locked; a table a migration alters), before the statement fails as a store fault: a
# node that stalls holding one must not stall the others. Set for every connection when it
# is made (a SET LOCAL in each change was one statement in twenty of an IVR call).
LOCK_TIMEOUT_S = 5.0


def resolve_url(url: str, data_dir: Path) -> str:
    """The SQLAlchemy URL of `store_url`: empty means the SQLite file in the data folder."""
    if not url:
        return f"sqlite:///{data_dir / STORE_FILE}"
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres", "postgresql+psycopg"):
        return parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    if parsed.drivername == "sqlite":
        return url
    raise ConfigError(
        f"store_url {safe_url(url)!r}: unknown engine {parsed.drivername!r}; "
        "use sqlite:///PATH or postgresql://USER:PASSWORD@HOST:PORT/DB"
    )


def libpq_url(url: str) -> str | None:
    """The `store_url` of a PostgreSQL store as a libpq (psycopg) connection string; None for SQLite."""
    if not url:
        return None
    parsed = make_url(url)
    if parsed.drivername.split("+")[0] not in ("postgresql", "postgres"):
        return None
    # Through libpq's keywords, not the URL rendered back: a store_url naming a primary and
    # its standby (?host=A&host=B) would otherwise reach libpq as one wrong host.
    return make_conninfo("", **libpq_params(url))


def safe_url(url: str) -> str:
    """The URL without its password, for logs and errors."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except exc.ArgumentError:
        return "<unreadable url>"


def make_engine(url: str, data_dir: Path) -> Engine:
    """An engine for `store_url`; for SQLite the folder is made and the pragmas set on every connection."""
    full = resolve_url(url, data_dir)
    parsed = make_url(full)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(full)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    # The URL's own server options (`?options=-c ...`) are kept, the lock timeout added.
    given = parsed.query.get("options")
    options = " ".join(filter(None, [given if isinstance(given, str) else "", f"-c lock_timeout={int(LOCK_TIMEOUT_S * 1000)}"]))
    engine = create_engine(
        full,
        pool_size=2,
        max_overflow=2,
        connect_args={"connect_timeout": CONNECT_TIMEOUT_S, "application_name": "ivr112", "options": options},
    )
    event.listen(engine, "checkout", functools.partial(_ping_if_idle, engine.dialect))
    event.listen(engine, "checkin", _used)
    return engine


# A pooled PostgreSQL connection idle this long is tried (a round trip) before it is used:
# the server may have been restarted, or a standby promoted, meanwhile. Tried at every use
# (pool_pre_ping), the round trip was a sixth of the store thread's CPU per call; a
# connection used less than this ago is taken as it is (a statement that fails on it is a
# store fault like any other: the writer keeps the writes and opens the store again).
PING_IDLE_S = 1.0


def _used(_dbapi_conn: Any, record: Any) -> None:
    record.info["used"] = time.monotonic()


def _ping_if_idle(dialect: Any, dbapi_conn: Any, record: Any, _proxy: Any) -> None:
    if time.monotonic() - record.info.get("used", 0.0) >= PING_IDLE_S:
        ping(dialect, dbapi_conn)


def ping(dialect: Any, dbapi_conn: Any) -> None:
    """Try a connection with a round trip; a store fault raises DisconnectionError (the
    connection is gone: take another), anything else as it is."""
    try:
        dialect.do_ping(dbapi_conn)
    except Exception as error:
        if not is_store_fault(error):
            raise
        # The pool drops this connection and takes another (or a new one), as pool_pre_ping does.
        raise exc.DisconnectionError(f"a pooled store connection is gone: {error}") from error


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def is_store_fault(error: BaseException) -> bool:
    """True for faults of the store (disk full, read-only, I/O, cannot open, locked; server down,
    unreachable, restarting, a read-only standby), False for programming errors (a constraint,
    a bad statement), which are not retried."""
    if isinstance(error, exc.DBAPIError) and error.orig is not None:
        if error.connection_invalidated:
            return True
        error = error.orig
    elif isinstance(error, (exc.TimeoutError, exc.DisconnectionError)):
        return True
    if isinstance(error, (sqlite3.IntegrityError, sqlite3.ProgrammingError, sqlite3.InterfaceError)):
        return False
    if isinstance(error, (psycopg.IntegrityError, psycopg.ProgrammingError, psycopg.DataError)):
        return False
    return isinstance(
        error,
        (sqlite3.OperationalError, sqlite3.DatabaseError, OSError, psycopg.OperationalError, psycopg.InterfaceError,
         psycopg.InternalError),
    )


def libpq_params(url: str) -> dict[str, str]:
    """libpq's keywords for a PostgreSQL `store_url`, as SQLAlchemy hands them to psycopg
    (password included): the form naming a primary and its standby,
    `?host=A:5432&host=B:5432&target_session_attrs=read-write`, becomes `host=A,B
    port=5432,5432`, which a URL rendered back for libpq does not say (libpq keeps only
    the last `host=` there, with its port glued on). For the tools and plain psycopg
    connections (psycopg.conninfo.make_conninfo("", **params))."""
    engine = create_engine(resolve_url(url, Path()))
    try:
        _, params = engine.dialect.create_connect_args(engine.url)
    finally:
        engine.dispose()
    return {k: str(v) for k, v in params.items() if k != "context"}
