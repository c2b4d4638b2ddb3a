"""Live updates between app nodes that share one PostgreSQL store (LISTEN/NOTIFY).

Each node's console stream (`ari_app.live.Hub`) hears what happens on that node. When
several nodes share a store, a console served by node A must also hear of a call that
node B answered. `NodeFeed` carries those messages over PostgreSQL's own channel
`ivr112_live`:

- `send(kind, data)` (sync, never blocks a call) queues a message; a sender task waits
  until the store's writer has taken every write handed over before it (so a node told
  of a change can read it), then sends the queued batch as NOTIFYs in one statement on a
  connection of its own;
- a listener task keeps a connection of its own in `LISTEN ivr112_live`, and hands each
  message from another node to the handler subscribed to its kind (`subscribe`: the
  local hub for "incident", the console's sessions for "session"), never back to the
  channel;
- either connection that fails (server stopped, restarted, unreachable) is made again
  every `retry_s`, with an ERROR line when it breaks and a WARNING when it is back. A
  message that cannot be sent meanwhile is dropped (counted): the record itself is the
  store's, kept by its writer; only the push to other nodes' pages is lost. When the
  listener is back, the node's pages are told to read everything again (`resync`), so
  what they missed while it was away shows.

On SQLite (one node) there is no feed: nothing changes.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
from collections.abc import Awaitable, Callable, Collection
from typing import Any

import psycopg
from psycopg.conninfo import make_conninfo

from ari_app.live import Hub
from ari_app.store.engine import CONNECT_TIMEOUT_S

log = logging.getLogger(__name__)

CHANNEL = "ivr112_live"
# The hub message that tells a node's pages to read what they show again (console.js).
RESYNC = "resync"
# PostgreSQL refuses a NOTIFY payload of 8000 bytes or more; a longer message goes without its detail.
PAYLOAD_MAX = 7900
OUTBOX_MAX = 10_000
BATCH_MAX = 200
# The sender waits this long after a message for more before it sends: one NOTIFY round trip
# (and one wait for the store's writer) serves every message of every call meanwhile. Sent
# one by one, they cost a tenth of the event loop's CPU at 20 new calls/s, and with 50 ms of
# wait still a tenth on PostgreSQL (1.6 sends per IVR call); with 250 ms, at most four a
# second whatever the load. Still well inside the second a console may take to hear of
# another node's call.
LINGER_S = 0.25
RETRY_S = 1.0
# TCP keepalives, so that a server gone without a word (a cable, a crashed host) is noticed in ~25 s.
_KEEPALIVE = {"keepalives": 1, "keepalives_idle": 10, "keepalives_interval": 5, "keepalives_count": 3}

Handler = Callable[[str, dict[str, Any]], None]


class NodeFeed:
    def __init__(self, conninfo: str, *, node: str, settle: Callable[[], Awaitable[None]] | None = None,
                 retry_s: float = RETRY_S, unnamed: bool = False, linger_s: float = LINGER_S) -> None:
        """`conninfo`: a libpq URL of the store; `node`: this node's unique name; `settle`:
        waits for the store's writer to have taken the writes handed over so far;
        `unnamed`: this node has no `node_name` (said loudly once another node is heard)."""
        self._conninfo = conninfo
        self.node = node
        self._unnamed = unnamed
        self._handlers: dict[str, Handler] = {}
        self._settle = settle
        self._retry_s = retry_s
        self._linger_s = linger_s
        # How this node's own messages begin (see _payload): the listener skips them unread.
        self._own = json.dumps({"node": node}, ensure_ascii=False)[:-1] + ","
        self._outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue(OUTBOX_MAX)
        self._seq = itertools.count(1)
        self._tasks: list[asyncio.Task[None]] = []
        self._sender: psycopg.AsyncConnection[Any] | None = None
        self.listening = False
        self.sent = self.received = self.dropped = 0
        self._failing = {"listen": "", "send": ""}
        # Called each time a connection breaks (a metrics counter, say), and when the
        # listener is back after a break (what came meanwhile was missed).
        self.on_fault: Callable[[], None] | None = None
        self.on_back: Callable[[], None] | None = None

    @property
    def health(self) -> str:
        """"ok", or what fails (for /health)."""
        failing = [f"{what}: {why}" for what, why in self._failing.items() if why]
        if not failing and not self.listening:
            return "connecting"
        return "failing: " + "; ".join(failing) if failing else "ok"

    # The node's own messages, out -----------------------------------------------------------

    def subscribe(self, kind: str, handler: Handler) -> None:
        """Messages of `kind` from the other nodes go to `handler(kind, data)`; others are ignored."""
        self._handlers[kind] = handler

    def carry(self, hub: Hub, kinds: Collection[str]) -> None:
        """Join a node's live hub: its messages of `kinds` go to the other nodes, theirs of
        those kinds to its streams (and not out again)."""
        carried = frozenset(kinds)

        def relay(kind: str, data: dict[str, Any]) -> None:
            if kind in carried:
                self.send(kind, data)

        hub.relay = relay
        hub.relayed = carried
        for kind in carried:
            self.subscribe(kind, hub.deliver)
        # Messages sent while the listener was away are lost: its pages read everything again.
        self.on_back = lambda: hub.deliver(RESYNC, {})

    def send(self, kind: str, data: dict[str, Any]) -> None:
        """Queue a message for the other nodes."""
        try:
            self._outbox.put_nowait({"node": self.node, "seq": next(self._seq), "kind": kind, "data": data})
        except asyncio.QueueFull:
            self.dropped += 1
            if self.dropped % 1000 == 1:
                log.error("node feed: %d messages for other nodes waiting; dropping (%d so far)", OUTBOX_MAX, self.dropped)

    async def _send_loop(self) -> None:
        try:
            while True:
                batch = [await self._outbox.get()]
                await asyncio.sleep(self._linger_s)
                while not self._outbox.empty() and len(batch) < BATCH_MAX:
                    batch.append(self._outbox.get_nowait())
                try:
                    if self._settle is not None:
                        await self._settle()
                    sent = await self._notify([_payload(m) for m in batch])
                except Exception:  # a bug: said loudly, the batch dropped, the sender goes on
                    log.exception("node feed: %d live messages for other nodes could not be sent", len(batch))
                    self.dropped += len(batch)
                    sent = False
                if not sent:
                    await asyncio.sleep(self._retry_s)
        finally:
            await self._close_sender()

    async def _notify(self, payloads: list[str]) -> bool:
        """Send the batch; a connection found broken (the server restarted since) is made
        again once before the batch is dropped. False when it was dropped."""
        fresh = self._sender is None or self._sender.closed
        for _ in range(2):
            try:
                if self._sender is None or self._sender.closed:
                    self._sender, fresh = await self._connect(), True
                # One round trip for the batch; unnest yields the messages in their order. They
                # go as one text split by the server at a character JSON always escapes
                # (RS, U+001E): as a text[] parameter, psycopg's array quoting of each message
                # was four fifths of the sender's CPU.
                await self._sender.execute("SELECT pg_notify(%s, p) FROM unnest(string_to_array(%s, chr(30))) AS p",
                                           (CHANNEL, _SEPARATOR.join(payloads)))
            except (psycopg.Error, OSError) as exc:
                await self._close_sender()
                if fresh:
                    self.dropped += len(payloads)
                    self._broke("send", exc, f"{len(payloads)} live messages for other nodes dropped")
                    return False
                continue
            self.sent += len(payloads)
            self._mended("send")
            return True
        return False

    async def _close_sender(self) -> None:
        conn, self._sender = self._sender, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.close()

    # The other nodes' messages, in -------------------------------------------------------

    async def _listen_loop(self) -> None:
        while True:
            try:
                async with await self._connect() as conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    self.listening = True
                    self._mended("listen")
                    async for notify in conn.notifies():
                        self._received(notify.payload)
            except (psycopg.Error, OSError) as exc:
                self._broke("listen", exc, "consoles here do not hear of other nodes' calls until it is back")
            except Exception as exc:  # a bug: said loudly, and the listener goes on
                log.exception("node feed: the listener failed")
                self._broke("listen", exc, "consoles here do not hear of other nodes' calls until it is back")
            finally:
                self.listening = False
            await asyncio.sleep(self._retry_s)

    def _received(self, payload: str) -> None:
        if payload.startswith(self._own):  # this node's own, back from the channel
            return
        try:
            message = json.loads(payload)
            node, kind, data = message["node"], message["kind"], message["data"]
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("node feed: unreadable message on %s ignored (%r): %.200s", CHANNEL, exc, payload)
            return
        handler = self._handlers.get(kind) if isinstance(kind, str) else None
        if node == self.node or handler is None or not isinstance(data, dict):
            return
        self.received += 1
        if self._unnamed:
            self._unnamed = False
            log.error("another app node (%s) shares this store, and this node has no node_name: the channel ids of two "
                      "Asterisks started in the same second are the same, and two calls would share one incident; "
                      "give every node its own node_name (docs/store.md)", node)
        try:
            handler(kind, data)
        except Exception:  # a bad message must not end the listener
            log.exception("node feed: a %r message from node %s could not be handled", kind, node)

    # Life cycle --------------------------------------------------------------------------

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._listen_loop(), name="ivr112-node-feed-listen"),
                       asyncio.create_task(self._send_loop(), name="ivr112-node-feed-send")]

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    async def _connect(self) -> psycopg.AsyncConnection[Any]:
        return await psycopg.AsyncConnection.connect(
            make_conninfo(self._conninfo, connect_timeout=CONNECT_TIMEOUT_S, application_name=f"ivr112 feed {self.node}"[:63],
                          **_KEEPALIVE), autocommit=True)

    def _broke(self, what: str, exc: BaseException, consequence: str) -> None:
        why = str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
        if self.on_fault is not None and not self._failing[what]:
            self.on_fault()  # once per break, not per retry
        if self._failing[what] != why:
            log.error("node feed: %s connection to the store failed (%s); %s; retried every %g s",
                      what, why, consequence, self._retry_s)
        self._failing[what] = why

    def _mended(self, what: str) -> None:
        if self._failing[what]:
            log.warning("node feed: %s connection back (was failing: %s)", what, self._failing[what])
            self._failing[what] = ""
            if what == "listen" and self.on_back is not None:
                self.on_back()


_SEPARATOR = "\x1e"  # json.dumps writes every control character escaped: never inside a payload


def _payload(message: dict[str, Any]) -> str:
    text = json.dumps(message, ensure_ascii=False)
    if len(text.encode()) < PAYLOAD_MAX:
        return text
    # Pages use a message's kind and incident id to know what to read again: keep those.
    data = message["data"]
    short = {k: data[k] for k in ("id", "kind") if k in data}
    return json.dumps({**message, "data": {**short, "trimmed": True}}, ensure_ascii=False)
