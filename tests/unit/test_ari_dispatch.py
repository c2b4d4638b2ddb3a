"""One worker per call: each call's events arrive in order, a slow or broken call
never holds up another, and a failure is reported so the call can go to the fallback."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from fake_ari import (
    APP,
    PASSWORD,
    USERNAME,
    FakeAri,
    dtmf,
    event_json,
    stasis_end,
    stasis_start,
)

from ari_app.ari.client import AriClient
from ari_app.ari.dispatch import ChannelConsumer, ChannelDispatcher
from ari_app.ari.event_parsing import parse_event
from ari_app.ari.events import (
    CHANNEL_DESTROYED,
    ChannelDtmfReceived,
    Event,
)
from tests.support.poll import eventually

DISPATCH_LOG = "ari_app.ari.dispatch"


def ev(data: dict[str, object]) -> Event:
    return parse_event(data)


def digits(events: list[Event]) -> list[str]:
    return [e.digit for e in events if isinstance(e, ChannelDtmfReceived)]


class Call:
    """A consumer that records its events; it can be told to fail or to stall."""

    def __init__(self, channel_id: str, calls: Calls) -> None:
        self.channel_id = channel_id
        self.events: list[Event] = []
        self._calls = calls

    async def handle(self, event: Event) -> None:
        # Yield a channel-dependent number of times so two calls' work interleaves.
        for _ in range(len(self.events) % 3 + 1):
            await asyncio.sleep(0)
        if isinstance(event, ChannelDtmfReceived):
            if event.digit in self._calls.fail_on:
                raise RuntimeError(f"cannot handle digit {event.digit}")
            if event.digit in self._calls.stall_on:
                await self._calls.release.wait()
        self.events.append(event)
        self._calls.handled.append((self.channel_id, self.index, event.type))

    @property
    def index(self) -> int:
        """0 for the channel's first consumer, 1 for the next, ..."""
        return self._calls.made[self.channel_id].index(self)


class Calls:
    """The consumer factory: remembers every Call it made, per channel."""

    def __init__(self) -> None:
        self.made: dict[str, list[Call]] = {}
        self.fail_on: set[str] = set()
        self.stall_on: set[str] = set()
        self.release = asyncio.Event()
        self.errors: list[tuple[str, Exception]] = []
        self.other: list[Event] = []
        # (channel id, consumer index, event type), in the order they were handled.
        self.handled: list[tuple[str, int, str]] = []

    def __call__(self, channel_id: str) -> ChannelConsumer:
        call = Call(channel_id, self)
        self.made.setdefault(channel_id, []).append(call)
        return call

    def events(self, channel_id: str, index: int = 0) -> list[Event]:
        calls = self.made.get(channel_id, [])
        return calls[index].events if len(calls) > index else []

    async def on_error(self, channel_id: str, exc: Exception) -> None:
        self.errors.append((channel_id, exc))

    async def on_other(self, event: Event) -> None:
        self.other.append(event)


@pytest.fixture
def calls() -> Calls:
    return Calls()


@pytest_asyncio.fixture
async def dispatcher(calls: Calls) -> AsyncIterator[ChannelDispatcher]:
    d = ChannelDispatcher(calls, on_error=calls.on_error, on_other=calls.on_other)
    yield d
    await d.close()


async def test_two_interleaved_calls_each_see_their_events_in_order(calls: Calls, dispatcher: ChannelDispatcher) -> None:
    for event in [stasis_start("a"), stasis_start("b")]:
        await dispatcher.dispatch(ev(event))
    for digit in "1234567890":
        await dispatcher.dispatch(ev(dtmf("a", digit)))
        await dispatcher.dispatch(ev(dtmf("b", digit)))
    assert sorted(dispatcher.active_channels()) == ["a", "b"]
    await dispatcher.dispatch(ev(stasis_end("a")))
    await dispatcher.dispatch(ev(stasis_end("b")))

    await eventually(
        lambda: len(calls.events("a")) == 12 and len(calls.events("b")) == 12,
        what="both calls to see all their events",
    )
    for channel in "ab":
        seen = calls.events(channel)
        assert digits(seen) == list("1234567890")
        assert [e.type for e in (seen[0], seen[-1])] == ["StasisStart", "StasisEnd"]
        assert {e.channel_id for e in seen} == {channel}
    assert dispatcher.active_channels() == []


