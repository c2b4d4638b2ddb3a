"""A PostgreSQL 15 server of the tests' own (ari_app/store/pg_server.py): Debian's binaries,
a temporary data folder, a free loopback port and a generated password; stopped by its pid.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from ari_app.store.pg_server import MISSING, PostgresServer, available

__all__ = ["MISSING", "PostgresServer", "available", "running"]


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
