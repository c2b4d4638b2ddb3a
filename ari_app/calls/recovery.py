"""After every (re)connect of the ARI WebSocket: take over what happened while it was down.

ARI drops a disconnected app's events and never repeats a StasisStart, so the app reads
Asterisk's state instead: a call left in Stasis with no controller goes straight to the
operators (never left in silence), a call followed before resyncs its prompt, a call that
ended unseen gets its end written (and, if no person answered, goes on the callback list),
and an incident still open for a live call the app no longer follows is followed again.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, Protocol

from ari_app.ari import events as ev
from ari_app.ari.errors import AriError, AriNotFound
from ari_app.calls.controller import CallController
from ari_app.calls.opening import incident_fields
from ari_app.calls.ports import CallAri, CallStore, PlanSource
from ari_app.storage import StoreUnavailable
from ivr import callbacks
from ivr.menu_events import PromptDone
from ivr.plan import Plan
from ivr.store import RecordStore, now

log = logging.getLogger(__name__)

# The end reason of a call that ended while the app could not see it.
VANISHED = "ended while the app was away from Asterisk"
# ... and of one its node's Asterisk lost: it started again after the call arrived (it was
# killed under it). The cluster's sweeper of a lost node writes the same (cluster/sweep.py).
NODE_LOST = "node_lost"
STASIS = "Stasis"


class RecoveryAri(CallAri, Protocol):
    async def application(self) -> dict[str, Any]: ...

    async def get_channel(self, channel_id: str) -> ev.Channel: ...

    async def started_at(self) -> datetime | None: ...


def vanished_reason(arrived_at: str | None, asterisk_started: datetime | None) -> str:
    """Why a call ended unseen: its Asterisk started after it arrived (lost), or not."""
    if arrived_at and asterisk_started is not None and datetime.fromisoformat(arrived_at) < asterisk_started:
        return NODE_LOST
    return VANISHED


class Reconciler(Protocol):
    async def reconcile(self) -> int: ...


async def take_over(call: CallController, channel: ev.Channel, plan: Plan) -> None:
    """A call found in Stasis after a reconnect with no controller: put it before a person."""
    call.in_stasis = True
    call.plan = plan
    call.called = channel.dialplan_exten or "112"
    call.caller = channel.caller_number
    call.incident = await call.store.by_channel(channel.id)
    if call.incident is None:
        call.incident = await call.store.open_incident(**incident_fields(channel, plan, call.called))
    await call.step("recovered", {"state": channel.state})
    log.warning("[%s] taking over call left in Stasis (incident %d): to the operators", channel.id, call.incident.id)
    await call.subscribe()
    if channel.state != "Up":
        await call.ari.answer(channel.id)
    await call.to_queue(plan.default_queue.name, reason="recovered after app reconnect")


async def resync(call: CallController) -> None:
    """A followed call after a reconnect: a prompt that ended meanwhile lost its event."""
    if call.playback_id is None:
        return
    try:
        playing = await call.ari.playback_exists(call.playback_id, channel_id=call.channel_id)
    except AriError:
        playing = False
    if not playing:
        call.playback_id = None
        await call.feed(PromptDone(), None)


class Recovery:
    """The reconnect sweep of the service: what it reads of the app's live calls."""

    def __init__(self, *, ari: RecoveryAri, store: CallStore, plans: PlanSource, controllers: dict[str, CallController],
                 peers: dict[str, str], new_controller: Callable[[str], CallController], desk: Reconciler,
                 gone: Callable[[ev.ChannelDestroyed], Awaitable[None]], node_name: str = "") -> None:
        self.ari = ari
        self.store = store
        self.plans = plans
        self.controllers = controllers
        self.peers = peers
        self.new_controller = new_controller
        self.desk = desk
        self.gone = gone  # the service's event entry: a vanished call's end goes the usual way
        self.node_name = node_name  # in a cluster: this node's calls only (their channel ids start with it)

    async def on_connect(self) -> None:
        """Take over what happened while the WebSocket was down."""
        info = await self.ari.application()
        in_app = [str(c) for c in info.get("channel_ids", [])]
        for channel_id in in_app:
            await self._found(channel_id)
        try:
            # Before the ends are written: an incident the queue_log shows answered is no callback.
            await self.desk.reconcile()
        except StoreUnavailable as exc:
            log.error("queue_log not reconciled with the incidents: %s", exc)
        await self.close_vanished(set(in_app))

    async def _found(self, channel_id: str) -> None:
        """A channel our app holds: resync its controller, or take it over."""
        controller = self.controllers.get(channel_id)
        if controller is not None:
            await resync(controller)
            return
        if channel_id in self.peers:
            return
        try:
            channel = await self.ari.get_channel(channel_id)
        except AriError:
            return
        if channel.dialplan_app != STASIS:
            # Subscribed but already in the dialplan (queue): only its end is news.
            self.new_controller(channel_id).observe_only()
            return
        controller = self.new_controller(channel_id)
        try:
            await take_over(controller, channel, self.plans.plan_for(""))
        except Exception as exc:
            await controller.fail(exc)

    async def close_vanished(self, in_app: set[str]) -> None:
        """Calls that ended while the app could not see them (it was down, or Asterisk
        restarted) get their end written, so no incident stays open for ever; a call still
        up that the app no longer follows (none should be) is followed again."""
        try:
            started = await self.ari.started_at()
        except AriError:
            started = None
        for channel_id in [c for c in self.controllers if c not in in_app]:
            if not await self.ari.channel_gone(channel_id):
                continue
            log.warning("[%s] the call ended while the app was disconnected from Asterisk", channel_id)
            incident = self.controllers[channel_id].incident
            reason = vanished_reason(incident.arrived_at if incident else None, started)
            await self.gone(ev.ChannelDestroyed(channel=ev.Channel(id=channel_id), cause_txt=reason))
        try:
            open_incidents = await self.store.run(lambda s: s.open_incidents())
        except StoreUnavailable as exc:
            log.error("open incidents not checked against Asterisk's calls: %s", exc)
            return
        for incident in open_incidents:
            channel_id = incident.channel_id
            if channel_id in in_app or channel_id in self.controllers:
                continue
            if self.node_name and not channel_id.startswith(f"{self.node_name}-"):
                continue  # another node's call: its own app (or the cluster's sweeper) ends it
            if await self.ari.channel_gone(channel_id):
                log.warning("[%s] incident %d: the call ended while the app was away; closing it", channel_id, incident.id)
                await self.store.run(functools.partial(close_unseen, incident_id=incident.id,
                                                       reason=vanished_reason(incident.arrived_at, started)))
                continue
            try:
                await self.ari.subscribe(channel_id)
            except AriNotFound:  # it ended just now: the next connect closes it
                continue
            self.new_controller(channel_id).observe_only()


def close_unseen(s: RecordStore, *, incident_id: int, reason: str = VANISHED) -> None:
    """End an incident whose call ended while the app was away; a call no person answered
    (by the record, which the queue_log has just completed) goes on the callback list."""
    incident = s.get(incident_id)
    if incident is None or incident.ended_at:
        return
    s.update(incident_id, ended_at=now(), end_reason=reason)
    if not incident.operator_answered_at and not (incident.route_result or "").startswith("answered by"):
        entry = callbacks.missed(s, incident.caller_number, incident_id)
        if entry is not None:
            s.add_event(incident_id, "callback_listed", {"number": incident.caller_number, "calls": str(entry.calls)})
