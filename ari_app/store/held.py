"""The store thread's own connection, kept open between its transactions.

Checking a connection out of SQLAlchemy's pool and back in, with the pool's events, for
each group of writes and each read was about a third of the store thread's CPU per call
(docs/results.md). The thread that owns the store (`Tables.hold`: the writer's) keeps one
`Connection` instead; any other thread, and a block nested in one already running on it,
takes one from the pool as before.

What the pool did for each use is done here:
- a block ends its transaction: `begin` commits it (or rolls it back on an error), `connect`
  rolls back what a read may have opened (the call path's reads go straight to the driver's
  cursor, so SQLAlchemy may not know of it; the pool rolled it back at check-in);
- a store fault (engine.is_store_fault: the server gone, restarted, a disk error) drops the
  connection (invalidated: closed, not given back to the pool); the next block opens a
  fresh one;
- on PostgreSQL a connection idle `engine.PING_IDLE_S` or more is tried first (a round
  trip), as the pool's checkout listener does: after a server restart or a standby's
  promotion the first write then goes on a new connection instead of failing.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, exc

from ari_app.store.engine import PING_IDLE_S, is_store_fault, ping


class HeldConnection:
    """One connection of `engine`, kept for the thread that called `hold` (None: no thread)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.owner: int | None = None
        self._conn: Connection | None = None
        self._used = 0.0
        self._busy = False
        self._server = engine.dialect.name != "sqlite"  # PostgreSQL; a local file needs no ping

    def hold(self) -> None:
        """Keep a connection for the calling thread from now on."""
        self.owner = threading.get_ident()

    def mine(self) -> bool:
        """True when the calling thread may use the held connection now (it owns it, and no
        block of its own is using it)."""
        return not self._busy and self.owner == threading.get_ident()

    @contextmanager
    def connect(self, *, reading: bool) -> Iterator[Connection]:
        """The held connection for a read (`reading`), or for a transaction the block
        commits itself; whatever the block left open is rolled back at its end.

        On PostgreSQL a read runs outside a transaction (autocommit, as SQLAlchemy's own
        ping does): one round trip per statement instead of BEGIN, the statements and
        ROLLBACK. At PostgreSQL's READ COMMITTED each statement of a transaction sees its
        own snapshot anyway, so a read sees the same rows; a block that changes rows
        (`base.locked`) keeps its transaction."""
        with self._use() as conn:
            driver = conn.connection.driver_connection
            alone = reading and self._server
            if alone:
                driver.rollback()  # type: ignore[union-attr]  # none should be open (then no round trip): autocommit refuses one
                driver.autocommit = True  # type: ignore[union-attr]
            try:
                yield conn
                if conn.in_transaction():
                    conn.rollback()
                else:  # a read on the driver's cursor opened a transaction SQLAlchemy does not know of
                    driver.rollback()  # type: ignore[union-attr]
            finally:
                if alone:
                    self._in_transactions(driver)

    def statement(self) -> AbstractContextManager[Connection]:
        """The held connection for statements that need no transaction around them (each
        stands alone: one write, or a write and a read of it), run on the driver's cursor
        (base.run). On PostgreSQL they run in autocommit: the server commits each as it
        runs, as durably as a COMMIT (the same `synchronous_commit`), without the round
        trips of BEGIN and COMMIT, which were a third of the statements of an IVR call. On
        SQLite the driver's own transaction, committed (fsync) at the end of the block:
        SQLAlchemy's around it was a tenth of the store thread's CPU."""
        return self.connect(reading=True) if self._server else self._committed()

    @contextmanager
    def _committed(self) -> Iterator[Connection]:
        with self._use() as conn:  # an error rolls the driver's transaction back (_after)
            yield conn
            conn.connection.driver_connection.commit()  # type: ignore[union-attr]

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        """The held connection in a transaction: committed at the end of the block, rolled
        back if it raises."""
        with self._use() as conn, conn.begin():
            yield conn

    @contextmanager
    def _use(self) -> Iterator[Connection]:
        conn = self._take()
        self._busy = True
        try:
            yield conn
        except BaseException as error:
            self._after(conn, error)
            raise
        finally:
            self._busy = False
            self._used = time.monotonic()

    def _take(self) -> Connection:
        conn = self._conn
        if conn is not None and (conn.invalidated or conn.closed):
            self._drop()
            conn = None
        if conn is not None and self._server and time.monotonic() - self._used >= PING_IDLE_S:
            try:
                ping(conn.dialect, conn.connection.dbapi_connection)
            except exc.DisconnectionError:
                self._drop()
                conn = None
        if conn is None:
            conn = self._conn = self.engine.connect()
        return conn

    def _in_transactions(self, driver: Any) -> None:
        """Back to transactions after a read; a connection that refuses (broken under the
        read) is dropped, and the read's own error is what the caller sees."""
        try:
            if not driver.closed:
                driver.autocommit = False
        except Exception:
            self._drop()

    def _after(self, conn: Connection, error: BaseException) -> None:
        """After a block raised: a fault drops the connection; otherwise its transaction
        must be over (rolled back), or the connection goes too."""
        if is_store_fault(error):
            self._drop()
            return
        try:
            if conn.in_transaction():
                conn.rollback()
            else:
                conn.connection.driver_connection.rollback()  # type: ignore[union-attr]
        except Exception:  # a connection that cannot even roll back is not kept
            self._drop()

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.invalidate()
                conn.close()
            except Exception:  # it is being replaced: whatever is left of it goes with it
                pass

    def close(self) -> None:
        """Close the held connection (given back to the pool, which the store then disposes)."""
        conn, self._conn = self._conn, None
        self.owner = None
        if conn is not None:
            try:
                conn.close()
            except Exception:  # the engine is disposed next: a broken connection goes with it
                conn.invalidate()
