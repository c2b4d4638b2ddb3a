"""One way to stand up a real stack for a group of tests, and to hand it healed to each test.

The integration tests, the fault suite and the modules with a stack of their own all come
through `running_stack`: its own instance name and ports, prompts built, Asterisk and the
app started as asked, and everything it started stopped (by pid) and removed at the end.
Under `make test-pg` (IVR112_TEST_STORE=postgresql) each stack keeps its record in a fresh
PostgreSQL database of its own (tests/pg.py) unless the test names a `store_url`.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests import pg
from tests.integration.stack import Stack, start_stack


@contextmanager
def running_stack(tmp_path_factory: pytest.TempPathFactory, name: str, *, asterisk: bool = True, app: bool = True,
                  plan_changes: Mapping[str, object] = {}, more_plans: Callable[[Path], Sequence[Path]] | None = None,
                  **settings: Any) -> Iterator[Stack]:
    """A stack named `name` + this process's pid; with Asterisk up and the app running unless
    told not; `settings` override the test config's (e.g. store_url); `plan_changes` change
    the test plan and `more_plans` writes further plans served beside it."""
    if pg.on_postgresql() and "store_url" not in settings:
        settings["store_url"] = pg.fresh_database(name)
    s = start_stack(tmp_path_factory.mktemp(name), f"{name}{os.getpid()}", plan_changes=plan_changes, more_plans=more_plans,
                    **settings)
    s.ivr112("prompts", "build")
    try:
        if asterisk:
            s.asterisk_up()
        if app:
            s.app_start()
        yield s
    finally:
        # Each step even when one before it failed: a stop that raised must not leave this
        # stack's Asterisk running for the rest of the machine's life.
        try:
            s.stop_all_sipp()
            s.app_stop(settle=not asterisk)  # Asterisk is stopped next: no next call to wait for
        finally:
            try:
                if asterisk:
                    s.asterisk_down()
            finally:
                shutil.rmtree(s.layout.host(s.layout.inner), ignore_errors=True)


@contextmanager
def healed(s: Stack, request: pytest.FixtureRequest, *, check_asterisk: bool = False) -> Iterator[Stack]:
    """The stack as a test expects it: the app running (and Asterisk up, when a test may have
    stopped it), queues empty; afterwards SIPp stopped and, if the test failed, the logs dumped."""
    if check_asterisk and s.ivr112("asterisk", "status", check=False).returncode != 0:
        s.asterisk_up()
    if s.app_proc is None or s.app_proc.poll() is not None:
        s.app_start()
    s.clear_queues()
    yield s
    s.stop_all_sipp()
    rep = getattr(request.node, "rep_call", None)
    if rep is not None and rep.failed:
        s.dump_logs()
