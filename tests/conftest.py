"""For every test: a test's own outcome stays on its item (`item.rep_call`), so a fixture's
teardown can dump the logs of a test that failed (tests/support/stacks.healed)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    rep = yield
    if rep.when == "call":
        item.rep_call = rep  # type: ignore[attr-defined]
    return rep


@pytest.fixture(scope="session", autouse=True)
def _shared_postgresql() -> Iterator[None]:
    """The session's end stops the PostgreSQL server `make test-pg` started in this process (tests/pg.py)."""
    yield
    from tests import pg

    pg.stop_shared()