async def test_a_stalled_call_does_not_hold_up_another(calls: Calls, dispatcher: ChannelDispatcher) -> None:
    calls.stall_on.add("9")
    await dispatcher.dispatch(ev(dtmf("slow", "9")))
    await dispatcher.dispatch(ev(dtmf("slow", "1")))
    await dispatcher.dispatch(ev(dtmf("fast", "1")))
    await dispatcher.dispatch(ev(dtmf("fast", "2")))

    await eventually(lambda: len(calls.events("fast")) == 2, what="the fast call")
    assert calls.events("slow") == []

    calls.release.set()
    await eventually(lambda: len(calls.events("slow")) == 2, what="the slow call")
    assert digits(calls.events("slow")) == ["9", "1"]


async def test_a_failing_consumer_is_reported_and_later_events_still_arrive(
    calls: Calls, dispatcher: ChannelDispatcher, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger=DISPATCH_LOG)
    calls.fail_on.add("3")
    for event in [stasis_start("c1"), dtmf("c1", "3"), dtmf("c1", "4")]:
        await dispatcher.dispatch(ev(event))

    await eventually(lambda: len(calls.events("c1")) == 2, what="the later digit")

    assert digits(calls.events("c1")) == ["4"]
    [(channel_id, error)] = calls.errors
    assert channel_id == "c1"
    assert str(error) == "cannot handle digit 3"
    assert "channel c1: handling ChannelDtmfReceived failed" in caplog.text
    assert dispatcher.active_channels() == ["c1"]


async def test_a_factory_failure_is_reported_and_the_worker_still_ends(dispatcher: ChannelDispatcher, calls: Calls) -> None:
    def broken_factory(channel_id: str) -> ChannelConsumer:
        raise LookupError(f"no plan for {channel_id}")

    broken = ChannelDispatcher(broken_factory, on_error=calls.on_error)
    try:
        await broken.dispatch(ev(stasis_start("c1")))
        await broken.dispatch(ev(stasis_end("c1")))
        await eventually(lambda: len(calls.errors) == 1, what="the factory error")
        assert broken.active_channels() == []
        assert isinstance(calls.errors[0][1], LookupError)
    finally:
        await broken.close()


async def test_events_about_no_channel_go_to_on_other(calls: Calls, dispatcher: ChannelDispatcher) -> None:
    replaced = ev({"type": "ApplicationReplaced", "application": APP})
    await dispatcher.dispatch(replaced)

    assert calls.other == [replaced]
    assert calls.made == {}


async def test_events_after_the_end_of_a_call_do_not_start_a_new_consumer(calls: Calls, dispatcher: ChannelDispatcher) -> None:
    await dispatcher.dispatch(ev(stasis_start("c1")))
    await dispatcher.dispatch(ev(stasis_end("c1")))
    destroyed = ev(event_json(CHANNEL_DESTROYED, "c1", cause=16))
    await dispatcher.dispatch(destroyed)

    await eventually(lambda: len(calls.events("c1")) == 2, what="the call to end")
    assert calls.other == [destroyed]
    assert len(calls.made["c1"]) == 1
    assert dispatcher.active_channels() == []


