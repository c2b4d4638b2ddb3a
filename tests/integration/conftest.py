"""One real Asterisk and one app process per test session, on their own ports."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration.stack import Stack
from tests.support.stacks import healed, running_stack


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack(tmp_path_factory, "test") as s:
        yield s


@pytest.fixture
def live(stack: Stack, request: pytest.FixtureRequest) -> Iterator[Stack]:
    """The stack with the app running; dumps the logs of a failed test."""
    with healed(stack, request) as s:
        yield s
