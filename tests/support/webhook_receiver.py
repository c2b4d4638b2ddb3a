"""An agency's webhook for the tests: a real aiohttp server on loopback, in a thread of its
own, that keeps every POST it gets (headers and body) and answers as the test says: 200,
or a redirect elsewhere. It can be stopped and started again on the same port."""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass

from aiohttp import web

from tests.support.net import free_port


@dataclass(frozen=True)
class Post:
    headers: dict[str, str]
    body: bytes
    at: float  # when it arrived (Unix seconds)


class Receiver:
    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = free_port()
        self.posts: list[Post] = []
        self.redirect_to = ""  # when set, every POST is answered 307 to this URL
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=f"receiver-{self.port}", daemon=True)
        self._thread.start()
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/eido"

    def received(self) -> list[Post]:
        with self._lock:
            return list(self.posts)

    async def _take(self, request: web.Request) -> web.Response:
        if self.redirect_to:
            raise web.HTTPTemporaryRedirect(self.redirect_to)
        body = await request.read()
        with self._lock:
            self.posts.append(Post(dict(request.headers), body, time.time()))
        return web.json_response({"ok": True})

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_post("/eido", self._take)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, self.port).start()

    async def _stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def start(self) -> Receiver:
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(timeout=10)
        return self

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(timeout=10)

    def close(self) -> None:
        self.stop()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()
