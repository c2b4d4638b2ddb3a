"""The ARI client against a fake Asterisk on loopback: REST errors people can act on,
and an event WebSocket that survives Asterisk going away and coming back."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
import pytest_asyncio
from fake_ari import (
    APP,
    PASSWORD,
    USERNAME,
    FakeAri,
    dtmf,
    free_port,
    stasis_start,
)

from ari_app.ari.client import AriClient, Backoff
from ari_app.ari.errors import (
    AriConflict,
    AriError,
    AriNotFound,
    AriServerError,
    AriUnavailable,
    AriUnprocessable,
)
from ari_app.ari.events import (
    APPLICATION_REPLACED,
    ChannelDtmfReceived,
    Event,
    StasisStart,
)
from tests.support.poll import eventually

REQUEST_TIMEOUT_S = 0.5
RECONNECT_MIN_S = 0.01
RECONNECT_MAX_S = 0.04
RUN_STOP_TIMEOUT_S = 5.0
CLIENT_LOG = "ari_app.ari.client"


def make_client(base_url: str, *, password: str = PASSWORD, heartbeat: float | None = None) -> AriClient:
    return AriClient(
        base_url=base_url,
        username=USERNAME,
        password=password,
        app=APP,
        request_timeout=REQUEST_TIMEOUT_S,
        reconnect_min=RECONNECT_MIN_S,
        reconnect_max=RECONNECT_MAX_S,
        heartbeat=heartbeat,
    )


@pytest_asyncio.fixture
async def fake() -> AsyncIterator[FakeAri]:
    server = FakeAri()
    await server.start()
    yield server
    await server.stop()


@pytest_asyncio.fixture
async def client(fake: FakeAri) -> AsyncIterator[AriClient]:
    ari = make_client(fake.base_url)
    yield ari
    await ari.close()


class Recorder:
    """An event handler and resync hook that remember what they were given."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.connects = 0

    async def handle(self, event: Event) -> None:
        self.events.append(event)

    async def on_connect(self) -> None:
        self.connects += 1


async def start_run(
    ari: AriClient,
    handler: Callable[[Event], Awaitable[None]],
    on_connect: Callable[[], Awaitable[None]] | None = None,
) -> asyncio.Task[None]:
    return asyncio.create_task(ari.run(handler, on_connect))


def ari_app_tasks() -> list[asyncio.Task[object]]:
    """Tasks running code of ari_app (the fake server's own tasks do not count)."""
    found = []
    for task in asyncio.all_tasks():
        code = getattr(task.get_coro(), "cr_code", None)
        if task is not asyncio.current_task() and code and "ari_app" in code.co_filename:
            found.append(task)
    return found


async def stop_run(ari: AriClient, task: asyncio.Task[None]) -> None:
    await ari.close()
    async with asyncio.timeout(RUN_STOP_TIMEOUT_S):
        await task


# -- REST --------------------------------------------------------------------


async def test_a_request_carries_basic_auth_and_returns_the_json(fake: FakeAri, client: AriClient) -> None:
    fake.respond("GET", "/asterisk/ping", 200, {"ping": "pong", "asterisk_id": "x"})

    assert await client.ping() == {"ping": "pong", "asterisk_id": "x"}

    [request] = fake.requests_to("GET", "/asterisk/ping")
    assert request.authorization == "Basic aXZyOnMzY3JldA=="  # base64 of "ivr:s3cret"


async def test_answering_a_channel_returns_nothing_on_204(fake: FakeAri, client: AriClient) -> None:
    fake.respond("POST", "/channels/123/answer", 204)

    await client.answer("123")
    assert len(fake.requests_to("POST", "/channels/123/answer")) == 1


@pytest.mark.parametrize(
    ("status", "message", "error_class"),
    [
        (404, "Channel not found", AriNotFound),
        (409, "Channel not in Stasis application", AriConflict),
        (422, "Endpoint not found", AriUnprocessable),
        (500, "Internal Server Error", AriServerError),
        (503, "Service Unavailable", AriServerError),
        (400, "Bad request", AriError),
    ],
)
async def test_a_refused_request_raises_an_error_naming_request_and_channel(
    fake: FakeAri,
    client: AriClient,
    status: int,
    message: str,
    error_class: type[AriError],
) -> None:
    fake.respond("POST", "/channels/123/answer", status, {"message": message})

    with pytest.raises(error_class) as caught:
        await client.answer("123")

    error = caught.value
    assert type(error) is error_class
    assert (error.method, error.path, error.status) == (
        "POST",
        "/channels/123/answer",
        status,
    )
    assert error.reason == message
    assert error.channel_id == "123"
    assert str(error) == (f"ARI POST /channels/123/answer for channel 123: {status} {message}")


