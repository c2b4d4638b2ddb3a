"""A fake Asterisk REST Interface on loopback, for unit tests of the ARI client.

It records each REST request, answers from a table the test fills in, and pushes
events down /ari/events WebSockets the way Asterisk does; it can drop those sockets,
stop, and start again on the same port to play an Asterisk that restarts.
"""

from __future__ import annotations

import asyncio
import base64
import json
import socket
from dataclasses import dataclass
from typing import Any

from aiohttp import WSCloseCode, WSMsgType, web

USERNAME = "ivr"
PASSWORD = "s3cret"
APP = "ivr112"
NO_ANSWER_STATUS = 404
POLL_INTERVAL_S = 0.002


@dataclass(frozen=True)
class Recorded:
    """One REST request as the fake received it; `path` is the part after /ari."""

    method: str
    path: str
    query: dict[str, str]
    authorization: str | None
    body: Any
    over_ws: bool = False


class FakeAri:
    """A loopback HTTP + WebSocket server that talks like ARI."""

    def __init__(self, *, username: str = USERNAME, password: str = PASSWORD, app: str = APP, answer_pings: bool = True,
                 rest_over_websocket: bool = True) -> None:
        """With `answer_pings=False` it plays a half-dead Asterisk that never answers a ping;
        with `rest_over_websocket=False` one older than 22.3, deaf to REST requests there."""
        self.username = username
        self.password = password
        self.app = app
        self.answer_pings = answer_pings
        self.requests: list[Recorded] = []
        self.ws_connects = 0
        self.ws_refused = 0
        self.port = 0
        self._answers: dict[tuple[str, str], tuple[int, Any]] = {}
        self._hanging: set[tuple[str, str]] = set()
        self._release = asyncio.Event()
        self._sockets: set[web.WebSocketResponse] = set()
        self._runner: web.AppRunner | None = None
        self.rest_over_websocket = rest_over_websocket
        self._ws_tasks: set[asyncio.Task[None]] = set()

    @property
    def base_url(self) -> str:
        """Where the client should point: http://127.0.0.1:<port>."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def open_sockets(self) -> int:
        """How many event WebSockets are open now."""
        return len(self._sockets)

    def respond(self, method: str, path: str, status: int, body: Any = None) -> None:
        """Answer `method path` (path after /ari) with `status` and a JSON `body`."""
        self._answers[(method, path)] = (status, body)

    def hang(self, method: str, path: str) -> None:
        """Never answer `method path` (until stop), to make the client time out."""
        self._hanging.add((method, path))

    def requests_to(self, method: str, path: str) -> list[Recorded]:
        """The recorded requests for `method path`, oldest first."""
        return [r for r in self.requests if (r.method, r.path) == (method, path)]

    async def start(self, port: int = 0) -> None:
        """Listen on 127.0.0.1:`port` (0: any free port; see `port` afterwards)."""
        app = web.Application()
        app.router.add_get("/ari/events", self._events)
        app.router.add_route("*", "/ari/{tail:.*}", self._rest)
        runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=1.0)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        self._runner = runner
        self._release = asyncio.Event()
        self.port = runner.addresses[0][1]

    async def stop(self) -> None:
        """Drop every WebSocket, release hanging requests, and stop listening."""
        self._release.set()
        await self.drop_websockets()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def send(self, event: dict[str, Any] | str) -> None:
        """Push an event (a dict as JSON, a str as it is) to every open WebSocket."""
        for ws in list(self._sockets):
            if isinstance(event, str):
                await ws.send_str(event)
            else:
                await ws.send_json(event)

    async def drop_websockets(self) -> None:
        """Close every event WebSocket, as an Asterisk restart would."""
        for ws in list(self._sockets):
            await ws.close(code=WSCloseCode.GOING_AWAY, message=b"fake restart")

    def _authorized(self, request: web.Request) -> bool:
        token = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
        expected = f"Basic {token}"
        return request.headers.get("Authorization") == expected

    async def _events(self, request: web.Request) -> web.StreamResponse:
        api_key = f"{self.username}:{self.password}"
        if request.query.get("api_key") != api_key and not self._authorized(request):
            self.ws_refused += 1
            return web.json_response({"message": "Authentication required"}, status=401)
        if request.query.get("app") != self.app:
            self.ws_refused += 1
            return web.json_response({"message": "wrong app"}, status=400)
        ws = web.WebSocketResponse(autoping=self.answer_pings)
        await ws.prepare(request)
        self.ws_connects += 1
        self._sockets.add(ws)
        try:
            async for message in ws:  # pings are answered by aiohttp (if autoping)
                if message.type is WSMsgType.TEXT and self.rest_over_websocket:
                    # REST over the WebSocket (Asterisk 22.3+), answered as over HTTP.
                    task = asyncio.create_task(self._ws_request(ws, json.loads(message.data)))
                    self._ws_tasks.add(task)
                    task.add_done_callback(self._ws_tasks.discard)
        finally:
            self._sockets.discard(ws)
        return ws

    async def _ws_request(self, ws: web.WebSocketResponse, data: dict[str, Any]) -> None:
        path = "/" + str(data.get("uri", "")).split("?")[0]
        method = str(data.get("method", ""))
        query = {str(q["name"]): str(q["value"]) for q in data.get("query_strings", [])}
        self.requests.append(Recorded(method=method, path=path, query=query, authorization=None, body=None, over_ws=True))
        if (method, path) in self._hanging:
            await self._release.wait()
        status, answer = self._answers.get(
            (method, path), (NO_ANSWER_STATUS, {"message": f"fake has no answer for {method} {path}"})
        )
        body = "" if answer is None else answer if isinstance(answer, str) else json.dumps(answer)
        if not ws.closed:
            await ws.send_json({"type": "RESTResponse", "request_id": data.get("request_id"), "status_code": status,
                                "reason_phrase": "fake", "uri": data.get("uri"), "message_body": body})

    async def _rest(self, request: web.Request) -> web.StreamResponse:
        path = "/" + request.match_info["tail"]
        body: Any = await request.json() if request.can_read_body else None
        self.requests.append(
            Recorded(
                method=request.method,
                path=path,
                query=dict(request.query),
                authorization=request.headers.get("Authorization"),
                body=body,
            )
        )
        if not self._authorized(request):
            return web.json_response({"message": "Authentication required"}, status=401)
        if (request.method, path) in self._hanging:
            await self._release.wait()
        status, answer = self._answers.get(
            (request.method, path),
            (NO_ANSWER_STATUS, {"message": f"fake has no answer for {request.method} {path}"}),
        )
        if answer is None:
            return web.Response(status=status)
        if isinstance(answer, str):
            return web.Response(status=status, text=answer)
        return web.json_response(answer, status=status)


def free_port() -> int:
    """A loopback port nothing listens on (for "Asterisk is down" tests)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# Event builders: the JSON Asterisk sends, trimmed to what the app reads.
