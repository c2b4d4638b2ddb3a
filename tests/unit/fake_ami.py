"""A small fake AMI server for the AMI client's edge cases (never proof a feature works:
the integration tests use the real Asterisk)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any


def _block(fields: dict[str, str]) -> bytes:
    return ("".join(f"{k}: {v}\r\n" for k, v in fields.items()) + "\r\n").encode()


class FakeAmi:
    def __init__(self, secret: str = "s3cret") -> None:
        self.secret = secret
        self.answer_pings = True
        self.logins = 0
        self.actions: list[dict[str, str]] = []
        # Action name -> reply fields (ActionID is added); a callable may answer with several blocks.
        self.replies: dict[str, Callable[[dict[str, str]], list[dict[str, str]]]] = {}
        self.silent: set[str] = set()  # actions never answered
        self.writers: list[asyncio.StreamWriter] = []
        self.server: asyncio.Server | None = None
        self.clients: list[Any] = []  # clients the tests made, closed with the server

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    async def close(self) -> None:
        self.drop()
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()

    def drop(self) -> None:
        for w in self.writers:
            w.close()
        self.writers.clear()

    def event(self, fields: dict[str, str]) -> None:
        for w in self.writers:
            w.write(_block(fields))

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writers.append(writer)
        writer.write(b"Asterisk Call Manager/9.0.0\r\n")
        try:
            while True:
                raw = await reader.readuntil(b"\r\n\r\n")
                fields = dict(line.split(": ", 1) for line in raw.decode().strip().split("\r\n") if ": " in line)
                self.actions.append(fields)
                for block in self._answer(fields):
                    writer.write(_block(block))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            if writer in self.writers:
                self.writers.remove(writer)
            writer.close()

    def _answer(self, fields: dict[str, str]) -> list[dict[str, str]]:
        action, aid = fields.get("Action", ""), fields.get("ActionID", "")
        if action in self.silent or (action == "Ping" and not self.answer_pings):
            return []
        if action == "Login":
            if fields.get("Secret") != self.secret:
                return [{"Response": "Error", "ActionID": aid, "Message": "Authentication failed"}]
            self.logins += 1
            return [{"Response": "Success", "ActionID": aid, "Message": "Authentication accepted"}]
        if action == "Ping":
            return [{"Response": "Success", "ActionID": aid, "Ping": "Pong"}]
        if action in self.replies:
            return [{**b, "ActionID": aid} for b in self.replies[action](fields)]
        return [{"Response": "Success", "ActionID": aid, "Message": "OK"}]
