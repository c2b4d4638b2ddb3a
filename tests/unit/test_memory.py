"""Memory the app frees is handed back: malloc_trim after scattered frees, once per quiet spell."""

from __future__ import annotations

import asyncio
import sys

import pytest

from ari_app import memory
from tests.support.poll import eventually


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc_trim and /proc")
def test_trim_gives_back_memory_that_scattered_frees_left_in_mallocs_arenas() -> None:
    # Start from a trimmed heap: free memory that earlier tests in this worker left in
    # malloc's arenas would take the new blocks without the resident set growing.
    memory.trim()
    before = memory.rss_kb()
    blocks = [bytes(1500) + bytes([i % 256]) for i in range(40_000)]  # beyond pymalloc: glibc's heap
    grown = memory.rss_kb() - before
    kept = blocks[::50]  # one block in fifty stays: the heap cannot shrink from its top
    del blocks
    after_free = memory.rss_kb()
    assert memory.trim()
    after_trim = memory.rss_kb()
    assert grown > 40_000
    assert after_free - after_trim > grown // 2, (grown, after_free, after_trim)
    assert len(kept) == 800


def test_a_trim_is_due_once_after_calls_ended_and_only_with_no_call_in_hand() -> None:
    calls = {"in_hand": 0}
    quiet = memory.QuietTrim(lambda: calls["in_hand"] > 0, quiet_s=0.0)
    assert not quiet.due()  # nothing ended yet: nothing to give back
    calls["in_hand"] = 1
    quiet.ended()
    assert not quiet.due()  # a call is still in hand
    calls["in_hand"] = 0
    assert quiet.due()


def test_a_trim_waits_for_the_quiet_spell_after_the_last_call() -> None:
    quiet = memory.QuietTrim(lambda: False, quiet_s=3600.0)
    quiet.ended()
    assert not quiet.due()


async def test_the_loop_trims_once_per_quiet_spell() -> None:
    quiet = memory.QuietTrim(lambda: False, quiet_s=0.01)
    task = asyncio.create_task(quiet.run())
    quiet.ended()
    await eventually(lambda: quiet.trims == 1)
    await asyncio.sleep(0.1)  # several more turns of the loop, with no call ended meanwhile
    assert quiet.trims == 1
    quiet.ended()
    await eventually(lambda: quiet.trims == 2)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert quiet.trims == 2


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallinfo2")
def test_the_memory_report_names_mallocs_totals() -> None:
    assert "malloc in use" in memory.native()
