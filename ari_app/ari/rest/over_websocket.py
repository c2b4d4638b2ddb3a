"""ARI REST requests over the event WebSocket (Asterisk 22.3 and later: "ARI REST over
WebSocket"): a `RESTRequest` message out, Asterisk's `RESTResponse` back on the same
connection, matched by `request_id`.

Why: each HTTP request through aiohttp cost the app's event loop about 0.4 ms of CPU
(request and response objects, headers, the connection pool), three or four of them a
call, the largest share left of the app's CPU per IVR call (docs/results.md). A message
on the open WebSocket costs a JSON dump and a JSON load.

Only the requests `carried` names go this way. Asterisk serves one WebSocket's requests
one at a time, in its reading thread (res/ari/ari_websocket_requests.c), and many
channel requests wait for the channel's own thread to run them (answer, a variable, a
bridge...), which is busy until the prompt or recording it runs ends: on the WebSocket
such a request would hold every other call's requests behind it for seconds. So only
requests Asterisk carries out without the channel's thread go there: a playback (queued,
its start reported by an event), a subscription (the application's own), a hang-up, a
playback stopped, and reads of Asterisk and the application. Everything else, and every
request while the WebSocket is down, goes over HTTP (`ari_app.ari.rest.transport`), each
on its own connection as before. (A request with a JSON body is never answered on the
WebSocket by Asterisk 22.10, seen on the real stack: none of the carried ones has one.)

Errors are the HTTP path's: the same status mapping, and `AriUnavailable` when no answer
comes in time or the WebSocket closes first (the request may or may not have been
carried out, as when an HTTP connection breaks).
"""

from __future__ import annotations

import asyncio
import itertools
import json as jsonlib
import re
from collections.abc import Mapping
from typing import Any

import aiohttp

from ari_app.ari.errors import AriUnavailable, error_for
from ari_app.ari.rest.transport import decode_body, describe_exc, error_reason

REST_RESPONSE = "RESTResponse"

# (method, path): see the module's doc for why only these.
_CARRIED = re.compile(
    r"POST /channels/[^/]+/play"
    r"|(POST|DELETE) /applications/[^/]+/subscription"
    r"|DELETE /playbacks/[^/]+"
    r"|DELETE /channels/[^/]+"
    r"|GET /(asterisk/ping|asterisk/info|channels|applications/[^/]+)"
)


def carried(method: str, path: str) -> bool:
    """Whether this request may go over the event WebSocket (no wait on a channel's thread)."""
    return "%" not in path and _CARRIED.fullmatch(f"{method} {path}") is not None


class WebSocketClosed(Exception):
    """The event WebSocket closed while a request waited for its answer."""


class WebSocketRequests:
    """The requests sent on one event WebSocket and waiting for their answer."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse[bool], *, timeout: float) -> None:
        self._ws = ws
        self._timeout = timeout
        # Each request waiting for its answer: the future it gets, and when it times out.
        self._waiting: dict[str, tuple[asyncio.Future[Mapping[str, Any]], float]] = {}
        self._ids = itertools.count(1)
        self._closed = ""
        self._sweeper: asyncio.Task[None] | None = None

    @staticmethod
    def carries(method: str, path: str) -> bool:
        return carried(method, path)

    async def request(self, method: str, path: str, query: Mapping[str, str], *, channel_id: str | None) -> Any:
        """Send one request and return its decoded answer, or raise as the HTTP path does."""
        if self._closed:
            raise AriUnavailable(method, path, None, self._closed, channel_id)
        request_id = str(next(self._ids))
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[Mapping[str, Any]] = loop.create_future()
        self._waiting[request_id] = (answer, loop.time() + self._timeout)
        if self._sweeper is None:
            self._sweeper = asyncio.create_task(self._sweep(), name="ari-requests-timeouts")
        message: dict[str, Any] = {"type": "RESTRequest", "request_id": request_id, "method": method, "uri": path.lstrip("/")}
        if query:
            message["query_strings"] = [{"name": name, "value": value} for name, value in query.items()]
        try:
            await self._ws.send_str(jsonlib.dumps(message))
            response = await answer
        except (TimeoutError, WebSocketClosed, aiohttp.ClientError, ConnectionError) as exc:
            reason = f"{describe_exc(exc, self._timeout)} (request sent over the event WebSocket)"
            raise AriUnavailable(method, path, None, reason, channel_id) from exc
        finally:
            self._waiting.pop(request_id, None)
        body = str(response.get("message_body") or "")
        status = response.get("status_code")
        if not isinstance(status, int):
            raise AriUnavailable(method, path, None, f"Asterisk's answer has no status: {str(response)[:200]}", channel_id)
        if not 200 <= status < 300:
            raise error_for(method, path, status, error_reason(body.encode(), str(response.get("reason_phrase") or "")), channel_id)
        return decode_body(body.encode())

    def answered(self, response: Mapping[str, Any]) -> None:
        """A `RESTResponse` read from the WebSocket: its request has its answer."""
        waiting = self._waiting.get(str(response.get("request_id", "")))
        if waiting is not None and not waiting[0].done():
            waiting[0].set_result(response)

    async def _sweep(self) -> None:
        """Fail the requests left unanswered past their time, a few times per timeout: one
        task for all of them (a timer per request was a tenth of the request's cost)."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self._timeout / 4)
            now = loop.time()
            for answer, deadline in self._waiting.values():
                if deadline <= now and not answer.done():
                    answer.set_exception(TimeoutError())

    def close(self, why: str) -> None:
        """The WebSocket is gone: every waiting request fails now, later ones at once."""
        self._closed = why
        if self._sweeper is not None:
            self._sweeper.cancel()
        for answer, _deadline in self._waiting.values():
            if not answer.done():
                answer.set_exception(WebSocketClosed(why))
        self._waiting.clear()
