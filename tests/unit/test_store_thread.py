"""The store's thread (ari_app/store/thread.py) runs what it is handed in order, hands a
waiting caller its result or its error, and survives a task that fails."""

from __future__ import annotations

import asyncio
import logging
import threading

import pytest

from ari_app.store.thread import StoreThread


async def test_tasks_run_in_the_order_handed_over_and_a_read_sees_every_write_before_it() -> None:
    thread = StoreThread("test-store")
    seen: list[int] = []
    try:
        for i in range(200):
            thread.put(lambda i=i: seen.append(i))
        assert await thread.run(lambda: list(seen)) == list(range(200))
        assert await thread.run(threading.current_thread) is not threading.current_thread()
    finally:
        thread.stop()


async def test_a_callers_error_is_raised_to_it_and_a_failed_task_does_not_stop_the_thread(caplog: pytest.LogCaptureFixture) -> None:
    thread = StoreThread("test-store")

    def broken() -> None:
        raise ZeroDivisionError("a bug")

    try:
        with pytest.raises(ZeroDivisionError):
            await thread.run(lambda: 1 // 0)
        with caplog.at_level(logging.ERROR, logger="ari_app.store.thread"):
            thread.put(broken)
            assert await thread.run(lambda: "still here") == "still here"
        assert "a task failed" in caplog.text
    finally:
        thread.stop()


async def test_a_caller_that_stops_waiting_leaves_its_task_to_run() -> None:
    thread = StoreThread("test-store")
    gate, ran = threading.Event(), threading.Event()
    try:
        waiting = asyncio.create_task(thread.run(lambda: gate.wait(10) and ran.set()))
        await asyncio.sleep(0)
        waiting.cancel()
        gate.set()
        assert await thread.run(ran.is_set)
    finally:
        thread.stop()


def test_stopping_runs_what_was_handed_over_first_and_refuses_more() -> None:
    thread = StoreThread("test-store")
    done: list[int] = []
    for i in range(50):
        thread.put(lambda i=i: done.append(i))
    thread.stop()
    assert done == list(range(50))
    with pytest.raises(RuntimeError, match="stopped"):
        thread.put(lambda: None)