async def test_a_non_json_error_body_becomes_the_reason(fake: FakeAri, client: AriClient) -> None:
    fake.respond("GET", "/channels/9", 500, "something broke")

    with pytest.raises(AriServerError, match="500 something broke"):
        await client.get_channel("9")


async def test_wrong_credentials_say_what_to_check(fake: FakeAri) -> None:
    ari = make_client(fake.base_url, password="wrong")
    try:
        with pytest.raises(AriError, match=r"401 Authentication required.*ari\.conf"):
            await ari.ping()
    finally:
        await ari.close()


async def test_connection_refused_is_unavailable_and_names_the_channel() -> None:
    ari = make_client(f"http://127.0.0.1:{free_port()}")
    try:
        with pytest.raises(AriUnavailable) as caught:
            await ari.answer("123")
    finally:
        await ari.close()

    error = caught.value
    assert error.status is None
    assert error.channel_id == "123"
    assert str(error).startswith("ARI POST /channels/123/answer for channel 123: ")
    assert "is Asterisk running and ari.conf/http.conf correct?" in str(error)


async def test_an_unanswered_request_times_out_as_unavailable(fake: FakeAri, client: AriClient) -> None:
    fake.hang("POST", "/channels/123/answer")

    with pytest.raises(AriUnavailable, match=r"no answer within 0\.5 s"):
        await client.answer("123")


async def test_a_closed_client_refuses_requests(client: AriClient) -> None:
    await client.close()

    with pytest.raises(AriUnavailable, match="closed"):
        await client.ping()


async def test_reading_a_variable(fake: FakeAri, client: AriClient) -> None:
    path = "/channels/123/variable"
    fake.respond("GET", path, 200, {"value": "GPS"})
    assert await client.get_variable("123", "GEOLOC_PROFILE(method)") == "GPS"
    assert fake.requests_to("GET", path)[-1].query == {"variable": "GEOLOC_PROFILE(method)"}

    # A SIP header the call did not carry answers 500; a gone channel answers 404.
    fake.respond("GET", path, 500, {"message": "Unable to read provided function"})
    assert await client.get_variable("123", "PJSIP_HEADER(read,Geolocation)") is None
    fake.respond("GET", path, 404, {"message": "Channel not found"})
    assert await client.get_variable("123", "X") is None

    fake.respond("GET", path, 503, {"message": "busy"})
    with pytest.raises(AriServerError):
        await client.get_variable("123", "X")


async def test_playing_a_list_of_prompts_is_one_playback(fake: FakeAri, client: AriClient) -> None:
    fake.respond("POST", "/channels/123/play", 201, {"id": "pb-1", "state": "queued"})

    playback_id = await client.play("123", ["sound:welcome", "sound:press-1"], playback_id="pb-1", lang="id")

    assert playback_id == "pb-1"
    [request] = fake.requests_to("POST", "/channels/123/play")
    assert request.query == {
        "media": "sound:welcome,sound:press-1",
        "playbackId": "pb-1",
        "lang": "id",
    }


async def test_play_picks_a_playback_id_when_none_is_given(fake: FakeAri, client: AriClient) -> None:
    fake.respond("POST", "/channels/123/play", 201, {"state": "queued"})

    playback_id = await client.play("123", ["sound:welcome"])

    [request] = fake.requests_to("POST", "/channels/123/play")
    assert playback_id and request.query["playbackId"] == playback_id
    assert "lang" not in request.query


async def test_play_refuses_what_ari_would_misread(client: AriClient) -> None:
    with pytest.raises(ValueError, match="at least one media"):
        await client.play("123", [])
    with pytest.raises(ValueError, match="comma"):
        await client.play("123", ["tone:a,b"])


async def test_cleanup_calls_treat_already_gone_as_done(fake: FakeAri, client: AriClient) -> None:
    # The fake answers 404 to anything it was not told about.
    await client.stop_playback("pb-1", channel_id="123")
    await client.hangup("123")
    await client.destroy_bridge("br-1")

    assert fake.requests_to("DELETE", "/channels/123")[0].query == {"reason": "normal"}
    assert len(fake.requests_to("DELETE", "/playbacks/pb-1")) == 1
    assert len(fake.requests_to("DELETE", "/bridges/br-1")) == 1


