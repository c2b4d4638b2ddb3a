"""The app's memory: a report for hunting leaks (SIGUSR2) and giving back what malloc keeps.

`QuietTrim` asks glibc's malloc to return the memory that calls freed but it kept in its
arenas (`malloc_trim`), once the app has had no call in hand for a moment, so trimming
never competes with a caller. In the benchmark's 10,000-call run that is 0.3-0.4 MB after
each busy spell; most of the RSS growth that run reports is bounded caches filling up
(SQLite's page cache up to 2 MB), which the report below shows apart.
"""

from __future__ import annotations

import asyncio
import collections
import ctypes
import ctypes.util
import gc
import logging
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger("ivr112.memory")

QUIET_S = 2.0  # no call in hand for this long before a trim


def _libc() -> ctypes.CDLL | None:
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None


_LIBC = _libc()


_MALLOC_TRIM = getattr(_LIBC, "malloc_trim", None)
if _MALLOC_TRIM is not None:
    _MALLOC_TRIM.argtypes = [ctypes.c_size_t]


def trim() -> bool:
    """Hand the free memory malloc keeps back to the system; False where that cannot be asked
    (not glibc)."""
    if _MALLOC_TRIM is None:
        return False
    _MALLOC_TRIM(0)
    return True


class QuietTrim:
    """Trims once after each busy spell, when `busy()` has been False for QUIET_S seconds.

    `ended()` is told at each call's end; the loop itself costs one check a second.
    """

    def __init__(self, busy: Callable[[], bool], quiet_s: float = QUIET_S) -> None:
        self.busy = busy
        self.quiet_s = quiet_s
        self.trims = 0
        self._dirty = False
        self._last_end = 0.0

    def ended(self) -> None:
        self._dirty = True
        self._last_end = time.monotonic()

    def due(self) -> bool:
        return self._dirty and not self.busy() and time.monotonic() - self._last_end >= self.quiet_s

    async def run(self) -> None:
        while True:
            await asyncio.sleep(min(1.0, self.quiet_s))
            if self.due():
                self._dirty = False
                before = rss_kb()
                if trim():
                    self.trims += 1
                    after = rss_kb()
                    log.info("memory: no call in hand, gave back %d kB (RSS %d kB)", before - after, after)


def rss_kb() -> int:
    """The process's resident set, 0 where /proc cannot tell."""
    try:
        with open("/proc/self/status") as f:
            return next((int(line.split()[1]) for line in f if line.startswith("VmRSS")), 0)
    except OSError:
        return 0


def report(data_path: Path) -> None:
    """SIGUSR2: what the app holds, for hunting a leak. The live objects by type go to the
    log; under PYTHONTRACEMALLOC=N a tracemalloc snapshot is written beside the store too
    (compare two with `Snapshot.load(a).compare_to(Snapshot.load(b), "lineno")`)."""
    unreachable = gc.collect()  # garbage in reference cycles is not what the app holds
    counts = collections.Counter(type(o).__qualname__ for o in gc.get_objects())
    log.warning(
        "memory: %d objects (after collecting %d unreachable); most: %s; outside Python: %s", sum(counts.values()),
        unreachable, ", ".join(f"{n} {c}" for n, c in counts.most_common(25)), native(),
    )
    if tracemalloc.is_tracing():
        path = data_path / f"tracemalloc-{time.strftime('%Y%m%d-%H%M%S')}-{time.monotonic_ns() % 10**6}.snap"
        tracemalloc.take_snapshot().dump(str(path))
        log.warning("memory: tracemalloc snapshot in %s", path)


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]


def native() -> str:
    """SQLite's own heap and glibc malloc's totals, where those libraries can be asked."""
    parts = []
    try:
        lib = ctypes.CDLL(ctypes.util.find_library("sqlite3") or "libsqlite3.so.0")
        lib.sqlite3_memory_used.restype = ctypes.c_int64
        parts.append(f"SQLite heap {lib.sqlite3_memory_used() / 1024:.0f} kB")
    except (OSError, AttributeError):
        parts.append("SQLite heap unknown")
    mallinfo2 = getattr(_LIBC, "mallinfo2", None)
    if mallinfo2 is None:
        parts.append("malloc totals unknown")
    else:
        mallinfo2.restype = _MallInfo2
        info = mallinfo2()
        parts.append(f"malloc in use {info.uordblks / 1024:.0f} kB, free in arenas {info.fordblks / 1024:.0f} kB, "
                     f"mmapped {info.hblkhd / 1024:.0f} kB")
    return "; ".join(parts)
