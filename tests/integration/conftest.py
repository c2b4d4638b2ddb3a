"""One real Asterisk and one app process per test session, on their own ports."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest

from tests.integration.stack import Stack, start_stack


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("stack")
    s = start_stack(tmp, f"test{os.getpid()}")
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
def live(stack: Stack, request: pytest.FixtureRequest) -> Iterator[Stack]:
    """The stack with the app running; dumps the logs of a failed test."""
    if stack.app_proc is None or stack.app_proc.poll() is not None:
        stack.app_start()
    stack.clear_queues()
    yield stack
    stack.stop_all_sipp()
    rep = getattr(request.node, "rep_call", None)
    if rep is not None and rep.failed:
        stack.dump_logs()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    rep = yield
    if rep.when == "call":
        item.rep_call = rep  # type: ignore[attr-defined]
    return rep
