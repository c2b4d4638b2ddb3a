"""The store's tests run against both engines: each test that takes `store_url` (or
`store`) runs once on a SQLite file and once on a PostgreSQL database of its own, on a
server these tests start (tests/pg.py) and stop by pid at the end of the session."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest

from ari_app.store import IncidentStore, open_store
from tests import pg

_names = itertools.count(1)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[pg.PostgresServer]:
    with pg.running() as server:
        yield server


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
