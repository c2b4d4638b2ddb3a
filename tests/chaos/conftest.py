"""The fault suite (issue 7): its own real stack, apart from the integration tests' one, since
these tests break things on purpose (kill the app, restart Asterisk, make the store read-only).

`make test` runs the short form; `make chaos` sets IVR112_CHAOS=long for more rounds and
more calls. Each test says what it broke and counts what was lost; the answer must be zero.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.integration.stack import Stack
from tests.support.stacks import healed, running_stack

LONG = os.environ.get("IVR112_CHAOS", "") == "long"


def rounds(short: int, long: int) -> int:
    """How many times a fault is repeated: `short` in make test, `long` in make chaos."""
    return long if LONG else short


@pytest.fixture(scope="session")
def chaos_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack(tmp_path_factory, "chaos") as s:
        yield s


@pytest.fixture
def broken(chaos_stack: Stack, request: pytest.FixtureRequest) -> Iterator[Stack]:
    """The chaos stack, healed before each test (app running, Asterisk up, queues empty);
    dumps the logs of a failed test."""
    with healed(chaos_stack, request, check_asterisk=True) as s:
        yield s


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """What each fault test broke and counted (its `record_property("chaos", ...)` lines),
    repeated after the run; they travel with the test reports, so pytest-xdist keeps them."""
    lines = [str(value) for key in ("passed", "failed") for rep in terminalreporter.stats.get(key, [])
             if getattr(rep, "when", "") == "call" for name, value in getattr(rep, "user_properties", ()) if name == "chaos"]
    if lines:
        terminalreporter.section("faults and what they cost")
        for line in lines:
            terminalreporter.write_line(line)

