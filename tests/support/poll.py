"""The one way tests wait: poll a check against a deadline, never sleep on a guess.

`wait_for` (threads, subprocesses, the real stack) and `eventually` (asyncio tests)
share the deadline and the failure message: what was awaited, for how long, and the last
value the check gave, so a failure says what was seen instead of only "timed out".
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar, cast

T = TypeVar("T")

INTERVAL_S = 0.1  # between two looks at the real stack (a subprocess or an HTTP call each)
ASYNC_INTERVAL_S = 0.005  # between two looks inside one event loop (cheap; let other tasks run)


class WaitTimeout(AssertionError):
    """The check never held before the deadline (an AssertionError, so pytest shows it as a failure)."""


@dataclass
class Deadline:
    what: str
    timeout: float
    end: float = field(init=False)

    def __post_init__(self) -> None:
        self.end = time.monotonic() + self.timeout

    def settled(self, last: object) -> bool:
        """Whether `last` (the check's latest answer) is the awaited one; fails once the deadline passed."""
        if last:
            return True
        if time.monotonic() >= self.end:
            raise WaitTimeout(f"timed out after {self.timeout:g} s waiting for {self.what} (last: {last!r})")
        return False


def wait_for(what: str, check: Callable[[], T | None], timeout: float = 20.0, interval: float = INTERVAL_S) -> T:
    """Poll `check` until it returns something truthy and return that; fail naming `what`."""
    deadline = Deadline(what, timeout)
    while not deadline.settled(last := check()):
        time.sleep(interval)
    return cast(T, last)


def holds_within(check: Callable[[], object], *, timeout: float, interval: float = INTERVAL_S) -> bool:
    """Whether `check` came true within `timeout` s; no failure if it did not (the caller counts)."""
    try:
        wait_for("a condition", check, timeout=timeout, interval=interval)
    except WaitTimeout:
        return False
    return True


async def eventually(check: Callable[[], T | None], *, what: str = "a condition", within_s: float = 5.0,
                     interval: float = ASYNC_INTERVAL_S) -> T:
    """`wait_for` inside an event loop: the tasks that make `check` true run between looks."""
    deadline = Deadline(what, within_s)
    while not deadline.settled(last := check()):  # noqa: ASYNC110 - what is polled has no event to wait on
        await asyncio.sleep(interval)
    return cast(T, last)