async def test_a_channel_coming_back_into_stasis_gets_a_new_consumer_after_the_old(
    calls: Calls, dispatcher: ChannelDispatcher
) -> None:
    calls.stall_on.add("9")
    await dispatcher.dispatch(ev(stasis_start("c1")))
    await dispatcher.dispatch(ev(dtmf("c1", "9")))  # the first consumer stalls here
    await dispatcher.dispatch(ev(stasis_end("c1")))
    await dispatcher.dispatch(ev(stasis_start("c1", "again")))
    await dispatcher.dispatch(ev(dtmf("c1", "1")))
    await eventually(lambda: len(calls.events("c1")) == 1, what="the first StasisStart")

    calls.release.set()
    await eventually(lambda: len(calls.events("c1", index=1)) == 2, what="the second consumer")
    # The second consumer did not start while the first still had events to handle.
    assert calls.handled == [
        ("c1", 0, "StasisStart"),
        ("c1", 0, "ChannelDtmfReceived"),
        ("c1", 0, "StasisEnd"),
        ("c1", 1, "StasisStart"),
        ("c1", 1, "ChannelDtmfReceived"),
    ]
    assert dispatcher.active_channels() == ["c1"]


async def test_close_cancels_every_worker(calls: Calls, dispatcher: ChannelDispatcher) -> None:
    calls.stall_on.add("9")
    await dispatcher.dispatch(ev(dtmf("c1", "9")))
    await dispatcher.dispatch(ev(dtmf("c2", "1")))
    await eventually(lambda: len(calls.events("c2")) == 1, what="c2's event")

    await dispatcher.close()

    assert dispatcher.active_channels() == []
    workers = [t for t in asyncio.all_tasks() if t.get_name().startswith("channel-")]
    assert workers == []
    await dispatcher.dispatch(ev(dtmf("c3", "1")))  # after close: dropped
    assert "c3" not in calls.made


async def test_events_from_the_websocket_reach_each_call_in_order(calls: Calls, dispatcher: ChannelDispatcher) -> None:
    fake = FakeAri()
    await fake.start()
    client = AriClient(
        base_url=fake.base_url,
        username=USERNAME,
        password=PASSWORD,
        app=APP,
        request_timeout=0.5,
        reconnect_min=0.01,
        reconnect_max=0.04,
    )
    run = asyncio.create_task(client.run(dispatcher.dispatch))
    try:
        await client.wait_connected(5.0)
        for channel in ["a", "b"]:
            await fake.send(stasis_start(channel))
        for digit in "12345":
            await fake.send(dtmf("a", digit))
            await fake.send(dtmf("b", digit))

        await eventually(
            lambda: len(calls.events("a")) == 6 and len(calls.events("b")) == 6,
            what="both calls' events",
        )
        assert digits(calls.events("a")) == digits(calls.events("b")) == list("12345")
    finally:
        await client.close()
        async with asyncio.timeout(5.0):
            await run
        await fake.stop()


async def test_an_event_after_the_end_waits_until_the_calls_worker_is_done(calls: Calls) -> None:
    """An app that fell behind reads a call's start, its end and the channel's destruction
    at once: the destruction (handled outside the worker) must not overtake the start."""
    seen_by_other: list[int] = []

    async def on_other(event: Event) -> None:
        seen_by_other.append(len(calls.events("c1")))

    dispatcher = ChannelDispatcher(calls, on_error=calls.on_error, on_other=on_other)
    try:
        calls.stall_on.add("9")
        await dispatcher.dispatch(ev(stasis_start("c1")))
        await dispatcher.dispatch(ev(dtmf("c1", "9")))  # the worker stalls here
        await dispatcher.dispatch(ev(stasis_end("c1")))
        await dispatcher.dispatch(ev(event_json(CHANNEL_DESTROYED, "c1", cause=16)))
        assert dispatcher.pending("c1")
        for _ in range(20):
            await asyncio.sleep(0)
        assert seen_by_other == []  # still behind the stalled worker

        calls.release.set()
        await dispatcher.drained("c1")
        assert seen_by_other == [3]  # StasisStart, the digit and StasisEnd came first
        assert not dispatcher.pending("c1")
    finally:
        await dispatcher.close()
