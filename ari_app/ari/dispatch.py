"""Hands ARI events to one consumer per channel, in the order Asterisk sent them.

Each channel gets a queue served by its own task, so a slow call never holds up
another and a call's events never overtake each other. A worker ends with the
channel's StasisEnd or ChannelDestroyed; events after that (a ChannelDestroyed after
StasisEnd) go to `on_other`, once the worker is done. `close()` cancels whatever is left.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Protocol

from ari_app.ari.events import ChannelDestroyed, StasisEnd, StasisStart

_log = logging.getLogger(__name__)


class Routable(Protocol):
    """Anything dispatched: ARI events, and the app's own events about a channel (timers)."""

    @property
    def type(self) -> str: ...

    @property
    def channel_id(self) -> str | None: ...


Event = Routable


class ChannelConsumer(Protocol):
    """Whatever handles one channel's events (the app's call controller)."""

    async def handle(self, event: Event) -> None:
        """Act on one event; exceptions are logged and reported through on_error."""


ConsumerFactory = Callable[[str], ChannelConsumer]
OtherHandler = Callable[[Event], Awaitable[None]]
ErrorHandler = Callable[[str, Exception], Awaitable[None]]

# How many ended channels to remember, so that stragglers (a ChannelDestroyed after
# StasisEnd) do not start a new consumer for a call that is over.
DEFAULT_REMEMBER_ENDED = 1024


def _is_final(event: Event) -> bool:
    return isinstance(event, (StasisEnd, ChannelDestroyed))


class ChannelDispatcher:
    """Routes each event to its channel's worker; events without a channel to `on_other`."""

    def __init__(
        self,
        factory: ConsumerFactory,
        *,
        on_error: ErrorHandler | None = None,
        on_other: OtherHandler | None = None,
        remember_ended: int = DEFAULT_REMEMBER_ENDED,
    ) -> None:
        """`factory(channel_id)` makes the consumer for a channel's first event.

        `on_error(channel_id, exc)` hears of every exception a consumer raised (the app
        sends that call to its fallback). `on_other(event)` gets events about no
        channel, and events for a channel whose worker has already ended.
        """
        self._factory = factory
        self._on_error = on_error
        self._on_other = on_other
        self._remember_ended = remember_ended
        self._queues: dict[str, asyncio.Queue[Event]] = {}
        # The newest worker per channel, kept until it ends, so that a channel coming
        # back into Stasis waits for its previous worker to finish first.
        self._tails: dict[str, asyncio.Task[None]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._ended: OrderedDict[str, None] = OrderedDict()
        self._closed = False

    def active_channels(self) -> list[str]:
        """Return the ids of channels whose worker still takes events."""
        return list(self._queues)

    async def dispatch(self, event: Event) -> None:
        """Queue `event` for its channel's worker (starting one if needed); quick."""
        if self._closed:
            _log.debug("channel %s: %s after close, dropped", event.channel_id, event.type)
            return
        channel_id = event.channel_id
        if channel_id is None:
            await self._other(event)
            return
        queue = self._queues.get(channel_id)
        if queue is None:
            if channel_id in self._ended and not isinstance(event, StasisStart):
                tail = self._tails.get(channel_id)
                if tail is None:
                    await self._other(event)
                else:
                    self._after(channel_id, tail, event)
                return
            self._ended.pop(channel_id, None)
            queue = self._start(channel_id)
        queue.put_nowait(event)
        if _is_final(event):
            # Decided here rather than in the worker, so later events for this
            # channel are routed as stragglers at once, not queued behind the end.
            del self._queues[channel_id]
            self._ended[channel_id] = None
            while len(self._ended) > self._remember_ended:
                self._ended.popitem(last=False)

    async def close(self) -> None:
        """Cancel every worker and wait for them to end."""
        self._closed = True
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        # Cancelled workers end at their next await; nothing in them shields it.
        await asyncio.gather(*tasks, return_exceptions=True)
        self._queues.clear()
        self._tails.clear()

    def _start(self, channel_id: str) -> asyncio.Queue[Event]:
        queue: asyncio.Queue[Event] = asyncio.Queue()
        previous = self._tails.get(channel_id)
        task = asyncio.create_task(self._work(channel_id, queue, previous), name=f"channel-{channel_id}")
        self._queues[channel_id] = queue
        self._tails[channel_id] = task
        self._tasks.add(task)
        task.add_done_callback(lambda done: self._forget(channel_id, done))
        return queue

    def pending(self, channel_id: str) -> bool:
        """Whether events of this channel are still being handled or wait for their turn."""
        return channel_id in self._tails

    async def drained(self, channel_id: str) -> None:
        """Return once every event of this channel dispatched so far has been handled."""
        tail = self._tails.get(channel_id)
        while tail is not None and not tail.done():
            await asyncio.wait({tail})
            tail = self._tails.get(channel_id)

    def _after(self, channel_id: str, previous: asyncio.Task[None], event: Event) -> None:
        """A straggler (after StasisEnd) while the channel's worker is still busy: `on_other`
        hears it once that worker is done, so the call's end never overtakes its start.

        An app that fell behind (a stalled process, a starved CPU) reads a caller's
        StasisStart, StasisEnd and ChannelDestroyed all at once; handled at once, the end
        found no incident yet and the incident then stayed open for ever.
        """
        task = asyncio.create_task(self._late(previous, event), name=f"channel-{channel_id}-late")
        self._tails[channel_id] = task
        self._tasks.add(task)
        task.add_done_callback(lambda done: self._forget(channel_id, done))

    async def _late(self, previous: asyncio.Task[None], event: Event) -> None:
        await asyncio.wait({previous})
        await self._other(event)

    def _forget(self, channel_id: str, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if self._tails.get(channel_id) is task:
            del self._tails[channel_id]

    async def _work(
        self,
        channel_id: str,
        queue: asyncio.Queue[Event],
        previous: asyncio.Task[None] | None,
    ) -> None:
        if previous is not None:
            # Bounded: the previous worker only has its already-queued events left.
            await asyncio.wait({previous})
        try:
            consumer: ChannelConsumer | None = self._factory(channel_id)
        except Exception as exc:  # report it; the call needs its fallback
            consumer = None
            await self._failed(channel_id, "creating its consumer", exc)
        while True:
            # No timeout: an idle call simply has no events; close() cancels this.
            event = await queue.get()
            if consumer is not None:
                try:
                    await consumer.handle(event)
                except Exception as exc:  # later events still matter
                    await self._failed(channel_id, f"handling {event.type}", exc)
            if _is_final(event):
                return

    async def _failed(self, channel_id: str, doing: str, exc: Exception) -> None:
        _log.error("channel %s: %s failed", channel_id, doing, exc_info=exc)
        if self._on_error is None:
            return
        try:
            await self._on_error(channel_id, exc)
        except Exception:  # the worker must go on serving events
            _log.exception("channel %s: the on_error handler failed too", channel_id)

    async def _other(self, event: Event) -> None:
        if self._on_other is None:
            _log.debug("channel %s: unrouted %s", event.channel_id, event.type)
            return
        try:
            await self._on_other(event)
        except Exception:  # one bad event must not stop dispatching
            _log.exception(
                "channel %s: handling %s outside a channel worker failed",
                event.channel_id,
                event.type,
            )
