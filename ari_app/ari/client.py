"""A thin client for Asterisk's REST Interface on one aiohttp session.

REST calls come back as plain values or typed errors (`ari_app.ari.errors`); the event
WebSocket is kept connected for as long as the app runs, with backoff and a resync hook,
because ARI drops the events of a disconnected app and never repeats its StasisStarts.
"""

from __future__ import annotations

import asyncio
import json as jsonlib
import logging
from collections.abc import Awaitable, Callable, Collection

import aiohttp

from ari_app.ari.errors import UNAVAILABLE_HINT, AriError, AriUnavailable
from ari_app.ari.event_parsing import parse_event
from ari_app.ari.events import APPLICATION_REPLACED, ApplicationReplaced, Event
from ari_app.ari.rest.applications import ApplicationRequests
from ari_app.ari.rest.bridges import BridgeRequests
from ari_app.ari.rest.channels import ChannelRequests
from ari_app.ari.rest.media import MediaRequests
from ari_app.ari.rest.over_websocket import REST_RESPONSE, WebSocketRequests
from ari_app.ari.rest.transport import basic_auth, describe_exc

__all__ = ["AriClient", "Backoff", "ConnectHook", "EventHandler", "basic_auth"]

_log = logging.getLogger(__name__)

EventHandler = Callable[[Event], Awaitable[None]]
ConnectHook = Callable[[], Awaitable[None]]

_EVENTS_PATH = "/events"


class Backoff:
    """Delays for reconnecting: `minimum`, doubling up to `maximum`, back to `minimum` on reset."""

    def __init__(self, minimum: float, maximum: float) -> None:
        if minimum <= 0 or maximum < minimum:
            raise ValueError(
                f"reconnect delays must satisfy 0 < reconnect_min <= reconnect_max; "
                f"got reconnect_min={minimum}, reconnect_max={maximum}"
            )
        self._minimum = minimum
        self._maximum = maximum
        self._next = minimum

    def next(self) -> float:
        """Return the delay to wait now, and double the one after it (up to the maximum)."""
        delay = self._next
        self._next = min(self._next * 2, self._maximum)
        return delay

    def reset(self) -> None:
        """Start again from the minimum (after a connection that worked)."""
        self._next = self._minimum


