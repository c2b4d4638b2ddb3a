"""One CallController per 112 call in Stasis: it feeds ARI events to the pure CallFlow
(ivr.menu) and carries out the actions the flow returns (play, stop, wait, route).

Routing to an agency is the pure `ivr.agency` machine's, carried out on Asterisk by
`agency_leg`; the call's start is in `opening`, the caller's location recording in `voice`,
its end and every error path in `ending`, the take-over after a reconnect in `recovery`.
The controller talks to Asterisk and the store only through the `ports` (CallAri,
CallStore), so unit tests drive it with recorded fakes.

Wazo's habit: any unexpected error is logged with the channel id and the call is handed
to the operators' queue in the dialplan, never left in silence. The incident is written
before the call is answered.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from ari_app.ari import events as ev
from ari_app.ari.errors import AriError
from ari_app.asterisk.layout import Layout
from ari_app.asterisk.render import AGENCY_ENTRY, QUEUE_CONTEXT, QUEUE_PRIORITY
from ari_app.calls import ending, opening, voice
from ari_app.calls.agency_leg import AGENCY_DROP_S, PEER_ARG, AgencyLeg
from ari_app.calls.locating import Locator
from ari_app.calls.ports import (
    CallAri,
    CallStore,
    LocationArrived,
    PeerEvent,
    PeerRegistry,
    PlanSource,
    Poster,
    RecordingEvent,
    TimerFired,
    TrunkSilent,
)
from ari_app.operators.free_operators import RANK, OperatorFree
from ivr.menu import CallFlow
from ivr.menu_events import (
    ANNOUNCEMENT,
    Action,
    Digit,
    EndCall,
    HungUp,
    InputTimeout,
    KecamatanChosen,
    LocationGood,
    PersonFree,
    Play,
    PromptDone,
    RecordingDone,
    RecordVoice,
    Route,
    Spoke,
    State,
    Step,
    StopPlayback,
    StopRecording,
    WaitDigits,
)
from ivr.menu_events import Event as FlowEvent
from ivr.plan import Agency, Plan, Target
from ivr.priority import CallerHistory, queue_priority
from ivr.store import Incident, now

log = logging.getLogger(__name__)

__all__ = [  # what the service and the tests import from here
    "AGENCY_DROP_S", "PEER_ARG", "CallController", "LocationArrived", "PeerEvent", "RecordingEvent", "TimerFired", "TrunkSilent",
]


class CallController:
    def __init__(self, channel_id: str, *, ari: CallAri, store: CallStore, plans: PlanSource, layout: Layout, post: Poster,
                 peers: PeerRegistry, locator: Locator) -> None:
        self.channel_id = channel_id
        self.ari = ari
        self.store = store
        self.plans = plans
        self.layout = layout
        self.post = post
        self.peers = peers
        self.locator = locator
        self.recording_name: str | None = None
        self.tasks: set[asyncio.Task[None]] = set()
        self.plan: Plan | None = None
        self.flow: CallFlow | None = None
        self.incident: Incident | None = None
        self.caller = ""
        self.called = ""
        self.playback_id: str | None = None
        self.timer: asyncio.Task[None] | None = None
        self.timer_token = 0
        self.in_stasis = False
        # Subscribed to the channel: its ChannelDestroyed reaches the app after StasisEnd.
        self.subscribed = False
        self.hangup_cause: int | None = None
        self.ended = False
        self.dial: AgencyLeg | None = None
        self.history = CallerHistory()
        self.announcement_media: str | None = None  # the major-incident message, when one is on
        self.priority = "normal"  # as the flow routed the call
        self.flags: list[str] = []  # facts the flow and the agency dialling found
        self._handlers: dict[type, Callable[[Any], Awaitable[None]]] = {
            ev.StasisStart: self._start, PeerEvent: self._peer, ev.ChannelDtmfReceived: self._dtmf,
            ev.ChannelTalkingStarted: self._talking, ev.PlaybackFinished: self._playback_finished, TimerFired: self._timer_fired,
            ev.RecordingFinished: self._recorded, ev.RecordingFailed: self._recorded, RecordingEvent: self._recorded,
            OperatorFree: self._operator_free, TrunkSilent: self._trunk_silent, LocationArrived: self._location_arrived,
            ev.StasisEnd: self._left, ev.ChannelHangupRequest: self._left, ev.ChannelDestroyed: self._destroyed,
        }

    # ARI events, in order, from the channel dispatcher -----------------------------------

    async def handle(self, event: Any) -> None:
        try:
            handler = self._handlers.get(type(event))
            if handler is not None:
                await handler(event)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            await self.fail(exc)

    async def _start(self, event: ev.StasisStart) -> None:
        entry = event.args[2] if len(event.args) > 2 else ""
        if entry.startswith(AGENCY_ENTRY):
            via = event.args[3] if len(event.args) > 3 else ""
            await opening.back_for_agency(self, event, entry.removeprefix(AGENCY_ENTRY), via=via)
            return
        await opening.open_call(self, event, self.plans.plan_for(event.args[0] if event.args else ""))

    async def _peer(self, event: PeerEvent) -> None:
        if self.dial is None or not await self.dial.peer_event(event.event):
            # A leg we have given up on (caller gone, or a late event): make sure it ends.
            if isinstance(event.event, ev.StasisStart):
                await self.hangup_quietly(event.event.channel.id)

    async def _dtmf(self, event: ev.ChannelDtmfReceived) -> None:
        await self.feed(Digit(event.digit), {"digit": event.digit})

    async def _talking(self, event: ev.ChannelTalkingStarted) -> None:
        if self.flow is not None and not self.flow.spoke:
            await self.step("talking", {})
        await self.feed(Spoke(), None)

    async def _playback_finished(self, event: ev.PlaybackFinished) -> None:
        if event.playback_id == self.playback_id:
            self.playback_id = None
            await self.feed(PromptDone(), None)

    async def _timer_fired(self, event: TimerFired) -> None:
        if event.token != self.timer_token or self.timer is None:
            return  # a timer cancelled or replaced since
        self.timer = None
        if self.flow is not None and self.flow.state is State.RECORDING:
            log.warning("[%s] no end of the caller's recording from Asterisk; going on", self.channel_id)
            await self.feed(RecordingDone(), None)
        else:
            await self.feed(InputTimeout(), None)

    async def _recorded(self, event: ev.RecordingFinished | ev.RecordingFailed | RecordingEvent) -> None:
        await voice.recorded(self, event.event if isinstance(event, RecordingEvent) else event)

    async def _operator_free(self, event: OperatorFree) -> None:
        await self.feed(PersonFree(), None)
        if self.flow is None or not self.flow.person_free:
            self.peers.person_declined(self.channel_id)

    async def _trunk_silent(self, event: TrunkSilent) -> None:
        if self.dial is not None:
            await self.dial.timed_out(event.peer_id)

    async def _location_arrived(self, event: LocationArrived) -> None:
        if event.good and self.flow is not None:
            await self.feed(LocationGood(), None)

    async def _left(self, event: ev.StasisEnd | ev.ChannelHangupRequest) -> None:
        """The call left Stasis, or the caller asked to hang up."""
        if isinstance(event, ev.StasisEnd):
            self.in_stasis = False
        if self.flow is not None and self.flow.state not in (State.ROUTED, State.ENDED):
            await self.feed(HungUp(), None)
        if isinstance(event, ev.ChannelHangupRequest):
            self.hangup_cause = event.cause
            await self.release_agency("caller hung up", caller_gone=True)
        elif not self.subscribed and not self.ended:
            await ending.follow_or_end(self)

    async def _destroyed(self, event: ev.ChannelDestroyed) -> None:
        await self.release_agency("caller hung up", caller_gone=True)
        await ending.ended(self, event.cause_txt or str(event.cause))

    # The menu's actions ------------------------------------------------------------------

    async def subscribe(self) -> None:
        await self.ari.subscribe(self.channel_id)
        self.subscribed = True

    async def feed(self, flow_event: FlowEvent, detail: dict[str, str] | None) -> None:
        if self.flow is None or self.flow.state in (State.ROUTED, State.ENDED):
            return
        if detail is not None:
            await self.step("dtmf", detail)
        await self.run(self.flow.handle(flow_event))

    async def run(self, actions: list[Action]) -> None:
        for action in actions:
            await self._act(action)

    async def _act(self, action: Action) -> None:
        if isinstance(action, Play):
            await self._play(action)
        elif isinstance(action, StopPlayback):
            await self._stop_playback()
        elif isinstance(action, StopRecording):
            await voice.stop_recording(self)
        elif isinstance(action, WaitDigits):
            self.start_timer(action.timeout)
        elif isinstance(action, RecordVoice):
            await voice.record_voice(self, action)
        elif isinstance(action, Step):
            await self.step(action.kind, action.detail)
        elif isinstance(action, KecamatanChosen):
            await opening.keep_kecamatan(self, action.name, action.digits)
        elif isinstance(action, Route):
            self.cancel_timer()
            await self.record(language=action.language)
            self.priority = action.priority
            self.flags.extend(f for f in action.flags if f not in self.flags)
            await self.route(action.target, reason=action.reason)
        elif isinstance(action, EndCall):
            self.cancel_timer()
            await self.step("system_hangup", {"reason": action.reason})
            await self.hangup_quietly(self.channel_id)

    async def _play(self, action: Play) -> None:
        assert self.plan is not None
        media = [f"sound:{self.announcement_media or ''}" if p == ANNOUNCEMENT else f"sound:{self.layout.sound(self.plan.id, action.language, p)}"
                 for p in action.prompts]
        if action.beep_after:
            media.append(f"sound:{self.layout.beep}")
        self.playback_id = await self.ari.play(self.channel_id, media)
        await self.step("prompt", {"prompts": ",".join(action.prompts), "language": action.language})

    async def _stop_playback(self) -> None:
        if self.playback_id is not None:
            playback, self.playback_id = self.playback_id, None
            await self.ari.stop_playback(playback)

    def background(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work, name=f"ivr112-location-{self.channel_id}")
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    # Routing ----------------------------------------------------------------------------

    async def route(self, target: Target, *, reason: str) -> None:
        assert self.plan is not None
        # A prompt still playing would hold the caller out of the agency's bridge.
        await self._stop_playback()
        if target.kind == "agency":
            self.peers.person_declined(self.channel_id)
            await self.dial_agency(self.plan.agencies[target.name], reason)
        else:
            await self.to_queue(target.name, reason=reason)

    async def to_queue(self, queue: str, *, reason: str) -> None:
        plan = self.plan or self.plans.plan_for("")
        exten = plan.asterisk_queue(queue)
        priority = queue_priority(self.priority, self.history, self.flags)
        if self.incident is not None:
            await self.store.update(self.incident.id, queued_at=now(), queue=queue, route=f"queue:{queue}", route_result="queued",
                                    priority=priority, flags=",".join(self.all_flags) or None)
            await self.step("route", {"target": f"queue:{queue}", "reason": reason, "priority": priority})
        try:
            await self.ari.set_variable(self.channel_id, "QUEUE_PRIO", str(QUEUE_PRIORITY[priority]))
        except AriError as exc:  # the queue still takes the call, in arrival order
            log.warning("[%s] queue priority not set: %s", self.channel_id, exc)
        log.info("[%s] to operators' queue %s (%s, %s priority)", self.channel_id, exten, reason, priority)
        await self.ari.continue_in_dialplan(self.channel_id, context=QUEUE_CONTEXT, extension=exten, priority=1)

    async def dial_agency(self, agency: Agency, reason: str) -> None:
        assert self.plan is not None
        self.dial = AgencyLeg(self, self.plan, agency, reason)
        await self.dial.start()

    async def release_agency(self, why: str, *, caller_gone: bool) -> None:
        dial, self.dial = self.dial, None
        if dial is not None:
            await dial.release(why, caller_gone=caller_gone)

    async def hangup_quietly(self, channel_id: str) -> None:
        try:
            await self.ari.hangup(channel_id)
        except AriError as exc:
            log.debug("[%s] hangup of %s: %s", self.channel_id, channel_id, exc)

    # Timers ---------------------------------------------------------------------------

    def start_timer(self, seconds: float) -> None:
        self.cancel_timer()
        self.timer_token += 1
        token = self.timer_token

        async def fire() -> None:
            await asyncio.sleep(seconds)
            self.post(TimerFired(self.channel_id, token))

        self.timer = asyncio.create_task(fire(), name=f"ivr112-timer-{self.channel_id}")

    def cancel_timer(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    # Ends and errors ------------------------------------------------------------------

    async def fail(self, exc: BaseException) -> None:
        """Log the error with the channel id and hand the call to the operators' queue."""
        await ending.fail(self, exc)

    async def close(self) -> None:
        self.cancel_timer()
        if self.dial is not None:
            self.dial.stop_watching()
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)

    # Operators first: what ari_app.operators.free_operators reads ---------------------------------

    @property
    def person_plan(self) -> Plan | None:
        return self.plan

    @property
    def person_rank(self) -> tuple[int, str] | None:
        """(priority rank, arrival) while a free operator may take this caller out of the IVR."""
        flow, incident = self.flow, self.incident
        if flow is None or incident is None or self.dial is not None or self.ended or not flow.may_take_person:
            return None
        priority = queue_priority(self.priority, self.history, self.flags)
        return RANK.get(priority, 1), incident.arrived_at

    @property
    def in_ivr(self) -> bool:
        """The caller is in the voice menu now: in Stasis, not routed, not with an agency."""
        return (not self.ended and self.incident is not None and self.dial is None and self.in_stasis
                and self.flow is not None and self.flow.state not in (State.ROUTED, State.ENDED))

    @property
    def all_flags(self) -> list[str]:
        earlier = [name for name, on in (("redial", self.history.redial), ("prank_flagged", self.history.prank)) if on]
        return earlier + [f for f in self.flags if f not in earlier]

    async def person_answered(self, who: str) -> None:
        """A person (agency) took the call: the number needs no callback."""
        caller = self.caller
        if caller:
            await self.store.write("callback_answered", number=caller, reason=f"answered by {who}")

    def observe_only(self) -> None:
        """This call has left Stasis already (the service subscribed the app to it); on its
        ChannelDestroyed, close its incident."""
        self.in_stasis = False
        self.subscribed = True

    # The incident ----------------------------------------------------------------------

    async def step(self, kind: str, detail: dict[str, str]) -> None:
        """Add an event to the incident (none yet: nothing to write) and tell the walls."""
        if self.incident is not None:
            await self.store.add_event(self.incident.id, kind, detail)
            self.peers.incident_changed(self.incident.id, kind, detail)

    async def record(self, **fields: Any) -> None:
        """Update the incident's row, once there is one."""
        if self.incident is not None:
            await self.store.update(self.incident.id, **fields)
