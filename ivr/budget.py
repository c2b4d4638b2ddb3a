"""A sliding-window budget per key: at most `limit` accepted in any `window_s` seconds. Pure
(the clock is given). A refusal is not counted, so a sender retrying a refused message gets
in once the window moves on: slowed, never blocked. Used by the AML door (per gateway) and
the text doors (per number)."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable


class SlidingBudget:
    def __init__(self, limit: int, window_s: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.window_s = window_s
        self._clock = clock
        self._seen: dict[str, deque[float]] = {}

    def allow(self, key: str) -> bool:
        """True, and counted, when `key` is within its budget now; False (not counted) when not."""
        now = self._clock()
        seen = self._seen.setdefault(key, deque())
        while seen and now - seen[0] > self.window_s:
            seen.popleft()
        if len(seen) >= self.limit:
            return False
        seen.append(now)
        return True