class AriClient(ChannelRequests, BridgeRequests, MediaRequests, ApplicationRequests):
    """REST calls (`ari_app.ari.rest`) and the event WebSocket of one ARI application."""

    def __init__(
        self,
        *,
        base_url: str,
        username: str,
        password: str,
        app: str,
        request_timeout: float,
        reconnect_min: float,
        reconnect_max: float,
        heartbeat: float | None = None,
        session: aiohttp.ClientSession | None = None,
        events: Collection[str] | None = None,
        rest_over_websocket: bool = True,
    ) -> None:
        """`base_url` is Asterisk's HTTP server, e.g. "http://127.0.0.1:8088".

        `heartbeat` is the WebSocket ping interval in seconds (default: request_timeout);
        a missing pong drops the connection so that a dead Asterisk is noticed.
        `events`: the only event types the application wants (ApplicationReplaced and
        RESTResponse are always added), set as its event filter in Asterisk after every connect; None: all.
        `rest_over_websocket`: send REST requests over the event WebSocket while it is
        open, if Asterisk answers them there (`ari_app.ari.rest.over_websocket`).
        """
        super().__init__(
            base_url=base_url,
            username=username,
            password=password,
            app=app,
            request_timeout=request_timeout,
            session=session,
        )
        self._backoff = Backoff(reconnect_min, reconnect_max)
        self._api_key = f"{username}:{password}"
        self._heartbeat = heartbeat if heartbeat is not None else request_timeout
        self._connected = asyncio.Event()
        self._serve_task: asyncio.Task[None] | None = None
        self._replaced = False
        self._last_error: str | None = None
        self._rest_over_websocket = rest_over_websocket
        # The filter holds back the answers to requests over the WebSocket too: they are
        # events to Asterisk (seen on 22.10: with a filter, no RESTResponse came).
        self._events = None if events is None else frozenset(events) | {APPLICATION_REPLACED, REST_RESPONSE}

    # -- state -------------------------------------------------------------------

    @property
    def events_url(self) -> str:
        """The WebSocket URL without credentials (safe to log)."""
        url = self._base_url
        if url.startswith("https://"):
            url = "wss://" + url[len("https://") :]
        elif url.startswith("http://"):
            url = "ws://" + url[len("http://") :]
        return f"{url}/ari{_EVENTS_PATH}?app={self._app}"

    @property
    def is_connected(self) -> bool:
        """True while the event WebSocket is open."""
        return self._connected.is_set()

    @property
    def replaced(self) -> bool:
        """True once another client took our application name (run() has then returned)."""
        return self._replaced

    # A timeout argument rather than the caller's asyncio.timeout(): the error it
    # raises names the wait and says what to check, which a bare TimeoutError cannot.
    async def wait_connected(self, timeout: float) -> None:  # noqa: ASYNC109
        """Return once the event WebSocket is open; raise AriUnavailable after `timeout` s."""
        try:
            async with asyncio.timeout(timeout):
                await self._connected.wait()
        except TimeoutError:
            last = f"; last error: {self._last_error}" if self._last_error else ""
            raise AriUnavailable(
                "GET",
                f"{_EVENTS_PATH}?app={self._app}",
                None,
                f"WebSocket {self.events_url} not connected after {timeout:g} s{last}",
            ) from None

    # -- events ------------------------------------------------------------------

    async def run(self, handler: EventHandler, on_connect: ConnectHook | None = None) -> None:
        """Keep the event WebSocket open and await `handler(event)` for each event, in order.

        `on_connect` runs after every (re)connect, before that connection's events are
        handled: the place to take over channels left in Stasis while we were away.
        Returns after close(), or when another client took our application name.
        """
        if self._serve_task is not None:
            raise RuntimeError("AriClient.run() is already running")
        if self._closing:
            return
        task = asyncio.create_task(self._serve(handler, on_connect), name=f"ari-events-{self._app}")
        self._serve_task = task
        try:
            await task
        except asyncio.CancelledError:
            current = asyncio.current_task()
            # close() cancels the inner task; that is a normal end of run(). Our own
            # caller being cancelled is not, and must propagate.
            own_cancel = current is not None and current.cancelling() > 0
            if self._closing and task.cancelled() and not own_cancel:
                return
            raise
        finally:
            self._serve_task = None

    async def close(self) -> None:
        """Stop run() (waiting for it to end) and close the session if it is ours."""
        self._closing = True
        task = self._serve_task
        if task is not None and not task.done():
            task.cancel()
            # Its cleanup (closing the WebSocket) is bounded by ws_close; allow a margin.
            done, _ = await asyncio.wait({task}, timeout=2 * self._request_timeout)
            if not done:
                _log.error(
                    "the ARI event loop for app %r did not stop within %g s",
                    self._app,
                    2 * self._request_timeout,
                )
        self._connected.clear()
        if self._owns_session and self._session is not None:
            await self._session.close()

    async def _serve(self, handler: EventHandler, on_connect: ConnectHook | None) -> None:
        backoff = self._backoff
        backoff.reset()
        # Checked as well as cancelled: before Python 3.12 a cancel can be swallowed by
        # asyncio.wait_for when what it waits on finishes at that moment.
        while not self._closing:
            ws = await self._connect()
            if ws is None:
                delay = backoff.next()
                _log.warning(
                    "ARI WebSocket %s: cannot connect (%s); retrying in %.3g s",
                    self.events_url,
                    self._last_error,
                    delay,
                )
                await asyncio.sleep(delay)
                continue
            try:
                why = await self._serve_connection(ws, handler, on_connect, backoff)
            finally:
                self._connected.clear()
                await ws.close()
            if self._replaced:
                _log.error(
                    "ARI application %r was taken over by another client connected with "
                    "the same app name; this client stops receiving events. Stop the "
                    "other process or give this one another app name",
                    self._app,
                )
                return
            self._last_error = why
            delay = backoff.next()
            _log.warning(
                "ARI WebSocket %s: %s; reconnecting in %.3g s",
                self.events_url,
                why,
                delay,
            )
            await asyncio.sleep(delay)

    async def _connect(self) -> aiohttp.ClientWebSocketResponse[bool] | None:
        """Open the event WebSocket; on failure note why in _last_error and return None."""
        session = self._get_session("GET", _EVENTS_PATH)
        try:
            async with asyncio.timeout(self._request_timeout):
                return await session.ws_connect(
                    f"{self._base_url}/ari{_EVENTS_PATH}",
                    params={
                        "app": self._app,
                        "api_key": self._api_key,
                        "subscribeAll": "false",
                    },
                    heartbeat=self._heartbeat,
                    timeout=aiohttp.ClientWSTimeout(ws_close=self._request_timeout),
                )
        except aiohttp.WSServerHandshakeError as exc:
            why = f"{exc.status} {exc.message}"
            if exc.status in (401, 403):
                why += "; check the ARI username and password against ari.conf"
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            why = f"{describe_exc(exc, self._request_timeout)}; {UNAVAILABLE_HINT}"
        self._last_error = why
        return None

    async def _serve_connection(
        self,
        ws: aiohttp.ClientWebSocketResponse[bool],
        handler: EventHandler,
        on_connect: ConnectHook | None,
        backoff: Backoff,
    ) -> str:
        """Read the WebSocket (events queued in order, answers to requests sent on it
        matched at once), resync, then hand on the events until the connection ends;
        return why it ended. The reading never waits for a handler: a handler may itself
        wait for the answer to a request sent over this WebSocket."""
        self._connected.set()
        _log.info("ARI WebSocket %s connected", self.events_url)
        events: asyncio.Queue[Event | None] = asyncio.Queue()
        requests = WebSocketRequests(ws, timeout=self._request_timeout)
        reader = asyncio.create_task(self._read(ws, events, requests), name=f"ari-read-{self._app}")
        try:
            await self._set_event_filter()
            await self._requests_over(requests)
            if on_connect is not None:
                try:
                    await on_connect()
                except Exception as exc:  # any failure: retry the resync
                    # Channels left in Stasis while we were away stay silent until someone
                    # takes them over, so a failed resync is retried by reconnecting.
                    _log.exception("resync after connecting to ARI failed")
                    return f"resync failed ({exc!r})"
            # Only a connection that got as far as a resync resets the delays, so a
            # connect-then-fail loop still backs off.
            backoff.reset()
            return await self._hand_on(events, handler, reader)
        finally:
            self._over_ws = None
            requests.close("the ARI WebSocket closed before Asterisk answered")
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)

    async def _requests_over(self, requests: WebSocketRequests) -> None:
        """Send REST requests over this WebSocket from now on if Asterisk answers one there
        (22.3 and later do); else they stay on HTTP."""
        if not self._rest_over_websocket:
            return
        try:
            await requests.request("GET", "/asterisk/ping", {}, channel_id=None)
        except AriUnavailable as exc:  # no answer at all (any answer, even an error, will do)
            _log.warning("ARI application %r: Asterisk does not answer REST requests over the WebSocket (%s): "
                         "requests go over HTTP (more CPU per call; Asterisk 22.3 or later answers them)", self._app, exc)
            return
        except AriError:  # an answer all the same: requests are carried
            pass
        self._over_ws = requests

    async def _set_event_filter(self) -> None:
        """Asterisk keeps an application's filter while it runs, but not across its restart:
        set after every connect. A channel subscribed to, or an endpoint's channels, bring
        every event of theirs (ChannelVarset, ChannelDialplan...: dozens a call, each one
        JSON to decode) unless filtered."""
        if self._events is None:
            return
        try:
            await self.filter_events(self._events)
        except AriError as exc:  # the events still come, all of them: only CPU is lost
            _log.warning("ARI application %r: Asterisk refused its event filter (%s); every event is sent and read",
                         self._app, exc)

    async def _hand_on(self, events: asyncio.Queue[Event | None], handler: EventHandler,
                       reader: asyncio.Task[str]) -> str:
        while True:
            event = await events.get()
            if event is None:  # the reader's last word
                return reader.result() if reader.done() and not reader.cancelled() else "reading stopped"
            await self._deliver(handler, event)
            if isinstance(event, ApplicationReplaced):
                self._replaced = True
                return "application replaced"

    async def _read(self, ws: aiohttp.ClientWebSocketResponse[bool], events: asyncio.Queue[Event | None],
                    requests: WebSocketRequests) -> str:
        try:
            return await self._read_messages(ws, events, requests)
        except Exception as exc:  # keep the event loop alive, reconnect
            _log.exception("reading the ARI WebSocket failed")
            return f"read failed ({exc!r})"
        finally:
            events.put_nowait(None)

    async def _read_messages(self, ws: aiohttp.ClientWebSocketResponse[bool], events: asyncio.Queue[Event | None],
                             requests: WebSocketRequests) -> str:
        # receive() has no timeout of its own: the heartbeat ends a silent connection.
        while True:
            message = await ws.receive()
            if message.type is aiohttp.WSMsgType.TEXT:
                data = self._decode(message.data)
                if isinstance(data, dict) and data.get("type") == REST_RESPONSE:
                    requests.answered(data)
                elif data is not None:
                    events.put_nowait(parse_event(data))
            elif message.type is aiohttp.WSMsgType.ERROR:
                return f"connection failed ({ws.exception()!r})"
            elif message.type in (
                aiohttp.WSMsgType.CLOSE,
                aiohttp.WSMsgType.CLOSING,
                aiohttp.WSMsgType.CLOSED,
            ):
                return f"closed by Asterisk (code {ws.close_code})"
            else:
                _log.debug("ignoring a %s WebSocket message", message.type.name)

    def _decode(self, text: str) -> object:
        try:
            return jsonlib.loads(text)
        except ValueError:
            _log.warning("ignoring a WebSocket message that is not JSON: %.200r", text)
            return None

    async def _deliver(self, handler: EventHandler, event: Event) -> None:
        _log.debug("channel %s: %s", event.channel_id, event.type)
        try:
            await handler(event)
        except Exception:  # one bad event must not stop the others
            _log.exception(
                "channel %s: handling %s failed; carrying on with the next event",
                event.channel_id,
                event.type,
            )