def channel_json(channel_id: str, *, caller: str = "08123456789") -> dict[str, Any]:
    """An ARI Channel object."""
    return {
        "id": channel_id,
        "name": f"PJSIP/caller-{channel_id}",
        "state": "Ring",
        "caller": {"name": "", "number": caller},
        "connected": {"name": "", "number": ""},
        "accountcode": "",
        "dialplan": {"context": "from-caller", "exten": "112", "priority": 2},
        "creationtime": "2024-05-01T10:00:00.000+0700",
        "language": "id",
    }


def event_json(event_type: str, channel_id: str, **fields: Any) -> dict[str, Any]:
    """An event about `channel_id` with extra `fields`."""
    return {
        "type": event_type,
        "application": APP,
        "timestamp": "2024-05-01T10:00:01.000+0700",
        "channel": channel_json(channel_id),
        **fields,
    }


def stasis_start(channel_id: str, *args: str) -> dict[str, Any]:
    """A caller entering Stasis(ivr112,args...)."""
    return event_json("StasisStart", channel_id, args=list(args))


def dtmf(channel_id: str, digit: str) -> dict[str, Any]:
    """A caller pressing `digit`."""
    return event_json("ChannelDtmfReceived", channel_id, digit=digit, duration_ms=120)


def stasis_end(channel_id: str) -> dict[str, Any]:
    """The channel leaving Stasis."""
    return event_json("StasisEnd", channel_id)
