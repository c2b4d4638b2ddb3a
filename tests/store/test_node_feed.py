"""The live feed between app nodes on one PostgreSQL store (LISTEN/NOTIFY): each node's
messages reach the others' hubs, never its own twice; a long message goes without its
detail; a server stopped and started again is reconnected to by itself."""

from __future__ import annotations

import itertools
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from ari_app.live import Hub
from ari_app.service import RELAYED
from ari_app.store.engine import libpq_url
from ari_app.store.notify import PAYLOAD_MAX, NodeFeed
from tests import pg
from tests.support.poll import eventually

_names = itertools.count(1)
Heard = list[tuple[str, dict[str, Any]]]


@pytest.fixture(scope="module")
def server() -> Iterator[pg.PostgresServer]:
    """A server of this module's own, since a test stops it."""
    with pg.running() as s:
        yield s


class HeardHub(Hub):
    """A hub that keeps what its consoles' streams would be pushed."""

    def __init__(self) -> None:
        super().__init__()
        self.heard: Heard = []

    def deliver(self, kind: str, data: dict[str, Any]) -> None:
        self.heard.append((kind, data))


class Node:
    """A node as the service wires it: a hub whose messages go out through the feed."""

    def __init__(self, url: str, name: str, *, unnamed: bool = False) -> None:
        self.hub = HeardHub()
        self.heard = self.hub.heard
        conninfo = libpq_url(url)
        assert conninfo is not None
        self.feed = NodeFeed(conninfo, node=name, retry_s=0.1, unnamed=unnamed)
        self.feed.carry(self.hub, RELAYED)
        self.faults = 0
        self.feed.on_fault = self._fault

    def _fault(self) -> None:
        self.faults += 1


@pytest.fixture
async def nodes(server: pg.PostgresServer) -> AsyncIterator[tuple[Node, Node]]:
    url = server.create_database(f"feed{next(_names)}")
    a, b = Node(url, "a"), Node(url, "b")
    a.feed.start()
    b.feed.start()
    await eventually(lambda: a.feed.listening and b.feed.listening, what="both nodes listening")
    yield a, b
    await a.feed.close()
    await b.feed.close()


async def test_a_message_of_one_node_reaches_the_other_once_and_in_order(nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    for i in range(50):
        a.hub.publish("incident", {"id": i, "kind": "talking", "detail": {"prompt": "menu"}})
    a.hub.publish("wall", {"in_ivr": 3})  # what this node's own Asterisk holds: stays here
    await eventually(lambda: len(b.heard) >= 50, what="the other node to hear 50 messages")
    assert [data["id"] for _, data in b.heard] == list(range(50))
    assert b.heard[0] == ("incident", {"id": 0, "kind": "talking", "detail": {"prompt": "menu"}})
    b.hub.publish("incident", {"id": 99, "kind": "answered", "detail": {}})
    await eventually(lambda: ("incident", {"id": 99, "kind": "answered", "detail": {}}) in a.heard, what="the reply")
    # Each node heard its own messages once (from its own hub) and the other's once.
    assert [d["id"] for k, d in a.heard if k == "incident"] == [*range(50), 99]
    assert ("wall", {"in_ivr": 3}) in a.heard and all(k == "incident" for k, _ in b.heard)


async def test_a_text_with_control_characters_and_any_script_arrives_whole(nodes: tuple[Node, Node]) -> None:
    # The batch travels as one text split at U+001E by the server: a message holding one
    # (a texted SMS may hold anything) must still arrive as it was, and so must its neighbours.
    a, b = nodes
    texts = ["tolong\x1ebantu\nsegera", "kebakaran — Jl. Tjilik Riwut \u2603", "\x00\x1f\\\"'"]
    for i, text in enumerate(texts):
        a.hub.publish("incident", {"id": i, "kind": "text", "detail": {"text": text}})
    await eventually(lambda: len(b.heard) >= len(texts), what="the other node to hear the texts")
    assert [data["detail"]["text"] for _, data in b.heard] == texts


async def test_a_node_without_node_name_says_so_once_it_hears_another(server: pg.PostgresServer,
                                                                     caplog: pytest.LogCaptureFixture) -> None:
    url = server.create_database(f"feed{next(_names)}")
    lonely, other = Node(url, "lonely", unnamed=True), Node(url, "other")
    lonely.feed.start()
    other.feed.start()
    try:
        await eventually(lambda: lonely.feed.listening and other.feed.listening, what="both listening")
        assert "node_name" not in caplog.text  # alone on the store: nothing to say
        for i in range(2):
            other.hub.publish("incident", {"id": i, "kind": "prompt", "detail": {}})
        await eventually(lambda: len(lonely.heard) == 2, what="the other node's messages")
        said = [r for r in caplog.records if "has no node_name" in r.getMessage()]
        assert len(said) == 1 and said[0].levelname == "ERROR" and "(other)" in said[0].getMessage()
    finally:
        await lonely.feed.close()
        await other.feed.close()


async def test_a_message_too_long_for_notify_arrives_without_its_detail(nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    a.hub.publish("incident", {"id": 7, "kind": "text", "detail": {"body": "x" * PAYLOAD_MAX}})
    heard = await eventually(lambda: [d for _, d in b.heard if d["id"] == 7], what="the long message")
    assert heard == [{"id": 7, "kind": "text", "trimmed": True}]
    assert len(json.dumps(a.heard[-1][1])) > PAYLOAD_MAX  # its own consoles got it whole


async def test_the_feed_reconnects_after_the_server_was_stopped_and_started(nodes: tuple[Node, Node], server: pg.PostgresServer) -> None:
    a, b = nodes
    a.hub.publish("incident", {"id": 0, "kind": "prompt", "detail": {}})  # the sender's connection is up
    await eventually(lambda: b.heard, what="a message before the stop")
    b.heard.clear()
    server.stop()
    try:
        await eventually(lambda: not b.feed.listening, what="the listener to notice", within_s=20)
        assert b.feed.health.startswith("failing: listen:") and b.faults >= 1  # counted on /metrics
    finally:
        server.start()
    await eventually(lambda: a.feed.listening and b.feed.listening, what="both listening again", within_s=20)
    assert b.faults == 1  # one break, however many retries it took
    a.hub.publish("incident", {"id": 1, "kind": "route", "detail": {}})
    await eventually(lambda: len(b.heard) >= 2, what="a message after the restart", within_s=20)
    # The pages are told to read again (what came meanwhile was missed); then the message,
    # sent on a connection made again (the one from before the stop was broken), not dropped.
    assert b.heard == [("resync", {}), ("incident", {"id": 1, "kind": "route", "detail": {}})] and a.feed.dropped == 0
    assert a.feed.health == b.feed.health == "ok"
