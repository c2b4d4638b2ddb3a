"""Live updates for the console: a small fan-out hub and its server-sent-events stream.

Publishers (the call controllers, the operators' desk) call `publish(kind, data)`; each
open stream gets every message in order. A slow or gone browser never slows a call: its
queue is bounded and it is dropped (it reconnects, as EventSource does by itself).
When several nodes share a PostgreSQL store, `relay` also hands each message to the
other nodes (ari_app.store.notify), whose messages come in through `deliver`.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from typing import Any

from aiohttp import web

log = logging.getLogger(__name__)

QUEUE_LIMIT = 200
KEEPALIVE_S = 15.0


# What a live message becomes for one page: itself, less, or nothing (None).
Shape = Callable[[str, dict[str, Any]], dict[str, Any] | None]


def keeping(keep: Callable[[str, dict[str, Any]], bool]) -> Shape:
    """A shape that passes whole the messages `keep` keeps and drops the others."""
    return lambda kind, data: data if keep(kind, data) else None


class Hub:
    def __init__(self) -> None:
        self._queues: set[asyncio.Queue[tuple[str, dict[str, Any]] | None]] = set()
        # Set when other nodes share the store: each message published here goes to them too.
        self.relay: Callable[[str, dict[str, Any]], None] | None = None
        self.relayed: frozenset[str] = frozenset()  # the kinds the relay carries

    @property
    def listeners(self) -> int:
        return len(self._queues)

    def hears(self, kind: str) -> bool:
        """Someone may hear a message of `kind` now: an open stream here, or other nodes
        (the relay carries that kind). A publisher whose message costs work to build
        skips it when no one does."""
        return bool(self._queues) or (self.relay is not None and kind in self.relayed)

    def publish(self, kind: str, data: dict[str, Any]) -> None:
        """A message from this node: to its open streams, and to the other nodes."""
        self.deliver(kind, data)
        if self.relay is not None:
            self.relay(kind, data)

    def deliver(self, kind: str, data: dict[str, Any]) -> None:
        """A message to this node's open streams only (one from another node arrives here)."""
        for queue in list(self._queues):
            try:
                queue.put_nowait((kind, data))
            except asyncio.QueueFull:
                log.warning("a console stream fell behind; closing it (the page reconnects)")
                self._queues.discard(queue)
                while not queue.empty():
                    queue.get_nowait()
                queue.put_nowait(None)

    async def stream(self, request: web.Request, shape: Shape | None = None) -> web.StreamResponse:
        """`text/event-stream`: one `event: <kind>` with JSON `data:` per message; `shape`, when
        given, cuts a message or drops it (None) for this page: an agency's page sees only its
        own incidents (`keeping`), a regency's console only its regency's (web/scope.py)."""
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        await response.prepare(request)
        queue: asyncio.Queue[tuple[str, dict[str, Any]] | None] = asyncio.Queue(QUEUE_LIMIT)
        self._queues.add(queue)
        try:
            await response.write(b"event: hello\ndata: {}\n\n")
            while True:
                try:
                    item = await asyncio.wait_for(queue.get(), KEEPALIVE_S)
                except TimeoutError:
                    await response.write(b": keepalive\n\n")
                    continue
                if item is None:
                    break
                kind, data = item
                shaped = shape(kind, data) if shape is not None else data
                if shaped is None:
                    continue
                data = shaped
                await response.write(f"event: {kind}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n".encode())
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            self._queues.discard(queue)
        return response
