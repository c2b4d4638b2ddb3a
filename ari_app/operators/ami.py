"""AMI for queue control: panoramisk's protocol and action matching, wrapped so that what
it leaves loose is held here (see ../shared/ASTERISK.md):

- login is confirmed before the client counts as connected, and a refused login is said
  loudly (panoramisk's connect() returns before the login and a failed one raises nothing);
- every action has a timeout; single-reply actions are sent with `as_list=False` (else
  QueueAdd's "Added interface to queue" is taken for the start of a list and never ends);
- a ping watchdog: a Ping with no answer within the action timeout drops the connection
  (panoramisk's own ping never checks for the pong, so a half-open socket goes unnoticed);
- one reconnect loop with backoff owns the connection (panoramisk's own reconnect timer is
  switched off), and `on_login` runs after every login for the caller to resync its state;
- events are handed to `on_event` one at a time, in arrival order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from panoramisk import Manager

from ivr.errors import Ivr112Error

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AmiEvent:
    name: str
    fields: dict[str, str]


class AmiError(Ivr112Error):
    pass


class _Manager(Manager):  # type: ignore[misc]
    """panoramisk's Manager without its own pinger and reconnect timer: the client owns those."""

    def __init__(self, lost: Callable[[], None], **config: Any) -> None:
        super().__init__(**config)
        self._lost = lost

    def ping(self) -> None:  # its pinger is never started (huge ping_delay); keep it inert anyway
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self._connected = False
        self.authenticated = False
        self._lost()


def _fields(message: Any) -> dict[str, str]:
    return {str(k): str(v) for k, v in dict(message).items()}


