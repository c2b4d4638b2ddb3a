"""A background task that works in rounds: one round, then a wait for a kick or for its
interval, for ever. A round that fails is logged by `failed` and the next comes all the
same: the texts' journal reader and the replies' outbox both keep going this way."""

from __future__ import annotations

import asyncio
import contextlib


class Rounds:
    task_name = "ivr112-rounds"

    def __init__(self, every_s: float) -> None:
        self.every_s = every_s
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def round(self) -> object:
        raise NotImplementedError

    def failed(self, exc: Exception) -> None:
        raise NotImplementedError

    def kick(self) -> None:
        """Do a round now (something to do was just announced)."""
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=self.task_name)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        while True:
            try:
                await self.round()
            except Exception as exc:  # loud, but the rounds go on
                self.failed(exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.every_s)
            self._wake.clear()
