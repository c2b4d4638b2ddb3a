"""The store's own thread: one thread that runs what it is handed, one at a time, in the
order it was handed over (writes and reads alike, so a read sees every write before it).

A ThreadPoolExecutor of one worker did this before. Each `submit` built a
`concurrent.futures.Future` (a `threading.Condition` with it), and the worker released a
Python semaphore after each item: a twelfth of the event loop's CPU and as much of the
store thread's at the bench's IVR load (py-spy; docs/results.md). Here a hand-over is one
`queue.SimpleQueue.put` (C), and only a caller that waits gets a future, an asyncio one,
set from the thread with `call_soon_threadsafe`."""

from __future__ import annotations

import asyncio
import atexit
import logging
import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from ari_app.threads import name_os_thread

log = logging.getLogger(__name__)
T = TypeVar("T")


class StoreThread:
    def __init__(self, name: str) -> None:
        self.name = name
        self._queue: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._stopped = False

    def _start(self) -> threading.Thread:
        # A daemon, so that a store never closed cannot keep the process alive; what was
        # handed over is still run at the interpreter's exit (as the executor's workers did).
        thread = self._thread = threading.Thread(target=self._serve, name=self.name, daemon=True)
        thread.start()
        atexit.register(self.stop)
        return thread

    def _serve(self) -> None:
        name_os_thread(self.name)
        while (item := self._queue.get()) is not None:
            try:
                item()
            except Exception:  # a bug in what was handed over: said loudly, the thread goes on
                log.exception("store thread: a task failed")

    def put(self, fn: Callable[[], None]) -> None:
        """Run `fn` on the thread after everything handed over before it; nobody waits for it."""
        if self._stopped:
            raise RuntimeError("the store thread is stopped")
        if self._thread is None:
            self._start()
        self._queue.put(fn)

    async def run(self, fn: Callable[[], T]) -> T:
        """Run `fn` on the thread after everything handed over before it, and return what it
        returned (or raise what it raised)."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[T] = loop.create_future()

        def call() -> None:
            try:
                result = fn()
            except BaseException as exc:  # handed back to the caller, whatever it is
                loop.call_soon_threadsafe(_fail, done, exc)
            else:
                loop.call_soon_threadsafe(_settle, done, result)

        self.put(call)
        return await done

    def stop(self) -> None:
        """Run what was handed over, then end the thread (waits for it)."""
        self._stopped = True
        thread, self._thread = self._thread, None
        if thread is not None:
            atexit.unregister(self.stop)
            self._queue.put(None)
            thread.join()


def _settle(done: asyncio.Future[Any], result: Any) -> None:
    if not done.done():  # the caller may have stopped waiting (cancelled)
        done.set_result(result)


def _fail(done: asyncio.Future[Any], exc: BaseException) -> None:
    if not done.done():
        done.set_exception(exc)


def answer_later(loop: asyncio.AbstractEventLoop) -> tuple[asyncio.Future[Any], Callable[[Any], None]]:
    """A future for the event loop, and how the thread sets it (a result, or an exception)."""
    done: asyncio.Future[Any] = loop.create_future()

    def answer(result: Any) -> None:
        loop.call_soon_threadsafe(_fail if isinstance(result, BaseException) else _settle, done, result)

    return done, answer