async def test_continue_in_dialplan_sends_only_what_is_given(fake: FakeAri, client: AriClient) -> None:
    fake.respond("POST", "/channels/123/continue", 204)

    await client.continue_in_dialplan("123")
    await client.continue_in_dialplan("123", context="fallback", extension="s", priority=1)

    first, second = fake.requests_to("POST", "/channels/123/continue")
    assert first.query == {}
    assert second.query == {"context": "fallback", "extension": "s", "priority": "1"}


async def test_bridging_and_recording_a_call(fake: FakeAri, client: AriClient) -> None:
    fake.respond("POST", "/bridges", 200, {"id": "br-1", "bridge_type": "mixing"})
    fake.respond("POST", "/bridges/br-1/addChannel", 204)
    fake.respond("POST", "/bridges/br-1/record", 201, {"name": "inc-7", "state": "queued"})

    bridge_id = await client.create_bridge(bridge_id="br-1")
    await client.add_channel(bridge_id, "123")
    name = await client.record_bridge(bridge_id, "inc-7")

    assert (bridge_id, name) == ("br-1", "inc-7")
    assert fake.requests_to("POST", "/bridges")[0].query == {
        "type": "mixing",
        "bridgeId": "br-1",
    }
    assert fake.requests_to("POST", "/bridges/br-1/addChannel")[0].query == {"channel": "123"}
    assert fake.requests_to("POST", "/bridges/br-1/record")[0].query == {
        "name": "inc-7",
        "format": "wav",
        "ifExists": "overwrite",
    }


async def test_originating_a_call_into_our_app(fake: FakeAri, client: AriClient) -> None:
    channel = {"id": "out-1", "name": "PJSIP/police-0001", "state": "Down"}
    fake.respond("POST", "/channels", 200, channel)

    created = await client.originate("PJSIP/police", app_args="incident,7", variables={"INCIDENT": "7"})

    assert created.id == "out-1"
    [request] = fake.requests_to("POST", "/channels")
    assert request.query == {
        "endpoint": "PJSIP/police",
        "app": APP,
        "appArgs": "incident,7",
    }
    assert request.body == {"variables": {"INCIDENT": "7"}}


async def test_listing_channels_and_the_application(fake: FakeAri, client: AriClient) -> None:
    fake.respond("GET", "/channels", 200, [{"id": "1", "state": "Up"}, "junk"])
    fake.respond("GET", f"/applications/{APP}", 200, {"channel_ids": ["1"]})

    [channel] = await client.list_channels()

    assert (channel.id, channel.state) == ("1", "Up")
    assert (await client.application())["channel_ids"] == ["1"]


# -- events --------------------------------------------------------------------


async def test_events_reach_the_handler_and_resync_runs_on_connect(fake: FakeAri, client: AriClient) -> None:
    seen = Recorder()
    task = await start_run(client, seen.handle, seen.on_connect)
    await client.wait_connected(RUN_STOP_TIMEOUT_S)
    await eventually(lambda: seen.connects == 1, what="the resync hook")
    assert client.is_connected

    await fake.send(stasis_start("c1", "en"))
    await fake.send(dtmf("c1", "1"))
    await eventually(lambda: len(seen.events) == 2, what="two events")

    start, digit = seen.events
    assert isinstance(start, StasisStart) and start.args == ("en",)
    assert isinstance(digit, ChannelDtmfReceived) and digit.digit == "1"
    await stop_run(client, task)


async def test_the_client_reconnects_after_asterisk_drops_the_websocket(fake: FakeAri, client: AriClient) -> None:
    seen = Recorder()
    task = await start_run(client, seen.handle, seen.on_connect)
    await eventually(lambda: seen.connects == 1, what="the first connection")

    await fake.drop_websockets()
    await eventually(lambda: seen.connects == 2, what="the resync after reconnecting")
    await eventually(lambda: fake.open_sockets == 1, what="the new WebSocket")
    await fake.send(dtmf("c1", "5"))
    await eventually(lambda: len(seen.events) == 1, what="an event after reconnecting")

    assert fake.ws_connects == 2
    assert seen.events[0].channel_id == "c1"
    await stop_run(client, task)


