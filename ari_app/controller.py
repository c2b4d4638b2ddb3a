"""One CallController per 112 call in Stasis: it feeds ARI events to the pure CallFlow
and carries out the actions the flow returns (play, stop, wait, route).

Wazo's habit: any unexpected error is logged with the channel id and the call is handed
to the fallback dialplan (greeting skipped, straight to the operators' queue), never
left in silence. The incident is written before the call is answered.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any, Protocol

from ari_app.ari import events as ev
from ari_app.ari.client import AriClient
from ari_app.ari.errors import AriError
from ari_app.asterisk.layout import Layout
from ari_app.asterisk.render import QUEUE_CONTEXT
from ari_app.storage import AsyncStore
from ivr.menu import (
    Action,
    CallFlow,
    Digit,
    HungUp,
    InputTimeout,
    Play,
    PromptDone,
    Route,
    State,
    Step,
    StopPlayback,
    WaitDigits,
)
from ivr.menu import Event as FlowEvent
from ivr.plan import Plan
from ivr.store import Incident, now

log = logging.getLogger(__name__)

FALLBACK_CONTEXT = "ivr112-fallback"


@dataclass(frozen=True)
class TimerFired:
    """A WaitDigits timeout ran out; `token` tells a stale timer from the current one."""

    channel_id: str
    token: int
    type: str = "ivr112.TimerFired"


class Poster(Protocol):
    def __call__(self, event: Any) -> None: ...


class PlanSource(Protocol):
    def plan_for(self, plan_id: str) -> Plan: ...


class CallController:
    def __init__(
        self,
        channel_id: str,
        *,
        ari: AriClient,
        store: AsyncStore,
        plans: PlanSource,
        layout: Layout,
        post: Poster,
    ) -> None:
        self.channel_id = channel_id
        self.ari = ari
        self.store = store
        self.plans = plans
        self.layout = layout
        self.post = post
        self.flow: CallFlow | None = None
        self.incident: Incident | None = None
        self.called = ""
        self.playback_id: str | None = None
        self.timer: asyncio.Task[None] | None = None
        self.timer_token = 0
        self.in_stasis = False
        self.ended = False

    # ARI events, in order, from the channel dispatcher -----------------------------------

    async def handle(self, event: Any) -> None:
        try:
            await self._handle(event)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            await self.fail(exc)

    async def _handle(self, event: Any) -> None:
        if isinstance(event, ev.StasisStart):
            await self._start(event)
        elif isinstance(event, ev.ChannelDtmfReceived):
            await self._feed(Digit(event.digit), {"digit": event.digit})
        elif isinstance(event, ev.PlaybackFinished):
            if event.playback_id == self.playback_id:
                self.playback_id = None
                await self._feed(PromptDone(), None)
        elif isinstance(event, TimerFired):
            if event.token == self.timer_token and self.timer is not None:
                self.timer = None
                await self._feed(InputTimeout(), None)
        elif isinstance(event, ev.StasisEnd):
            self.in_stasis = False
            if self.flow is not None and self.flow.state not in (State.ROUTED, State.ENDED):
                await self._feed(HungUp(), None)
        elif isinstance(event, ev.ChannelHangupRequest):
            if self.flow is not None and self.flow.state not in (State.ROUTED, State.ENDED):
                await self._feed(HungUp(), None)
        elif isinstance(event, ev.ChannelDestroyed):
            await self._ended(event.cause_txt or str(event.cause))

    async def _start(self, event: ev.StasisStart) -> None:
        ch = event.channel
        plan_id = event.args[0] if event.args else ""
        self.called = event.args[1] if len(event.args) > 1 else ch.dialplan_exten
        plan = self.plans.plan_for(plan_id)
        self.in_stasis = True
        # The incident first: whatever fails after this, the call is on record.
        self.incident = await self.store.open_incident(
            channel_id=ch.id,
            plan_id=plan.id,
            caller_number=ch.caller_number,
            called_number=self.called,
            carrier=ch.name.split("/", 1)[-1].rsplit("-", 1)[0],
            language=plan.default_language,
        )
        log.info("[%s] incident %d: call from %r to %s", ch.id, self.incident.id, ch.caller_number, self.called)
        # Hang-up events must reach us after the call has left Stasis for the queue.
        await self.ari.request("POST", f"/applications/{self.ari.app}/subscription", params={"eventSource": f"channel:{ch.id}"}, channel_id=ch.id)
        await self.ari.answer(ch.id)
        await self.store.update(self.incident.id, answered_at=now())
        self.flow = CallFlow(plan, language=ch.language if ch.language in plan.languages else None)
        await self._run(self.flow.start())

    async def _feed(self, flow_event: FlowEvent, detail: dict[str, str] | None) -> None:
        if self.flow is None or self.flow.state in (State.ROUTED, State.ENDED):
            return
        if detail is not None and self.incident is not None:
            await self.store.add_event(self.incident.id, "dtmf", detail)
        await self._run(self.flow.handle(flow_event))

    async def _run(self, actions: list[Action]) -> None:
        for action in actions:
            if isinstance(action, Play):
                media = [f"sound:{self.layout.sound(action.language, p)}" for p in action.prompts]
                self.playback_id = await self.ari.play(self.channel_id, media)
                await self._event("prompt", {"prompts": ",".join(action.prompts), "language": action.language})
            elif isinstance(action, StopPlayback):
                if self.playback_id is not None:
                    playback, self.playback_id = self.playback_id, None
                    await self.ari.stop_playback(playback)
            elif isinstance(action, WaitDigits):
                self._start_timer(action.timeout)
            elif isinstance(action, Step):
                await self._event(action.kind, action.detail)
            elif isinstance(action, Route):
                self._cancel_timer()
                await self._route(action)

    async def _route(self, route: Route) -> None:
        target = route.target
        if target.kind == "queue":
            await self.to_queue(target.name, reason=route.reason)
            return
        # Agencies come with the plan's trunks; until a call can be dialled, a person takes it.
        plan = self.flow.plan if self.flow else None
        queue = plan.default_queue.name if plan else ""
        await self._event("route_unavailable", {"target": str(target), "reason": "agency routing not available"})
        await self.to_queue(queue, reason=f"{route.reason}; {target} not reachable")

    async def to_queue(self, queue: str, *, reason: str) -> None:
        if self.incident is not None:
            await self.store.update(self.incident.id, queued_at=now(), queue=queue, route=f"queue:{queue}", route_result="queued")
            await self._event("route", {"target": f"queue:{queue}", "reason": reason})
        log.info("[%s] to operators' queue %s (%s)", self.channel_id, queue, reason)
        await self.ari.continue_in_dialplan(self.channel_id, context=QUEUE_CONTEXT, extension=queue, priority=1)

    # Timers ---------------------------------------------------------------------------

    def _start_timer(self, seconds: float) -> None:
        self._cancel_timer()
        self.timer_token += 1
        token = self.timer_token

        async def fire() -> None:
            await asyncio.sleep(seconds)
            self.post(TimerFired(self.channel_id, token))

        self.timer = asyncio.create_task(fire(), name=f"ivr112-timer-{self.channel_id}")

    def _cancel_timer(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    # Ends, errors, recovery -------------------------------------------------------------

    async def _ended(self, cause: str) -> None:
        self._cancel_timer()
        if self.ended:
            return
        self.ended = True
        await self._load_incident()
        if self.flow is not None and self.flow.state not in (State.ROUTED, State.ENDED):
            self.flow.handle(HungUp())
        if self.incident is not None:
            await self.store.update(self.incident.id, ended_at=now(), end_reason=cause)
            log.info("[%s] incident %d ended: %s", self.channel_id, self.incident.id, cause)

    async def fail(self, exc: BaseException) -> None:
        """Log the error with the channel id and hand the call to the fallback dialplan."""
        self._cancel_timer()
        log.error("[%s] call controller error, sending the call to the fallback: %r", self.channel_id, exc)
        if self.incident is not None:
            try:
                await self.store.update(self.incident.id, fallback=1)
                await self._event("error", {"error": repr(exc)[:500]})
            except Exception as store_exc:  # the store failing must not stop the fallback
                log.error("[%s] could not record the error: %r", self.channel_id, store_exc)
        if not self.in_stasis or self.ended:
            return
        try:
            await self.ari.continue_in_dialplan(self.channel_id, context=FALLBACK_CONTEXT, extension=self.called or "112", priority=1)
        except AriError as ari_exc:
            log.error("[%s] fallback failed too (the channel may be gone): %s", self.channel_id, ari_exc)

    async def take_over(self, channel: ev.Channel, plan: Plan) -> None:
        """A call found in Stasis after a reconnect with no controller: put it before a person."""
        self.in_stasis = True
        self.called = channel.dialplan_exten or "112"
        self.incident = await self.store.by_channel(channel.id)
        if self.incident is None:
            self.incident = await self.store.open_incident(
                channel_id=channel.id, plan_id=plan.id, caller_number=channel.caller_number, called_number=self.called
            )
        await self._event("recovered", {"state": channel.state})
        log.warning("[%s] taking over call left in Stasis (incident %d): to the operators", channel.id, self.incident.id)
        await self.ari.request("POST", f"/applications/{self.ari.app}/subscription", params={"eventSource": f"channel:{channel.id}"}, channel_id=channel.id)
        if channel.state != "Up":
            await self.ari.answer(channel.id)
        await self.to_queue(plan.default_queue.name, reason="recovered after app reconnect")

    def observe_only(self) -> None:
        """This call has left Stasis already; on its ChannelDestroyed, close its incident."""
        self.in_stasis = False

    async def _load_incident(self) -> None:
        if self.incident is None:
            self.incident = await self.store.by_channel(self.channel_id)

    async def resync(self) -> None:
        """After a WebSocket reconnect: events may have been lost while it was down."""
        if self.playback_id is not None:
            try:
                await self.ari.request("GET", f"/playbacks/{self.playback_id}", channel_id=self.channel_id)
            except AriError:
                self.playback_id = None
                await self._feed(PromptDone(), None)

    async def close(self) -> None:
        self._cancel_timer()

    async def _event(self, kind: str, detail: dict[str, str]) -> None:
        if self.incident is not None:
            await self.store.add_event(self.incident.id, kind, detail)
