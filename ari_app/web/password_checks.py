"""Password checks kept from competing with calls: scrypt runs on one thread of its own at
the lowest CPU priority (nice 19), so Asterisk and the event loop always come first; one
check at a time per client address, and at most `waiting` in all queue for it; more are
refused at once instead of piling up CPU work.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

from ivr.passwords import verify_password

log = logging.getLogger(__name__)

LOWEST_PRIORITY = 19


def _lower_priority() -> None:
    """Linux schedules threads as tasks: the niceness of this thread alone."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), LOWEST_PRIORITY)
    except OSError as exc:  # not fatal: the checks still run, only at the app's priority
        log.warning("password checks run at normal priority (%s)", exc.strerror)


class PasswordChecks:
    def __init__(self, *, waiting: int) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ivr112-passwords", initializer=_lower_priority)
        self._slots = waiting
        self._checking: set[str] = set()

    def refusal(self, address: str) -> str | None:
        """Why a check for `address` cannot start now, or None."""
        if address in self._checking:
            return "a login from this address is being checked: one at a time"
        if len(self._checking) >= self._slots:
            return "too many logins at once; try again in a moment"
        return None

    @contextmanager
    def held(self, address: str) -> Iterator[None]:
        """`address`'s turn, from before its account is looked up until its check is done:
        taken after `refusal(address)` said None, with no await in between."""
        self._checking.add(address)
        try:
            yield
        finally:
            self._checking.discard(address)

    async def verify(self, password: str, stored: str) -> bool:
        """Whether `password` matches `stored`, on the hashing thread; call it while `held`."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, verify_password, password, stored)

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)
