"""The fault suite (issue 7): its own real stack, apart from the integration tests' one, since
these tests break things on purpose (kill the app, restart Asterisk, make the store read-only).

`make test` runs the short form; `make chaos` sets IVR112_CHAOS=long for more rounds and
more calls. Each test says what it broke and counts what was lost; the answer must be zero.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest

from tests.integration.stack import Stack, start_stack

LONG = os.environ.get("IVR112_CHAOS", "") == "long"


def rounds(short: int, long: int) -> int:
    """How many times a fault is repeated: `short` in make test, `long` in make chaos."""
    return long if LONG else short


@pytest.fixture(scope="session")
def chaos_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("chaos")
    s = start_stack(tmp, f"chaos{os.getpid()}")
    s.ivr112("prompts", "build")
    s.asterisk_up()
    try:
        s.app_start()
        yield s
    finally:
        s.stop_all_sipp()
        s.app_stop()
        s.asterisk_down()
        shutil.rmtree(s.layout.host(s.layout.inner), ignore_errors=True)


@pytest.fixture
def broken(chaos_stack: Stack, request: pytest.FixtureRequest) -> Iterator[Stack]:
    """The chaos stack, healed before each test (app running, Asterisk up, queues empty);
    dumps the logs of a failed test."""
    s = chaos_stack
    if s.ivr112("asterisk", "status", check=False).returncode != 0:
        s.asterisk_up()
    if s.app_proc is None or s.app_proc.poll() is not None:
        s.app_start()
    s.clear_queues()
    yield s
    s.stop_all_sipp()
    rep = getattr(request.node, "rep_call", None)
    if rep is not None and rep.failed:
        s.dump_logs()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """What each fault test broke and counted (its `record_property("chaos", ...)` lines),
    repeated after the run; they travel with the test reports, so pytest-xdist keeps them."""
    lines = [str(value) for key in ("passed", "failed") for rep in terminalreporter.stats.get(key, [])
             if getattr(rep, "when", "") == "call" for name, value in getattr(rep, "user_properties", ()) if name == "chaos"]
    if lines:
        terminalreporter.section("faults and what they cost")
        for line in lines:
            terminalreporter.write_line(line)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    rep = yield
    if rep.when == "call":
        item.rep_call = rep  # type: ignore[attr-defined]
    return rep
