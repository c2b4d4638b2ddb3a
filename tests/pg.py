"""A PostgreSQL 15 server of the tests' own (ari_app/store/pg_server.py): Debian's binaries,
a temporary data folder, a free loopback port and a generated password; stopped by its pid.

`running()` gives a test or module a server of its own; `shared()` is the one server of this
test process (each pytest-xdist worker has its own), started on first use and stopped when
the session ends: `make test-pg` (IVR112_TEST_STORE=postgresql) gives each test stack a fresh
database on it.
"""

from __future__ import annotations

import atexit
import itertools
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from ari_app.store.pg_server import MISSING, PostgresServer, available

__all__ = ["MISSING", "PostgresServer", "available", "on_postgresql", "running", "shared", "stop_shared"]

# IVR112_TEST_STORE=postgresql: every test stack's store_url is a database on shared().
TEST_STORE_ENV = "IVR112_TEST_STORE"
_shared: PostgresServer | None = None
_names = itertools.count(1)


def on_postgresql() -> bool:
    """True when the tests' stacks keep their record in PostgreSQL (`make test-pg`)."""
    engine = os.environ.get(TEST_STORE_ENV, "sqlite")
    if engine not in ("sqlite", "postgresql"):
        raise RuntimeError(f"{TEST_STORE_ENV}={engine!r}: expected sqlite or postgresql")
    return engine == "postgresql"


@contextmanager
def running() -> Iterator[PostgresServer]:
    """A server of one's own for the block (the test is skipped, saying why, when PostgreSQL is not installed)."""
    if not available():
        pytest.skip(MISSING)
    server = PostgresServer()
    try:
        server.init()
        server.start()
        yield server
    finally:
        server.destroy()


def shared() -> PostgresServer:
    """This process's server, started the first time it is asked for."""
    global _shared
    if _shared is None:
        if not available():
            raise RuntimeError(f"{TEST_STORE_ENV}=postgresql, but {MISSING}")
        server = PostgresServer(max_connections=200)
        try:
            server.init()
            server.start()
        except BaseException:
            server.destroy()
            raise
        _shared = server
        atexit.register(stop_shared)  # a session cut short still stops it
    return _shared


def fresh_database(name: str) -> str:
    """The URL of a new, empty database on the shared server, named after `name`."""
    clean = re.sub(r"[^a-z0-9_]", "_", name.lower())
    return shared().create_database(f"{clean}_{os.getpid()}_{next(_names)}")


def stop_shared() -> None:
    """Stop this process's server (by its pid) and remove its folder; nothing when none was started."""
    global _shared
    if _shared is not None:
        server, _shared = _shared, None
        server.destroy()
