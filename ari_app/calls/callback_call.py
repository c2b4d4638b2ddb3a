"""One operator's callback to a caller who dropped: the operator's softphone rings first;
when the operator answers, the app dials the caller through the carrier with the service
number (112) as caller id, and bridges and records the two.

The callback list (ivr.callbacks) refuses a second callback to the same number while one
is being placed; this call closes the entry when the caller answers and leaves it open
(one more attempt counted) when they do not.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from ari_app.ari import events as ev
from ari_app.ari.client import AriClient
from ari_app.ari.errors import AriError
from ari_app.asterisk.layout import Layout
from ari_app.asterisk.render import operator_interface
from ari_app.storage import AsyncStore
from ivr.store import now

log = logging.getLogger(__name__)

CALLBACK_ARG = "ivr112-callback"
OPERATOR_RING_S = 30
CALLER_RING_S = 45


class CallbackCall:
    def __init__(
        self, *, number: str, operator: str, dial: str, service_number: str, incident_id: int | None,
        ari: AriClient, store: AsyncStore, layout: Layout, done: Callable[[CallbackCall], Awaitable[None]],
    ) -> None:
        self.number = number
        self.operator = operator
        self.dial = dial  # PJSIP/<number>@<carrier endpoint>
        self.service_number = service_number
        self.incident_id = incident_id
        self.ari = ari
        self.store = store
        self.layout = layout
        self.done = done
        key = uuid.uuid4().hex[:12]
        self.operator_channel = f"cb-{key}-op"
        self.caller_channel = f"cb-{key}-out"
        self.bridge_id = f"cb-{key}-bridge"
        self.operator_up = False
        self.caller_up = False
        self.finished = False

    @property
    def channels(self) -> tuple[str, str]:
        return (self.operator_channel, self.caller_channel)

    async def place(self) -> None:
        """Ring the operator's softphone; the rest follows from their answer."""
        await self._event("callback_started", {"number": self.number, "operator": self.operator})
        await self.ari.originate(
            operator_interface(self.operator), app=self.ari.app, app_args=f"{CALLBACK_ARG},{self.operator_channel}",
            caller_id=f'"Panggilan balik" <{self.number}>', timeout_s=OPERATOR_RING_S, channel_id=self.operator_channel,
        )

    async def handle(self, event: Any) -> None:
        try:
            await self._handle(event)
        except AriError as exc:
            log.error("callback to %s: %s", self.number, exc)
            await self._finish(connected=False, why=f"error: {exc}")

    async def _handle(self, event: Any) -> None:
        channel = getattr(event, "channel_id", None)
        if isinstance(event, ev.StasisStart):
            if channel == self.operator_channel and not self.operator_up:
                self.operator_up = True
                log.info("callback to %s: operator %s answered, dialling the caller", self.number, self.operator)
                await self.ari.originate(
                    self.dial, app=self.ari.app, app_args=f"{CALLBACK_ARG},{self.caller_channel}",
                    caller_id=f'"{self.service_number}" <{self.service_number}>', timeout_s=CALLER_RING_S,
                    channel_id=self.caller_channel, originator=self.operator_channel,
                )
            elif channel == self.caller_channel and not self.caller_up:
                self.caller_up = True
                await self.ari.create_bridge("mixing", self.bridge_id)
                await self.ari.add_channel(self.bridge_id, self.operator_channel)
                await self.ari.add_channel(self.bridge_id, self.caller_channel)
                await self.store.write("callback_finish", number=self.number, connected=True)
                await self._event("callback_connected", {"number": self.number, "operator": self.operator})
                await self._record()
                log.info("callback to %s connected with operator %s", self.number, self.operator)
        elif isinstance(event, (ev.ChannelDestroyed, ev.StasisEnd, ev.ChannelHangupRequest)):
            if channel == self.caller_channel and not self.caller_up:
                cause = getattr(event, "cause_txt", "") or "no answer"
                await self._finish(connected=False, why=f"caller did not answer ({cause})")
            elif channel == self.operator_channel and not self.operator_up:
                await self._finish(connected=False, why="operator did not answer")
            else:
                await self._finish(connected=self.caller_up, why="hung up")

    async def _record(self) -> None:
        if self.incident_id is None:
            return
        name = f"callback-{self.incident_id}-{self.caller_channel}"
        path = f"{self.layout.recordings}/{name}.wav"
        incident_id = self.incident_id
        try:
            await self.ari.record_bridge(self.bridge_id, name, "wav", "overwrite")
            await self.store.write("add_recording", incident_id, kind="callback", name=name, path=path, at=now())
        except AriError as exc:  # the call matters more than its recording
            log.error("callback to %s not recorded: %s", self.number, exc)

    async def _finish(self, *, connected: bool, why: str) -> None:
        if self.finished:
            return
        self.finished = True
        if not connected:
            await self.store.write("callback_finish", number=self.number, connected=False, detail=why)
            await self._event("callback_failed", {"number": self.number, "operator": self.operator, "why": why})
            log.info("callback to %s did not connect: %s", self.number, why)
        for channel in self.channels:
            try:
                await self.ari.hangup(channel)
            except AriError:
                pass
        try:
            await self.ari.destroy_bridge(self.bridge_id)
        except AriError:
            pass
        await self.done(self)

    async def _event(self, kind: str, detail: dict[str, str]) -> None:
        if self.incident_id is not None:
            await self.store.add_event(self.incident_id, kind, detail)