async def test_the_event_filter_is_set_after_every_connect_before_the_resync(fake: FakeAri) -> None:
    """Asterisk forgets an application's filter when it restarts: set on each connect."""
    fake.respond("PUT", f"/applications/{APP}/eventFilter", 200, {"name": APP})
    ari = AriClient(base_url=fake.base_url, username=USERNAME, password=PASSWORD, app=APP,
                    request_timeout=REQUEST_TIMEOUT_S, reconnect_min=RECONNECT_MIN_S, reconnect_max=RECONNECT_MAX_S,
                    events={"StasisStart", "ChannelDtmfReceived"})
    filters_at_resync: list[int] = []

    async def on_connect() -> None:
        filters_at_resync.append(len(fake.requests_to("PUT", f"/applications/{APP}/eventFilter")))

    task = await start_run(ari, Recorder().handle, on_connect)
    await eventually(lambda: len(filters_at_resync) == 1, what="the first connection")
    await fake.drop_websockets()
    await eventually(lambda: len(filters_at_resync) == 2, what="the resync after reconnecting")

    assert filters_at_resync == [1, 2]
    first, second = fake.requests_to("PUT", f"/applications/{APP}/eventFilter")
    assert not first.over_ws, "a request with a JSON body goes over HTTP (Asterisk 22.10 never answers it on the WebSocket)"
    # ApplicationReplaced always passes: without it a second client would go unnoticed.
    # RESTResponse too: Asterisk filters the answers to requests sent over the WebSocket as events.
    assert first.body == second.body == {"allowed": [{"type": "ApplicationReplaced"}, {"type": "ChannelDtmfReceived"},
                                                     {"type": "RESTResponse"}, {"type": "StasisStart"}]}
    await stop_run(ari, task)


async def test_a_refused_event_filter_is_logged_and_every_event_still_comes(
    fake: FakeAri, caplog: pytest.LogCaptureFixture
) -> None:
    fake.respond("PUT", f"/applications/{APP}/eventFilter", 400, {"message": "Invalid format definition"})
    ari = AriClient(base_url=fake.base_url, username=USERNAME, password=PASSWORD, app=APP,
                    request_timeout=REQUEST_TIMEOUT_S, reconnect_min=RECONNECT_MIN_S, reconnect_max=RECONNECT_MAX_S,
                    events={"StasisStart"})
    seen = Recorder()
    task = await start_run(ari, seen.handle, seen.on_connect)
    await eventually(lambda: seen.connects == 1, what="the resync despite the refusal")
    await fake.send(dtmf("c1", "7"))
    await eventually(lambda: len(seen.events) == 1, what="an event the filter would have kept out")

    assert fake.ws_connects == 1, "a refused filter must not cost the connection"
    assert any("refused its event filter" in r.getMessage() and "Invalid format definition" in r.getMessage()
               for r in caplog.records if r.name == CLIENT_LOG)
    await stop_run(ari, task)


async def run_over_websocket(fake: FakeAri, client: AriClient) -> asyncio.Task[None]:
    """The client running, its requests going over the WebSocket (the first one, its try, answered)."""
    task = await start_run(client, Recorder().handle)
    await client.wait_connected(RUN_STOP_TIMEOUT_S)
    await eventually(lambda: fake.requests_to("GET", "/asterisk/ping"), what="the first request over the WebSocket")
    return task


async def test_while_connected_requests_go_over_the_websocket_with_the_same_answers_and_errors(
    fake: FakeAri, client: AriClient
) -> None:
    fake.respond("DELETE", "/channels/c1", 204)
    fake.respond("POST", f"/applications/{APP}/subscription", 422, {"message": "Event source does not exist"})
    fake.respond("POST", "/channels/c1/variable", 204)
    task = await run_over_websocket(fake, client)

    await client.hangup("c1")
    with pytest.raises(AriUnprocessable) as refused:
        await client.subscribe("c2")
    await client.set_variable("c1", "QUEUE_PRIO", "9")

    [hangup] = fake.requests_to("DELETE", "/channels/c1")
    assert hangup.over_ws and hangup.query == {"reason": "normal"}
    assert fake.requests_to("POST", f"/applications/{APP}/subscription")[0].over_ws
    assert "Event source does not exist" in str(refused.value) and refused.value.channel_id == "c2"
    # A request Asterisk runs on the channel's own thread (it may wait for a prompt to end)
    # would hold every call's requests behind it on the one WebSocket: over HTTP.
    assert not fake.requests_to("POST", "/channels/c1/variable")[0].over_ws
    await stop_run(client, task)