class AmiClient:
    def __init__(
        self, host: str, port: int, username: str, secret: str, *,
        action_timeout: float = 5.0, ping_interval: float = 10.0, reconnect_max: float = 10.0,
        on_event: Callable[[AmiEvent], Awaitable[None]] | None = None,
        on_login: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.host, self.port = host, port
        self._username, self._secret = username, secret
        self.action_timeout = action_timeout
        self.ping_interval = ping_interval
        self.reconnect_max = reconnect_max
        self.on_event = on_event
        self.on_login = on_login
        self._manager: _Manager | None = None
        self._logged_in = False
        self._lost = asyncio.Event()
        self._up = asyncio.Event()
        self._events: asyncio.Queue[AmiEvent] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self._closing = False

    @property
    def connected(self) -> bool:
        return self._logged_in and self._manager is not None

    async def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._run(), name="ivr112-ami"),
            asyncio.create_task(self._deliver(), name="ivr112-ami-events"),
        ]

    async def wait_connected(self, timeout: float) -> bool:  # noqa: ASYNC109
        try:
            await asyncio.wait_for(self._up.wait(), timeout)
        except TimeoutError:
            return False
        return True

    async def close(self) -> None:
        """Stop reconnecting and end both tasks.

        Before Python 3.12, `asyncio.wait_for` can swallow a cancel that comes just as the
        awaited thing finishes (a connection made at that moment), and the reconnect loop
        would go on for ever; so the loop also checks `_closing`, and the cancel is repeated
        until every task has ended.
        """
        self._closing = True
        pending = [t for t in self._tasks if not t.done()]
        while pending:
            for task in pending:
                task.cancel()
            await asyncio.wait(pending, timeout=1.0)
            pending = [t for t in pending if not t.done()]
        self._tasks = []
        self._drop()

    # Connection -------------------------------------------------------------------------

    def _drop(self) -> None:
        self._logged_in = False
        self._up.clear()
        manager, self._manager = self._manager, None
        if manager is not None:
            with contextlib.suppress(Exception):
                manager.close()

    async def _run(self) -> None:
        delay = 0.2
        while not self._closing:
            try:
                if await self._connect():
                    delay = 0.2
                    await self._watch()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # any failure of one connection: log, back off, again
                log.warning("AMI %s:%d: %r", self.host, self.port, exc)
            self._drop()
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.reconnect_max)

    async def _connect(self) -> bool:
        self._lost = asyncio.Event()
        lost = self._lost
        manager = _Manager(
            lost.set, host=self.host, port=self.port, username=self._username, secret=self._secret,
            ping_delay=10**9, reconnect_timeout=10**9, loop=asyncio.get_running_loop(), log=logging.getLogger("panoramisk"),
        )
        manager.register_event("*", self._queue_event)
        self._manager = manager
        loop = asyncio.get_running_loop()
        try:
            connection = await asyncio.wait_for(
                loop.create_connection(manager.config["protocol_factory"], self.host, self.port), self.action_timeout
            )
        except (OSError, TimeoutError) as exc:
            log.info("AMI %s:%d not reachable: %s", self.host, self.port, exc)
            return False
        # Hand the connection to panoramisk as its own connect() would (it then sends Login).
        made: asyncio.Future[Any] = loop.create_future()
        made.set_result(connection)
        manager.connection_made(made)
        future = manager.authenticated_future
        if future is None:
            return False
        try:
            reply = await asyncio.wait_for(asyncio.shield(future), self.action_timeout)
        except TimeoutError:
            log.error("AMI %s:%d: no answer to the login", self.host, self.port)
            return False
        if not getattr(reply, "success", False):
            log.error(
                "AMI login as %r refused by %s:%d (%s); the AMI secret in var/secrets.yaml and Asterisk's manager.conf "
                "must match: run `ivr112 asterisk configure` and reload Asterisk",
                self._username, self.host, self.port, getattr(reply, "message", reply),
            )
            return False
        self._logged_in = True
        self._up.set()
        log.info("AMI connected to %s:%d", self.host, self.port)
        if self.on_login is not None:
            try:
                await self.on_login()
            except AmiError as exc:
                # Asterisk still booting (app_queue not answering yet) or the link broke: a
                # board left unsynced would stay wrong, so reconnect and resync again.
                log.error("AMI: resync after login failed (%s); reconnecting to resync", exc)
                return False
            except Exception as exc:
                log.error("AMI: resync after login failed: %r", exc)
        return True

    async def _watch(self) -> None:
        """Until the connection is lost or a Ping goes unanswered."""
        while not self._lost.is_set():
            try:
                await asyncio.wait_for(self._lost.wait(), self.ping_interval)
                break
            except TimeoutError:
                pass
            try:
                await self.action("Ping")
            except AmiError as exc:
                log.error("AMI %s:%d stopped answering (%s); reconnecting", self.host, self.port, exc)
                return
        log.warning("AMI connection to %s:%d lost; reconnecting", self.host, self.port)

    # Events -----------------------------------------------------------------------------

    def _queue_event(self, manager: Any, message: Any) -> None:
        if manager is not self._manager:
            return
        fields = _fields(message)
        name = fields.pop("Event", "")
        self._events.put_nowait(AmiEvent(name, fields))

    async def _deliver(self) -> None:
        while True:
            event = await self._events.get()
            if self.on_event is None:
                continue
            try:
                await self.on_event(event)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.error("AMI event %s not handled: %r", event.name, exc)

    # Actions ----------------------------------------------------------------------------

    async def _send(self, name: str, fields: Mapping[str, str | list[str]], *, as_list: bool) -> Any:
        manager = self._manager
        if not self.connected or manager is None:
            raise AmiError(f"AMI {name}: not connected to Asterisk")
        try:
            return await asyncio.wait_for(manager.send_action({"Action": name, **fields}, as_list=as_list), self.action_timeout)
        except TimeoutError:
            raise AmiError(f"AMI {name}: no answer within {self.action_timeout:g} s") from None
        except (OSError, AttributeError) as exc:
            raise AmiError(f"AMI {name}: {exc}") from exc

    async def action(self, name: str, **fields: str | list[str]) -> dict[str, str]:
        """Send one action; a list value is sent as that many headers of the name (Variable)."""
        reply = await self._send(name, fields, as_list=False)
        if isinstance(reply, list):
            reply = reply[0] if reply else {}
        out = _fields(reply)
        if out.get("Response", "").lower() in ("error", "fail", "failure"):
            raise AmiError(f"AMI {name} failed: {out.get('Message', 'error')}")
        return out

    async def action_list(self, name: str, complete_event: str, **fields: str) -> list[dict[str, str]]:
        replies = await self._send(name, fields, as_list=True)
        items = [_fields(r) for r in (replies if isinstance(replies, list) else [replies])]
        if items and items[0].get("Response", "").lower() == "error":
            raise AmiError(f"AMI {name} failed: {items[0].get('Message', 'error')}")
        return [i for i in items if i.get("Event") and i.get("Event") != complete_event]

    async def queue_add(self, queue: str, interface: str, *, member_name: str = "", state_interface: str = "",
                        penalty: int = 0, paused: bool = False, reason: str = "") -> None:
        fields = {"Queue": queue, "Interface": interface, "Penalty": str(penalty), "Paused": "true" if paused else "false"}
        if member_name:
            fields["MemberName"] = member_name
        if state_interface:
            fields["StateInterface"] = state_interface
        if reason:
            fields["Reason"] = reason
        await self.action("QueueAdd", **fields)

    async def queue_remove(self, queue: str, interface: str) -> None:
        await self.action("QueueRemove", Queue=queue, Interface=interface)

    async def queue_pause(self, interface: str, paused: bool, *, queue: str = "", reason: str = "") -> None:
        fields = {"Interface": interface, "Paused": "true" if paused else "false"}
        if queue:
            fields["Queue"] = queue
        if reason:
            fields["Reason"] = reason
        await self.action("QueuePause", **fields)

    async def queue_status(self, queue: str = "") -> tuple[list[dict[str, str]], list[dict[str, str]]]:
        fields = {"Queue": queue} if queue else {}
        items = await self.action_list("QueueStatus", "QueueStatusComplete", **fields)
        return [i for i in items if i.get("Event") == "QueueMember"], [i for i in items if i.get("Event") == "QueueEntry"]

    async def redirect(self, channel: str, context: str, exten: str, priority: int = 1, *, extra_channel: str = "",
                       extra_context: str = "", extra_exten: str = "", extra_priority: int = 1) -> None:
        fields = {"Channel": channel, "Context": context, "Exten": exten, "Priority": str(priority)}
        if extra_channel:
            fields.update(ExtraChannel=extra_channel, ExtraContext=extra_context or context, ExtraExten=extra_exten or exten,
                          ExtraPriority=str(extra_priority))
        await self.action("Redirect", **fields)

    async def setvar(self, channel: str, variable: str, value: str) -> None:
        await self.action("Setvar", Channel=channel, Variable=variable, Value=value)
