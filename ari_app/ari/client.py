"""A thin client for Asterisk's REST Interface on one aiohttp session.

REST calls come back as plain values or typed errors (`ari_app.ari.errors`); the event
WebSocket is kept connected for as long as the app runs, with backoff and a resync hook,
because ARI drops the events of a disconnected app and never repeats its StasisStarts.
"""

from __future__ import annotations

import asyncio
import base64
import json as jsonlib
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any
from urllib.parse import quote

import aiohttp

from ari_app.ari.errors import (
    UNAVAILABLE_HINT,
    AriNotFound,
    AriServerError,
    AriUnavailable,
    error_for,
)
from ari_app.ari.events import (
    ApplicationReplaced,
    Channel,
    Event,
    parse_channel,
    parse_event,
)

_log = logging.getLogger(__name__)

EventHandler = Callable[[Event], Awaitable[None]]
ConnectHook = Callable[[], Awaitable[None]]
ParamValue = str | int | float

_EVENTS_PATH = "/events"
# PJSIP_HEADER(read,...) of a header the INVITE did not carry answers 500, not 404.
_MISSING_VARIABLE_STATUS = 500
# Enough of an error page to recognise it, not a whole HTML dump in one log line.
_REASON_MAX_CHARS = 300


def basic_auth(username: str, password: str) -> str:
    """Return the Authorization header value for HTTP basic auth."""
    # Built here: aiohttp 3.14 deprecates BasicAuth, and its replacement is not in older releases.
    token = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
    return f"Basic {token}"


def _seg(resource_id: str) -> str:
    """Quote an id for use as one path segment (bridge and playback ids are ours to pick)."""
    return quote(resource_id, safe="")


def _query(params: Mapping[str, ParamValue | None] | None) -> dict[str, str]:
    # aiohttp refuses bools in a query and ARI wants "true"/"false"; None means "leave out".
    query: dict[str, str] = {}
    for key, value in (params or {}).items():
        if value is None:
            continue
        if isinstance(value, bool):
            query[key] = "true" if value else "false"
        else:
            query[key] = str(value)
    return query


def _reason(body: bytes, http_reason: str) -> str:
    """Asterisk's JSON `message`, else the body text, else the HTTP reason phrase."""
    text = body.decode("utf-8", "replace").strip()
    try:
        decoded = jsonlib.loads(text) if text else None
    except ValueError:
        decoded = None
    if isinstance(decoded, dict) and isinstance(decoded.get("message"), str):
        return str(decoded["message"])
    return text[:_REASON_MAX_CHARS] or http_reason


def _describe_exc(exc: BaseException, timeout: float) -> str:
    if isinstance(exc, TimeoutError) and not str(exc):
        return f"no answer within {timeout:g} s"
    return str(exc) or type(exc).__name__


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