async def test_a_handler_may_wait_for_a_request_sent_over_the_websocket(fake: FakeAri, client: AriClient) -> None:
    """The reading goes on while a handler waits: the answer comes on the same WebSocket."""
    fake.respond("POST", f"/applications/{APP}/subscription", 200, {"name": APP})
    answered: list[str] = []

    async def handler(event: Event) -> None:
        if isinstance(event, StasisStart):
            await client.subscribe(event.channel_id or "")
        answered.append(event.type)

    task = await start_run(client, handler)
    await client.wait_connected(RUN_STOP_TIMEOUT_S)
    await fake.send(stasis_start("c1"))
    await fake.send(dtmf("c1", "1"))
    await eventually(lambda: len(answered) == 2, what="both events handled, the first after its answer")

    assert answered == ["StasisStart", "ChannelDtmfReceived"]
    assert fake.requests_to("POST", f"/applications/{APP}/subscription")[0].over_ws
    await stop_run(client, task)


async def test_a_request_waiting_when_the_websocket_drops_fails_as_unavailable(fake: FakeAri, client: AriClient) -> None:
    fake.hang("DELETE", "/channels/c1")
    task = await run_over_websocket(fake, client)
    waiting = asyncio.create_task(client.hangup("c1"))
    await eventually(lambda: fake.requests_to("DELETE", "/channels/c1"), what="the request sent")

    await fake.drop_websockets()
    with pytest.raises(AriUnavailable) as lost:
        await waiting
    assert "closed before Asterisk answered" in str(lost.value) and lost.value.channel_id == "c1"
    await stop_run(client, task)


async def test_a_request_unanswered_on_the_websocket_fails_as_unavailable(fake: FakeAri, client: AriClient) -> None:
    fake.hang("DELETE", "/channels/c1")
    task = await run_over_websocket(fake, client)

    with pytest.raises(AriUnavailable) as lost:
        await client.hangup("c1")
    assert f"no answer within {REQUEST_TIMEOUT_S:g} s" in str(lost.value)
    assert fake.requests_to("DELETE", "/channels/c1")[0].over_ws
    await stop_run(client, task)


async def test_an_asterisk_deaf_to_requests_on_the_websocket_gets_them_over_http(caplog: pytest.LogCaptureFixture) -> None:
    old = FakeAri(rest_over_websocket=False)  # before Asterisk 22.3
    await old.start()
    old.respond("DELETE", "/channels/c1", 204)
    ari = make_client(old.base_url)
    seen = Recorder()
    task = await start_run(ari, seen.handle, seen.on_connect)
    await eventually(lambda: seen.connects == 1, what="the resync after the unanswered try")

    await ari.hangup("c1")

    assert not old.requests_to("DELETE", "/channels/c1")[0].over_ws
    assert any("does not answer REST requests over the WebSocket" in r.getMessage() for r in caplog.records if r.name == CLIENT_LOG)
    await stop_run(ari, task)
    await old.stop()


async def test_an_asterisk_that_stops_answering_pings_is_noticed_and_reconnected() -> None:
    silent = FakeAri(answer_pings=False)
    await silent.start()
    ari = make_client(silent.base_url, heartbeat=0.05)
    seen = Recorder()
    task = await start_run(ari, seen.handle, seen.on_connect)
    try:
        await eventually(lambda: seen.connects >= 2, what="a reconnect after a missed pong")
        assert silent.ws_connects >= 2
    finally:
        await stop_run(ari, task)
        await silent.stop()


async def test_the_client_backs_off_while_asterisk_is_down_then_connects(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger=CLIENT_LOG)
    port = free_port()
    ari = make_client(f"http://127.0.0.1:{port}")
    seen = Recorder()
    task = await start_run(ari, seen.handle, seen.on_connect)

    def retries() -> list[float]:
        return [
            float(r.args[-1])  # type: ignore[index, arg-type]
            for r in caplog.records
            if r.name == CLIENT_LOG and "cannot connect" in r.getMessage()
        ]

    await eventually(lambda: len(retries()) >= 4, what="four failed attempts")
    delays = retries()[:4]
    assert delays == [RECONNECT_MIN_S, 0.02, RECONNECT_MAX_S, RECONNECT_MAX_S]
    assert "is Asterisk running" in caplog.text
    assert seen.connects == 0 and not ari.is_connected

    server = FakeAri()
    await server.start(port=port)
    try:
        await ari.wait_connected(RUN_STOP_TIMEOUT_S)
        await eventually(lambda: seen.connects == 1, what="the resync hook")
    finally:
        await stop_run(ari, task)
        await server.stop()


