"""The store's tests run against both engines: each test that takes `store_url` (or
`store`) runs once on a SQLite file and once on a PostgreSQL database of its own, on a
server these tests start (tests/pg.py) and stop by pid at the end of the session."""

from __future__ import annotations

import itertools
import signal
import sqlite3
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from ari_app.store import IncidentStore, open_store
from ari_app.store.writer import AsyncStore
from tests import pg

_names = itertools.count(1)

# The store's methods that write a row: the ones a full disk fails.
WRITING = ("open_incident", "update", "add_event", "log_operator", "add_location", "add_recording", "change_callback", "match_aml")


@pytest.fixture(scope="session")
def pg_server() -> Iterator[pg.PostgresServer]:
    with pg.running() as server:
        yield server


@pytest.fixture(scope="module")
def own_pg() -> Iterator[pg.PostgresServer]:
    """A server of the module's own, for tests that stop and kill it."""
    with pg.running() as server:
        yield server


@pytest.fixture(params=[signal.SIGINT, signal.SIGKILL], ids=["stopped", "killed"])
def fault(request: pytest.FixtureRequest) -> signal.Signals:
    """How a test takes its PostgreSQL server down: stopped (SIGINT, a fast shutdown) or killed."""
    sig: signal.Signals = request.param
    return sig


@asynccontextmanager
async def writer_on(server: pg.PostgresServer, tmp_path: Path, database: str) -> AsyncIterator[AsyncStore]:
    """An app's store writer on a new database of `server`, which the test may stop or kill:
    it is started again at the end if it was left down."""
    store = AsyncStore(tmp_path, url=server.create_database(database), retry_s=0.05)
    await store.open()
    try:
        yield store
    finally:
        if server.pid is None:
            server.start()
        await store.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A new, empty store of each engine: a SQLite file, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.sqlite'}"
    server: pg.PostgresServer = request.getfixturevalue("pg_server")
    return server.create_database(f"t{next(_names)}")


@pytest.fixture
def store(store_url: str, tmp_path: Path) -> Iterator[IncidentStore]:
    opened = open_store(tmp_path, store_url)
    yield opened
    opened.close()


class Disk:
    """Switches a real store's writes to fail as a full disk does."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.full = False
        for name in WRITING:
            real = getattr(IncidentStore, name)
            monkeypatch.setattr(IncidentStore, name, self._guard(real))

    def _guard(self, real: Any) -> Any:
        def write(store: IncidentStore, *args: Any, **kwargs: Any) -> Any:
            if self.full:
                raise sqlite3.OperationalError("database or disk is full")
            return real(store, *args, **kwargs)

        return write


@pytest.fixture
def disk(monkeypatch: pytest.MonkeyPatch) -> Iterator[Disk]:
    yield Disk(monkeypatch)