class AriClient:
    """REST calls and the event WebSocket of one ARI application."""

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
    ) -> None:
        """`base_url` is Asterisk's HTTP server, e.g. "http://127.0.0.1:8088".

        `heartbeat` is the WebSocket ping interval in seconds (default: request_timeout);
        a missing pong drops the connection so that a dead Asterisk is noticed.
        """
        self._backoff = Backoff(reconnect_min, reconnect_max)
        self._base_url = base_url.rstrip("/")
        self._app = app
        self._auth_headers = {"Authorization": basic_auth(username, password)}
        self._api_key = f"{username}:{password}"
        self._request_timeout = request_timeout
        self._timeout = aiohttp.ClientTimeout(total=request_timeout)
        self._heartbeat = heartbeat if heartbeat is not None else request_timeout
        self._session = session
        self._owns_session = session is None
        self._connected = asyncio.Event()
        self._serve_task: asyncio.Task[None] | None = None
        self._closing = False
        self._replaced = False
        self._last_error: str | None = None

    # -- state -------------------------------------------------------------------

    @property
    def app(self) -> str:
        """The Stasis application name this client serves."""
        return self._app

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

    # -- REST --------------------------------------------------------------------

    def _get_session(self, method: str, path: str) -> aiohttp.ClientSession:
        if self._closing:
            raise AriUnavailable(method, path, None, "the ARI client is closed")
        if self._session is None:
            # Made lazily: aiohttp wants its session created inside the running loop.
            self._session = aiohttp.ClientSession()
        return self._session

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, ParamValue | None] | None = None,
        json: Any = None,
        channel_id: str | None = None,
    ) -> Any:
        """Send `method` to `{base_url}/ari{path}`; return the decoded JSON, or None if empty.

        Raises the AriError subclass for the status (AriUnavailable when nothing answered).
        `channel_id` only names the call in the error message.
        """
        session = self._get_session(method, path)
        url = f"{self._base_url}/ari{path}"
        try:
            async with session.request(
                method,
                url,
                params=_query(params),
                json=json,
                headers=self._auth_headers,
                timeout=self._timeout,
            ) as response:
                body = await response.read()
                status = response.status
                http_reason = response.reason or ""
        except (aiohttp.ClientError, TimeoutError) as exc:
            reason = _describe_exc(exc, self._request_timeout)
            raise AriUnavailable(method, path, None, reason, channel_id) from exc
        if not 200 <= status < 300:
            raise error_for(method, path, status, _reason(body, http_reason), channel_id)
        if not body.strip():
            return None
        try:
            return jsonlib.loads(body)
        except ValueError:
            return body.decode("utf-8", "replace")

    async def answer(self, channel_id: str) -> None:
        """Answer the channel."""
        path = f"/channels/{_seg(channel_id)}/answer"
        await self.request("POST", path, channel_id=channel_id)

    async def hangup(self, channel_id: str, reason: str = "normal") -> None:
        """Hang the channel up; a channel that is already gone counts as done."""
        path = f"/channels/{_seg(channel_id)}"
        try:
            await self.request("DELETE", path, params={"reason": reason}, channel_id=channel_id)
        except AriNotFound:
            _log.debug("channel %s: already gone when hanging up", channel_id)

    async def play(
        self,
        channel_id: str,
        media: Sequence[str],
        *,
        playback_id: str | None = None,
        lang: str | None = None,
    ) -> str:
        """Start one playback of all `media` URIs in turn; return its playback id.

        The id is chosen here when not given, so the caller knows it before the answer.
        """
        if not media:
            raise ValueError(f"channel {channel_id}: play() needs at least one media URI, e.g. 'sound:hello-world'")
        for uri in media:
            if "," in uri:
                raise ValueError(
                    f"channel {channel_id}: media URI {uri!r} contains a comma, "
                    "which ARI reads as a list separator; rename the prompt"
                )
        wanted_id = playback_id or str(uuid.uuid4())
        result = await self.request(
            "POST",
            f"/channels/{_seg(channel_id)}/play",
            # ARI takes a comma-joined media list as one playback (one PlaybackFinished).
            params={"media": ",".join(media), "playbackId": wanted_id, "lang": lang},
            channel_id=channel_id,
        )
        if isinstance(result, dict) and isinstance(result.get("id"), str):
            return str(result["id"])
        return wanted_id

    async def stop_playback(self, playback_id: str, *, channel_id: str | None = None) -> None:
        """Stop a playback (barge-in); one that already ended counts as done."""
        path = f"/playbacks/{_seg(playback_id)}"
        try:
            await self.request("DELETE", path, channel_id=channel_id)
        except AriNotFound:
            _log.debug("channel %s: playback %s already over", channel_id, playback_id)

    async def continue_in_dialplan(
        self,
        channel_id: str,
        *,
        context: str | None = None,
        extension: str | None = None,
        priority: int | None = None,
        label: str | None = None,
    ) -> None:
        """Let the channel leave Stasis; with no arguments it resumes after Stasis()."""
        await self.request(
            "POST",
            f"/channels/{_seg(channel_id)}/continue",
            params={
                "context": context,
                "extension": extension,
                "priority": priority,
                "label": label,
            },
            channel_id=channel_id,
        )

    async def get_variable(self, channel_id: str, name: str) -> str | None:
        """Return a channel variable or function value; None when it is not set.

        Also None when the channel is gone (404) or Asterisk answers 500, which is how
        it reports a SIP header the call did not carry.
        """
        try:
            result = await self.request(
                "GET",
                f"/channels/{_seg(channel_id)}/variable",
                params={"variable": name},
                channel_id=channel_id,
            )
        except AriNotFound:
            return None
        except AriServerError as exc:
            if exc.status == _MISSING_VARIABLE_STATUS:
                return None
            raise
        if isinstance(result, dict) and isinstance(result.get("value"), str):
            return str(result["value"])
        return None

    async def set_variable(self, channel_id: str, name: str, value: str) -> None:
        """Set a channel variable."""
        await self.request(
            "POST",
            f"/channels/{_seg(channel_id)}/variable",
            params={"variable": name, "value": value},
            channel_id=channel_id,
        )

    async def get_channel(self, channel_id: str) -> Channel:
        """Return the channel's current details (AriNotFound once it is gone)."""
        path = f"/channels/{_seg(channel_id)}"
        return parse_channel(await self.request("GET", path, channel_id=channel_id))

    async def channel_gone(self, channel_id: str) -> bool:
        """True when Asterisk no longer has this channel (404); other failures raise."""
        try:
            await self.get_channel(channel_id)
        except AriNotFound:
            return True
        return False

    async def list_channels(self) -> list[Channel]:
        """Return every channel Asterisk has, in or out of our application."""
        result = await self.request("GET", "/channels")
        return [parse_channel(item) for item in result or [] if isinstance(item, dict)]

    async def application(self) -> dict[str, Any]:
        """Return our application's ARI record (`channel_ids`, `bridge_ids`, ...)."""
        result = await self.request("GET", f"/applications/{_seg(self._app)}")
        return result if isinstance(result, dict) else {}

    async def originate(
        self,
        endpoint: str,
        *,
        app: str | None = None,
        app_args: str | None = None,
        context: str | None = None,
        extension: str | None = None,
        priority: int | None = None,
        label: str | None = None,
        caller_id: str | None = None,
        timeout_s: int | None = None,
        channel_id: str | None = None,
        other_channel_id: str | None = None,
        originator: str | None = None,
        variables: Mapping[str, str] | None = None,
    ) -> Channel:
        """Dial `endpoint` (e.g. "PJSIP/police"); return the new channel.

        Without `extension` the answered channel enters `app` (default: our own app).
        """
        if extension is None and app is None:
            app = self._app
        result = await self.request(
            "POST",
            "/channels",
            params={
                "endpoint": endpoint,
                "app": app,
                "appArgs": app_args,
                "context": context,
                "extension": extension,
                "priority": priority,
                "label": label,
                "callerId": caller_id,
                "timeout": timeout_s,
                "channelId": channel_id,
                "otherChannelId": other_channel_id,
                "originator": originator,
            },
            json={"variables": dict(variables)} if variables else None,
            channel_id=channel_id or originator,
        )
        return parse_channel(result)

    async def create_bridge(
        self,
        type: str = "mixing",  # ARI's own parameter name
        bridge_id: str | None = None,
        *,
        name: str | None = None,
    ) -> str:
        """Create a bridge; return its id."""
        result = await self.request(
            "POST",
            "/bridges",
            params={"type": type, "bridgeId": bridge_id, "name": name},
        )
        if isinstance(result, dict) and isinstance(result.get("id"), str):
            return str(result["id"])
        if bridge_id is not None:
            return bridge_id
        raise AriServerError("POST", "/bridges", 200, "the answer carried no bridge id", None)

    async def add_channel(self, bridge_id: str, channel_id: str) -> None:
        """Put the channel into the bridge."""
        await self.request(
            "POST",
            f"/bridges/{_seg(bridge_id)}/addChannel",
            params={"channel": channel_id},
            channel_id=channel_id,
        )

    async def destroy_bridge(self, bridge_id: str) -> None:
        """Destroy the bridge (its channels stay up); one already gone counts as done."""
        try:
            await self.request("DELETE", f"/bridges/{_seg(bridge_id)}")
        except AriNotFound:
            _log.debug("bridge %s: already gone when destroying it", bridge_id)

    async def record_bridge(
        self,
        bridge_id: str,
        name: str,
        format: str = "wav",  # ARI's own parameter name
        if_exists: str = "overwrite",
        *,
        max_duration_s: int | None = None,
    ) -> str:
        """Start recording the bridge's mixed audio; return the recording's name.

        A bridged channel cannot be recorded on its own (409): record its bridge.
        """
        result = await self.request(
            "POST",
            f"/bridges/{_seg(bridge_id)}/record",
            params={
                "name": name,
                "format": format,
                "ifExists": if_exists,
                "maxDurationSeconds": max_duration_s,
            },
        )
        if isinstance(result, dict) and isinstance(result.get("name"), str):
            return str(result["name"])
        return name

    async def subscribe(self, channel_id: str) -> None:
        """Subscribe our application to the channel's events, so its end (ChannelDestroyed)
        still reaches the app once it has left Stasis (AriNotFound/AriUnprocessable: gone)."""
        await self.request(
            "POST",
            f"/applications/{_seg(self._app)}/subscription",
            params={"eventSource": f"channel:{channel_id}"},
            channel_id=channel_id,
        )

    async def ring(self, channel_id: str) -> None:
        """Play ringback on the channel (until ring_stop, a bridge or a playback)."""
        await self.request("POST", f"/channels/{_seg(channel_id)}/ring", channel_id=channel_id)

    async def ring_stop(self, channel_id: str) -> None:
        """Stop the channel's ringback."""
        await self.request("DELETE", f"/channels/{_seg(channel_id)}/ring", channel_id=channel_id)

    async def record(
        self,
        channel_id: str,
        name: str,
        *,
        max_duration_s: int,
        max_silence_s: int,
        format: str = "wav",  # ARI's own parameter name
        terminate_on: str = "#",
    ) -> None:
        """Start recording the caller's channel into `name` (overwriting), no beep; its end
        comes as RecordingFinished or RecordingFailed."""
        await self.request(
            "POST",
            f"/channels/{_seg(channel_id)}/record",
            params={
                "name": name, "format": format, "maxDurationSeconds": max_duration_s, "maxSilenceSeconds": max_silence_s,
                "ifExists": "overwrite", "beep": False, "terminateOn": terminate_on,
            },
            channel_id=channel_id,
        )

    async def stop_recording(self, name: str, *, channel_id: str | None = None) -> None:
        """End a live recording early; the file so far is kept."""
        await self.request("POST", f"/recordings/live/{_seg(name)}/stop", channel_id=channel_id)

    async def playback_exists(self, playback_id: str, *, channel_id: str | None = None) -> bool:
        """True while Asterisk still has this playback (False once it ended: 404)."""
        try:
            await self.request("GET", f"/playbacks/{_seg(playback_id)}", channel_id=channel_id)
        except AriNotFound:
            return False
        return True

    async def ping(self) -> dict[str, Any]:
        """Return Asterisk's answer to GET /asterisk/ping (AriUnavailable if none)."""
        result = await self.request("GET", "/asterisk/ping")
        return result if isinstance(result, dict) else {}

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
            why = f"{_describe_exc(exc, self._request_timeout)}; {UNAVAILABLE_HINT}"
        self._last_error = why
        return None

    async def _serve_connection(
        self,
        ws: aiohttp.ClientWebSocketResponse[bool],
        handler: EventHandler,
        on_connect: ConnectHook | None,
        backoff: Backoff,
    ) -> str:
        """Resync, then hand on events until the connection ends; return why it ended."""
        self._connected.set()
        _log.info("ARI WebSocket %s connected", self.events_url)
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
        try:
            return await self._read(ws, handler)
        except Exception as exc:  # keep the event loop alive, reconnect
            _log.exception("reading the ARI WebSocket failed")
            return f"read failed ({exc!r})"

    async def _read(self, ws: aiohttp.ClientWebSocketResponse[bool], handler: EventHandler) -> str:
        # receive() has no timeout of its own: the heartbeat ends a silent connection.
        while True:
            message = await ws.receive()
            if message.type is aiohttp.WSMsgType.TEXT:
                event = self._decode(message.data)
                if event is None:
                    continue
                await self._deliver(handler, event)
                if isinstance(event, ApplicationReplaced):
                    self._replaced = True
                    return "application replaced"
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

    def _decode(self, text: str) -> Event | None:
        try:
            data = jsonlib.loads(text)
        except ValueError:
            _log.warning("ignoring a WebSocket message that is not JSON: %.200r", text)
            return None
        return parse_event(data)

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