async def test_waiting_for_a_connection_that_never_comes_says_what_to_check() -> None:
    ari = make_client(f"http://127.0.0.1:{free_port()}")
    task = await start_run(ari, Recorder().handle)
    try:
        with pytest.raises(AriUnavailable) as caught:
            await ari.wait_connected(0.2)
    finally:
        await stop_run(ari, task)

    message = str(caught.value)
    assert "not connected after 0.2 s" in message
    assert "is Asterisk running and ari.conf/http.conf correct?" in message


async def test_refused_websocket_credentials_are_reported(fake: FakeAri) -> None:
    ari = make_client(fake.base_url, password="wrong")
    task = await start_run(ari, Recorder().handle)
    try:
        await eventually(lambda: fake.ws_refused >= 1, what="a refused connection")
        with pytest.raises(AriUnavailable, match=r"401.*username and password"):
            await ari.wait_connected(0.2)
    finally:
        await stop_run(ari, task)


async def test_a_failing_resync_is_retried_by_reconnecting(fake: FakeAri, client: AriClient) -> None:
    attempts = 0

    async def flaky_resync() -> None:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            raise AriUnavailable("GET", f"/applications/{APP}", None, "timed out")

    task = await start_run(client, Recorder().handle, flaky_resync)
    await eventually(lambda: attempts == 2, what="a second resync")

    assert fake.ws_connects == 2
    await stop_run(client, task)


async def test_a_handler_error_is_logged_with_the_channel_and_later_events_flow(
    fake: FakeAri, client: AriClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger=CLIENT_LOG)
    seen = Recorder()

    async def handler(event: Event) -> None:
        if isinstance(event, ChannelDtmfReceived) and event.digit == "9":
            raise RuntimeError("boom")
        await seen.handle(event)

    task = await start_run(client, handler, seen.on_connect)
    await eventually(lambda: seen.connects == 1, what="the connection")
    await fake.send(dtmf("c7", "9"))
    await fake.send("this is not JSON")
    await fake.send(dtmf("c7", "2"))
    await eventually(lambda: len(seen.events) == 1, what="the event after the error")

    assert isinstance(seen.events[0], ChannelDtmfReceived)
    assert seen.events[0].digit == "2"
    assert "channel c7: handling ChannelDtmfReceived failed" in caplog.text
    assert client.is_connected
    await stop_run(client, task)


async def test_another_client_taking_our_app_name_stops_the_client(
    fake: FakeAri, client: AriClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger=CLIENT_LOG)
    seen = Recorder()
    task = await start_run(client, seen.handle, seen.on_connect)
    await eventually(lambda: seen.connects == 1, what="the connection")

    await fake.send({"type": APPLICATION_REPLACED, "application": APP})
    async with asyncio.timeout(RUN_STOP_TIMEOUT_S):
        await task

    assert client.replaced and not client.is_connected
    assert [e.type for e in seen.events] == [APPLICATION_REPLACED]
    assert "another client connected with the same app name" in caplog.text
    await eventually(lambda: fake.open_sockets == 0, what="the socket to close")
    assert fake.ws_connects == 1


async def test_close_stops_run_and_leaves_no_task_behind(fake: FakeAri, client: AriClient) -> None:
    seen = Recorder()
    task = await start_run(client, seen.handle, seen.on_connect)
    await eventually(lambda: seen.connects == 1, what="the connection")
    assert ari_app_tasks()  # run() and its WebSocket loop

    await stop_run(client, task)

    assert task.done() and not task.cancelled()
    assert not client.is_connected
    assert ari_app_tasks() == []
    await eventually(lambda: fake.open_sockets == 0, what="the socket to close")


async def test_cancelling_the_caller_of_run_propagates(fake: FakeAri) -> None:
    ari = make_client(fake.base_url)
    task = await start_run(ari, Recorder().handle)
    await ari.wait_connected(RUN_STOP_TIMEOUT_S)

    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    assert not ari.is_connected
    await ari.close()


def test_backoff_doubles_up_to_the_maximum_and_resets() -> None:
    backoff = Backoff(0.5, 3.0)
    assert [backoff.next() for _ in range(5)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    backoff.reset()
    assert backoff.next() == 0.5


def test_backoff_refuses_impossible_delays() -> None:
    with pytest.raises(ValueError, match="reconnect_min=5, reconnect_max=1"):
        Backoff(5, 1)
