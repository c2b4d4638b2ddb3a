"""One CallController per 112 call in Stasis: it feeds ARI events to the pure CallFlow
and carries out the actions the flow returns (play, stop, wait, route).

Routing to an agency is done here: its trunks are dialled in order from the app (the
caller's number passed on), the answering trunk is bridged with the caller in a mixing
bridge that is recorded, and when every trunk fails the agency's on_failure rule takes
the caller to a person. Every step is written on the incident.

Wazo's habit: any unexpected error is logged with the channel id and the call is handed
to the operators' queue in the dialplan, never left in silence. The incident is written
before the call is answered.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from ari_app.ari import events as ev
from ari_app.ari.client import AriClient
from ari_app.ari.errors import AriError, AriNotFound, AriUnprocessable
from ari_app.asterisk.layout import Layout
from ari_app.asterisk.render import AGENCY_ENTRY, QUEUE_CONTEXT, QUEUE_PRIORITY, call_recording_name, trunk_dial
from ari_app.calls.hep import LEG_HEADER, LegProgress
from ari_app.calls.locating import Locator, dereference, since
from ari_app.operators.free_operators import RANK, OperatorFree
from ivr import callbacks, classify, trunks
from ivr.location import Location
from ivr.menu import (
    ANNOUNCEMENT,
    Action,
    CallFlow,
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
from ivr.menu import Event as FlowEvent
from ivr.plan import Agency, Plan, Target
from ivr.priority import CallerHistory, queue_priority
from ivr.store import Incident, now

log = logging.getLogger(__name__)

PEER_ARG = "agency"

# An agency leg that hangs up this soon after answering has not taken the call (an SBC
# that answers and drops, a trunk with no one behind it): the caller goes on to the next
# trunk or the agency's on_failure, as if that trunk had not answered at all.
AGENCY_DROP_S = 3.0

# The end reason of a call whose caller hung up before the app could subscribe to it.
GONE_BEFORE_FOLLOWED = "hung up before the app could follow the call"

SERVICE_HEADER = "X-Ivr112-Service-Number"
INCIDENT_HEADER = "X-Ivr112-Incident"


@dataclass(frozen=True)
class TimerFired:
    """A WaitDigits timeout ran out; `token` tells a stale timer from the current one."""

    channel_id: str
    token: int
    type: str = "ivr112.TimerFired"


@dataclass(frozen=True)
class TrunkSilent:
    """An agency trunk leg's response_timeout ran out; the controller checks whether the
    trunk answered the INVITE at all."""

    channel_id: str
    peer_id: str
    type: str = "ivr112.TrunkSilent"


@dataclass(frozen=True)
class LocationArrived:
    """A position for this call came from outside the call (AML); `good` if precise enough."""

    channel_id: str
    good: bool
    type: str = "ivr112.LocationArrived"


@dataclass(frozen=True)
class RecordingEvent:
    """A recording's end, delivered on the channel that asked for it (Asterisk's event may
    not name the channel, so the app routes it by the recording's name)."""

    channel_id: str
    event: Any
    type: str = "ivr112.RecordingEvent"


@dataclass(frozen=True)
class PeerEvent:
    """An event of the agency leg, delivered in order on the caller's channel."""

    channel_id: str
    event: Any
    type: str = "ivr112.PeerEvent"


class Poster(Protocol):
    def __call__(self, event: Any) -> None: ...


class PlanSource(Protocol):
    def plan_for(self, plan_id: str) -> Plan: ...


class PeerRegistry(Protocol):
    """What the app keeps across calls: agency legs, and live calls by number (for AML)."""

    def claim_peer(self, peer_id: str, caller_id: str) -> None: ...

    def call_started(self, number: str, channel_id: str) -> None: ...

    def call_ended(self, number: str, channel_id: str) -> None: ...

    def recording_started(self, name: str, channel_id: str) -> None: ...

    def incident_changed(self, incident_id: int, kind: str, detail: dict[str, str]) -> None: ...

    def announcement_sound(self, language: str) -> str | None: ...

    def person_wanted(self) -> None:
        """A caller may take a free operator now (operators_first): look for one."""

    def person_declined(self, channel_id: str) -> None:
        """This caller will not use the operator promised to it."""

    def leg_progress(self, leg_id: str) -> LegProgress | None: ...


@dataclass
class AgencyDial:
    """The state of dialling one agency for one caller."""

    plan: Plan
    agency: Agency
    reason: str
    index: int = 0
    peer_id: str | None = None
    answered: bool = False
    answered_at: float = 0.0  # time.monotonic() of the answer
    bridge_id: str | None = None
    tried: list[str] = field(default_factory=list)
    rang: bool = False  # the current trunk's leg rang (180)
    silent: asyncio.Task[None] | None = None  # its response_timeout


class CallController:
    def __init__(
        self,
        channel_id: str,
        *,
        ari: AriClient,
        store: Any,
        plans: PlanSource,
        layout: Layout,
        post: Poster,
        peers: PeerRegistry,
        locator: Locator,
    ) -> None:
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
        self.dial: AgencyDial | None = None
        self.history = CallerHistory()
        self.announcement_media: str | None = None  # the major-incident message, when one is on
        self.priority = "normal"  # as the flow routed the call
        self.flags: list[str] = []  # facts the flow and the agency dialling found

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
        elif isinstance(event, PeerEvent):
            await self._peer(event.event)
        elif isinstance(event, ev.ChannelDtmfReceived):
            await self._feed(Digit(event.digit), {"digit": event.digit})
        elif isinstance(event, ev.ChannelTalkingStarted):
            if self.flow is not None and not self.flow.spoke:
                await self._event("talking", {})
            await self._feed(Spoke(), None)
        elif isinstance(event, ev.PlaybackFinished):
            if event.playback_id == self.playback_id:
                self.playback_id = None
                await self._feed(PromptDone(), None)
        elif isinstance(event, TimerFired):
            if event.token == self.timer_token and self.timer is not None:
                self.timer = None
                if self.flow is not None and self.flow.state is State.RECORDING:
                    log.warning("[%s] no end of the caller's recording from Asterisk; going on", self.channel_id)
                    await self._feed(RecordingDone(), None)
                else:
                    await self._feed(InputTimeout(), None)
        elif isinstance(event, (ev.RecordingFinished, ev.RecordingFailed)):
            await self._recorded(event)
        elif isinstance(event, RecordingEvent):
            await self._recorded(event.event)
        elif isinstance(event, OperatorFree):
            await self._feed(PersonFree(), None)
            if self.flow is None or not self.flow.person_free:
                self.peers.person_declined(self.channel_id)
        elif isinstance(event, TrunkSilent):
            await self._trunk_silent(event.peer_id)
        elif isinstance(event, LocationArrived):
            if event.good and self.flow is not None:
                await self._feed(LocationGood(), None)
        elif isinstance(event, (ev.StasisEnd, ev.ChannelHangupRequest)):
            if isinstance(event, ev.StasisEnd):
                self.in_stasis = False
            if self.flow is not None and self.flow.state not in (State.ROUTED, State.ENDED):
                await self._feed(HungUp(), None)
            if isinstance(event, ev.ChannelHangupRequest):
                self.hangup_cause = event.cause
                await self._release_agency("caller hung up")
            elif not self.subscribed and not self.ended:
                await self._follow_or_end()
        elif isinstance(event, ev.ChannelDestroyed):
            await self._release_agency("caller hung up")
            await self._ended(event.cause_txt or str(event.cause))

    async def _start(self, event: ev.StasisStart) -> None:
        ch = event.channel
        plan_id = event.args[0] if event.args else ""
        entry = event.args[2] if len(event.args) > 2 else ""
        if entry.startswith(AGENCY_ENTRY):
            await self._start_agency(event, entry.removeprefix(AGENCY_ENTRY), via=event.args[3] if len(event.args) > 3 else "")
            return
        self.called = event.args[1] if len(event.args) > 1 else ch.dialplan_exten
        self.caller = ch.caller_number
        plan = self.plan = self.plans.plan_for(plan_id)
        self.in_stasis = True
        # The incident first: whatever fails after this, the call is on record. The plan's
        # dialplan answered the call before Stasis; the answer here (a no-op then) covers a
        # channel that reached us another way, beside the incident's first write so that it
        # never waits on the store's fsyncs (synchronous=FULL).
        outcome = await asyncio.gather(
            self.store.open_incident(
                channel_id=ch.id,
                plan_id=plan.id,
                caller_number=ch.caller_number,
                called_number=self.called,
                carrier=ch.name.split("/", 1)[-1].rsplit("-", 1)[0],
                language=plan.default_language,
                # From the INVITE's arrival: the dialplan's Answer() waits up to 0.5 s for media
                # before Stasis, and the 15 s the centre is judged by start at the INVITE.
                **({"arrived_at": ch.created_at} if ch.created_at else {}),
            ),
            self.ari.answer(ch.id),
            return_exceptions=True,
        )
        opened, answer_result = outcome
        if isinstance(opened, BaseException):
            raise opened
        self.incident = opened
        if isinstance(answer_result, BaseException):
            raise answer_result
        log.info("[%s] incident %d: call from %r to %s (plan %s)", ch.id, self.incident.id, ch.caller_number, self.called, plan.id)
        await self.store.update(self.incident.id, answered_at=now())
        await self._keep_call_recording()
        self.peers.call_started(self.caller, ch.id)
        # Hang-up events must reach us after the call has left Stasis for the queue.
        await self._subscribe(ch.id)
        history = await self._history(plan)
        language = ch.language if ch.language in plan.languages else None
        self.announcement_media = self.peers.announcement_sound(language or plan.default_language)
        self.flow = CallFlow(plan, language=language, prank=history.prank, announcement=self.announcement_media is not None)
        await self._talk_detect()
        good = await self._locate_at_start(plan)
        if good:
            self.flow.handle(LocationGood())
        await self._run(self.flow.start())
        if plan.operators_first.enabled:
            self.peers.person_wanted()

    async def _start_agency(self, event: ev.StasisStart, name: str, *, via: str) -> None:
        """The caller is back from the dialplan for an agency: the queue overflowed to it, or
        an operator transferred the call. The app dials it as from the menu, so the incident
        says which trunk answered (or why none did) and a dead trunk is left at once."""
        ch = event.channel
        self.in_stasis = True
        plan = self.plan = self.plan or self.plans.plan_for(event.args[0] if event.args else "")
        # Read again: the queue, the operator and the transfer were written since the start.
        self.incident = await self.store.by_channel(ch.id)
        if self.incident is None:
            # A call the app never met: it came while the app was away and the fallback queued it.
            self.caller = ch.caller_number
            self.incident = await self.store.open_incident(
                channel_id=ch.id, plan_id=plan.id, caller_number=ch.caller_number, called_number=next(iter(plan.numbers), ""),
                carrier=ch.name.split("/", 1)[-1].rsplit("-", 1)[0], language=plan.default_language,
            )
            await self._event("recovered", {"state": ch.state, "via": via or "transfer"})
        self.caller = self.caller or self.incident.caller_number
        self.called = self.called or self.incident.called_number
        if not self.subscribed:
            await self._subscribe(ch.id)
        if via == "overflow":
            queue = self.incident.queue or plan.default_queue.name
            reason = f"overflow from queue {queue}"
            await self._event("overflow", {"queue": queue, "agency": name})
        else:  # the transfer itself is on the incident already (API or softphone)
            reason = f"transfer by operator {self.incident.operator}" if self.incident.operator else "transfer"
        agency = plan.agencies.get(name)
        if agency is None:  # the plan was reloaded without it: never strand the caller
            log.error("[%s] agency %r is not in plan %s; to the operators", ch.id, name, plan.id)
            await self.to_queue(plan.default_queue.name, reason=f"agency {name} unknown")
            return
        log.info("[%s] incident %d: %s to agency %s", ch.id, self.incident.id, reason, name)
        await self._dial_agency(agency, reason)

    async def _keep_call_recording(self) -> None:
        """The dialplan's MixMonitor records the caller's channel from before Stasis to the
        hang-up (operator, agency and transfers included); the incident names its file."""
        assert self.incident is not None
        name = call_recording_name(self.channel_id)
        path = f"{self.layout.recordings}/{name}.wav"
        incident_id = self.incident.id
        await self.store.run(lambda s: s.add_recording(incident_id, kind="call", name=name, path=path))
        await self._event("recording", {"name": name, "path": path, "kind": "call"})

    async def _history(self, plan: Plan) -> CallerHistory:
        """What earlier calls from this number say: a redial after a dropped call, a prank flag."""
        assert self.incident is not None
        caller, incident_id = self.caller, self.incident.id
        minutes = plan.priority.redial_minutes
        redial = bool(caller) and minutes > 0 and await self.store.run(
            lambda s: callbacks.redial(s, caller, since=since(minutes=minutes))
        )
        prank = bool(plan.prank.prompt) and await self.store.run(lambda s: classify.prank_flagged(s, caller, plan.prank))
        self.history = CallerHistory(redial=redial, prank=prank)
        flags = [name for name, on in (("redial", redial), ("prank_flagged", prank)) if on]
        if flags:
            await self.store.update(incident_id, flags=",".join(flags))
            await self._event("caller_history", {"flags": ",".join(flags)})
        return self.history

    async def _talk_detect(self) -> None:
        """Ask Asterisk to say when the caller talks: a silent caller is one who never does."""
        try:
            await self.ari.set_variable(self.channel_id, "TALK_DETECT(set)", "")
        except AriError as exc:
            log.warning("[%s] no talk detection (silent-caller check uses keys only): %s", self.channel_id, exc)

    async def _locate_at_start(self, plan: Plan) -> bool:
        """What the INVITE and earlier messages say of where the caller is; True if precise enough.

        A failure here costs the call nothing: it is logged and the call goes on.
        """
        assert self.incident is not None
        incident_id = self.incident.id
        good = False
        try:
            found = await self.locator.from_invite(self.ari, self.channel_id)
            found += await self.locator.pending_aml(incident_id, self.caller, plan)
            for location in found:
                await self.locator.keep(incident_id, location, plan)
                good = good or self.locator.is_good(location, plan)
            if plan.location.dereference:
                for ref in [loc for loc in found if loc.source == "reference" and loc.uri]:
                    self._background(self._fetch_reference(ref.uri, plan))
            hint = await self.locator.repeat_hint(incident_id, self.caller, plan)
            if hint is not None:
                await self.locator.keep(incident_id, hint, plan, hint=True)
        except AriError as exc:
            log.warning("[%s] location lookup failed, going on without it: %s", self.channel_id, exc)
        return good

    async def _subscribe(self, channel_id: str) -> None:
        await self.ari.request(
            "POST", f"/applications/{self.ari.app}/subscription", params={"eventSource": f"channel:{channel_id}"}, channel_id=channel_id
        )
        if channel_id == self.channel_id:
            self.subscribed = True

    async def _follow_or_end(self) -> None:
        """The call left Stasis and the app is not subscribed to it, so no ChannelDestroyed
        will come: follow it now, or, when it is gone already, end it here.

        That happens when the caller hangs up before the app could subscribe: an app that
        fell behind (stalled, or on a starved CPU) reads the call's start and end at once.
        Without this the incident stayed open and the caller never reached the callback list.
        """
        try:
            await self._subscribe(self.channel_id)
        except (AriNotFound, AriUnprocessable):  # 404 / 422 "Event source does not exist": gone
            cause = f" (cause {self.hangup_cause})" if self.hangup_cause is not None else ""
            log.warning("[%s] the caller hung up%s before the app could follow the call", self.channel_id, cause)
            await self._ended(f"{GONE_BEFORE_FOLLOWED}{cause}")
        except AriError as exc:
            log.error("[%s] cannot follow the call after Stasis: %s", self.channel_id, exc)

    async def _feed(self, flow_event: FlowEvent, detail: dict[str, str] | None) -> None:
        if self.flow is None or self.flow.state in (State.ROUTED, State.ENDED):
            return
        if detail is not None:
            await self._event("dtmf", detail)
        await self._run(self.flow.handle(flow_event))

    async def _run(self, actions: list[Action]) -> None:
        for action in actions:
            if isinstance(action, Play):
                assert self.plan is not None
                media = [
                    f"sound:{self.announcement_media or ''}" if p == ANNOUNCEMENT else f"sound:{self.layout.sound(self.plan.id, action.language, p)}"
                    for p in action.prompts
                ]
                if action.beep_after:
                    media.append(f"sound:{self.layout.beep}")
                self.playback_id = await self.ari.play(self.channel_id, media)
                await self._event("prompt", {"prompts": ",".join(action.prompts), "language": action.language})
            elif isinstance(action, StopPlayback):
                if self.playback_id is not None:
                    playback, self.playback_id = self.playback_id, None
                    await self.ari.stop_playback(playback)
            elif isinstance(action, StopRecording):
                await self._stop_recording()
            elif isinstance(action, WaitDigits):
                self._start_timer(action.timeout)
            elif isinstance(action, RecordVoice):
                await self._record_voice(action)
            elif isinstance(action, Step):
                await self._event(action.kind, action.detail)
            elif isinstance(action, KecamatanChosen):
                await self._keep_kecamatan(action)
            elif isinstance(action, Route):
                self._cancel_timer()
                if self.incident is not None:
                    await self.store.update(self.incident.id, language=action.language)
                self.priority = action.priority
                self.flags.extend(f for f in action.flags if f not in self.flags)
                await self.route(action.target, reason=action.reason)
            elif isinstance(action, EndCall):
                self._cancel_timer()
                await self._event("system_hangup", {"reason": action.reason})
                await self._hangup_quietly(self.channel_id)

    def _background(self, work: Any) -> None:
        task = asyncio.create_task(work, name=f"ivr112-location-{self.channel_id}")
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _fetch_reference(self, uri: str, plan: Plan) -> None:
        """The position behind a Geolocation URI, fetched beside the call (it never waits on it)."""
        assert self.incident is not None
        for location in await dereference(uri):
            await self.locator.keep(self.incident.id, location, plan)
            if self.locator.is_good(location, plan):
                self.post(LocationArrived(self.channel_id, True))

    async def _keep_kecamatan(self, action: KecamatanChosen) -> None:
        """The caller's own keyed kecamatan: a place, no position; kept like any other source."""
        assert self.incident is not None and self.plan is not None
        location = Location(source="keypad", shape="kecamatan", method="Manual", detail={"kecamatan": action.name, "digits": action.digits})
        await self.locator.keep(self.incident.id, location, self.plan)

    async def _record_voice(self, action: RecordVoice) -> None:
        """Record the caller saying where they are; the file is kept with the incident."""
        assert self.incident is not None
        name = f"incident-{self.incident.id}-location"
        self.recording_name = name
        self.peers.recording_started(name, self.channel_id)
        try:
            await self.ari.request(
                "POST",
                f"/channels/{self.channel_id}/record",
                params={
                    "name": name, "format": "wav", "maxDurationSeconds": action.max_seconds,
                    "maxSilenceSeconds": action.silence_seconds, "ifExists": "overwrite", "beep": "false", "terminateOn": "#",
                },
                channel_id=self.channel_id,
            )
        except AriError as exc:
            log.error("[%s] could not record the caller's location: %s", self.channel_id, exc)
            self.recording_name = None
            await self._feed(RecordingDone(), None)
            return
        await self._event("recording_started", {"name": name})
        # Asterisk ends it; this only guards against its end never being heard.
        self._start_timer(action.max_seconds + 5)

    async def _stop_recording(self) -> None:
        """End the caller's location recording early (a free operator takes the call); the
        file so far is kept when Asterisk reports its end."""
        if self.recording_name is None:
            return
        self._cancel_timer()
        try:
            await self.ari.request("POST", f"/recordings/live/{self.recording_name}/stop", channel_id=self.channel_id)
        except AriError as exc:  # it ended on its own meanwhile
            log.debug("[%s] recording %s not stopped: %s", self.channel_id, self.recording_name, exc)

    async def _recorded(self, event: ev.RecordingFinished | ev.RecordingFailed) -> None:
        if event.name != self.recording_name or self.incident is None:
            return
        self.recording_name = None
        self._cancel_timer()
        path = f"{self.layout.recordings}/{event.name}.wav"
        if isinstance(event, ev.RecordingFinished):
            duration = float(event.duration) if event.duration is not None else None
            incident_id, name = self.incident.id, event.name
            await self.store.run(
                lambda s: s.add_recording(incident_id, kind="caller_location", name=name, path=path, duration_s=duration)
            )
            await self._event("recording", {"name": event.name, "path": path, "kind": "caller_location"})
        else:
            await self._event("recording_failed", {"name": event.name, "cause": event.cause})
        talked = None if event.talking_duration < 0 else event.talking_duration > 0
        await self._feed(RecordingDone(talked=talked), None)

    # Routing ----------------------------------------------------------------------------

    async def route(self, target: Target, *, reason: str) -> None:
        assert self.plan is not None
        if self.playback_id is not None:
            # A prompt still playing would hold the caller out of the agency's bridge.
            playback, self.playback_id = self.playback_id, None
            await self.ari.stop_playback(playback)
        if target.kind == "agency":
            self.peers.person_declined(self.channel_id)
            await self._dial_agency(self.plan.agencies[target.name], reason)
        else:
            await self.to_queue(target.name, reason=reason)

    async def to_queue(self, queue: str, *, reason: str) -> None:
        plan = self.plan or self.plans.plan_for("")
        exten = plan.asterisk_queue(queue)
        priority = queue_priority(self.priority, self.history, self.flags)
        if self.incident is not None:
            await self.store.update(self.incident.id, queued_at=now(), queue=queue, route=f"queue:{queue}", route_result="queued",
                                    priority=priority, flags=",".join(self.all_flags) or None)
            await self._event("route", {"target": f"queue:{queue}", "reason": reason, "priority": priority})
        try:
            await self.ari.set_variable(self.channel_id, "QUEUE_PRIO", str(QUEUE_PRIORITY[priority]))
        except AriError as exc:  # the queue still takes the call, in arrival order
            log.warning("[%s] queue priority not set: %s", self.channel_id, exc)
        log.info("[%s] to operators' queue %s (%s, %s priority)", self.channel_id, exten, reason, priority)
        await self.ari.continue_in_dialplan(self.channel_id, context=QUEUE_CONTEXT, extension=exten, priority=1)

    async def _dial_agency(self, agency: Agency, reason: str) -> None:
        assert self.plan is not None
        self.dial = AgencyDial(self.plan, agency, reason)
        if self.incident is not None:
            await self.store.update(self.incident.id, route=f"agency:{agency.name}", route_result="dialling")
            await self._event("route", {"target": f"agency:{agency.name}", "reason": reason})
        try:
            await self.ari.request("POST", f"/channels/{self.channel_id}/ring", channel_id=self.channel_id)
        except AriError as exc:  # ringback is a comfort, not a condition
            log.warning("[%s] no ringback for the caller: %s", self.channel_id, exc)
        await self._dial_next()

    async def _dial_next(self) -> None:
        dial = self.dial
        assert dial is not None
        while dial.index < len(dial.agency.trunks):
            dial.index += 1
            trunk = dial.agency.trunks[dial.index - 1]
            peer_id = f"{self.channel_id}-{dial.agency.name}-{dial.index}"
            dial.peer_id = peer_id
            self.peers.claim_peer(peer_id, self.channel_id)
            endpoint = trunk_dial(dial.plan, dial.agency, dial.index, trunk)
            dial.tried.append(endpoint)
            await self._event("trunk_dial", {"agency": dial.agency.name, "trunk": str(dial.index), "endpoint": endpoint})
            log.info("[%s] dialling %s trunk %d: %s", self.channel_id, dial.agency.name, dial.index, endpoint)
            variables = {f"PJSIP_HEADER(add,{SERVICE_HEADER})": self.called, f"PJSIP_HEADER(add,{LEG_HEADER})": peer_id}
            if self.incident is not None:
                variables[f"PJSIP_HEADER(add,{INCIDENT_HEADER})"] = str(self.incident.id)
            dial.rang = False
            self._watch_trunk(dial, peer_id, trunk.response_timeout)
            try:
                await self.ari.originate(
                    endpoint,
                    app=self.ari.app,
                    app_args=f"{PEER_ARG},{self.channel_id}",
                    caller_id=f'"{self.caller}" <{self.caller}>' if self.caller else None,
                    timeout_s=trunk.ring_timeout,
                    channel_id=peer_id,
                    originator=self.channel_id,
                    variables=variables,
                )
                return  # the trunk's fate arrives as PeerEvents
            except AriError as exc:
                self._unwatch_trunk(dial)
                await self._event("trunk_failed", {"agency": dial.agency.name, "trunk": str(dial.index),
                                                   "cause": f"{trunks.REFUSED} ({str(exc)[:280]})"})
        await self._agency_failed()

    def _watch_trunk(self, dial: AgencyDial, peer_id: str, seconds: float) -> None:
        """Start the trunk's response_timeout: a trunk that answers the INVITE with nothing
        (not even 100 Trying) is dead, and the caller must not wait out its ring timeout."""
        self._unwatch_trunk(dial)

        async def fire() -> None:
            await asyncio.sleep(seconds)
            self.post(TrunkSilent(self.channel_id, peer_id))

        dial.silent = asyncio.create_task(fire(), name=f"ivr112-trunk-{peer_id}")

    @staticmethod
    def _unwatch_trunk(dial: AgencyDial) -> None:
        if dial.silent is not None:
            dial.silent.cancel()
            dial.silent = None

    async def _trunk_silent(self, peer_id: str) -> None:
        dial = self.dial
        if dial is None or dial.peer_id != peer_id or dial.answered or dial.rang:
            return
        dial.silent = None
        progress = self.peers.leg_progress(peer_id)
        if progress is None or progress.provisional is not None or progress.final is not None:
            # It answered the INVITE (or the capture cannot tell): its ring timeout decides.
            return
        trunk = dial.agency.trunks[dial.index - 1]
        log.warning("[%s] %s trunk %d gave no answer to the INVITE in %g s; dialling the next",
                    self.channel_id, dial.agency.name, dial.index, trunk.response_timeout)
        await self._event("trunk_failed", {"agency": dial.agency.name, "trunk": str(dial.index),
                                           "cause": trunks.trunk_failure(trunks.LegOutcome(timed_out_silent=True, captured=True)),
                                           "after_s": f"{trunk.response_timeout:g}"})
        dial.peer_id = None  # its ChannelDestroyed is now a straggler
        await self._hangup_quietly(peer_id)
        await self._dial_next()

    async def _agency_failed(self) -> None:
        dial = self.dial
        assert dial is not None
        self.dial = None
        self._unwatch_trunk(dial)
        await self._stop_ring()
        log.warning("[%s] no trunk of %s answered; %s", self.channel_id, dial.agency.name, dial.agency.on_failure)
        if self.incident is not None:
            await self.store.update(self.incident.id, route_result=f"agency {dial.agency.name} unreachable")
            await self._event("agency_failed", {"agency": dial.agency.name, "tried": ",".join(dial.tried), "next": str(dial.agency.on_failure)})
        if dial.agency.name in dial.plan.priority.urgent_agencies and "agency_failed" not in self.flags:
            self.flags.append("agency_failed")
        await self.route(dial.agency.on_failure, reason=f"agency {dial.agency.name} unreachable")

    async def _peer(self, event: Any) -> None:
        dial = self.dial
        if dial is None or event.channel_id != dial.peer_id:
            # A leg we have given up on (caller gone, or a late event): make sure it ends.
            if isinstance(event, ev.StasisStart):
                await self._hangup_quietly(event.channel.id)
            return
        if isinstance(event, ev.StasisStart):
            self._unwatch_trunk(dial)
            await self._bridge(dial)
        elif isinstance(event, ev.ChannelStateChange) and event.channel.state == "Ringing":
            dial.rang = True
            self._unwatch_trunk(dial)
        elif isinstance(event, ev.ChannelDestroyed):
            self._unwatch_trunk(dial)
            held = time.monotonic() - dial.answered_at
            if dial.answered and held < AGENCY_DROP_S:
                await self._agency_dropped(dial, held, event.cause_txt or str(event.cause))
                return
            if dial.answered:
                await self._event("agency_hangup", {"agency": dial.agency.name, "cause": event.cause_txt})
                await self._release_agency("agency hung up")
                await self._hangup_quietly(self.channel_id)
                return
            progress = self.peers.leg_progress(event.channel_id or "")
            outcome = trunks.LegOutcome(
                cause=event.cause, cause_txt=event.cause_txt, rang=dial.rang, captured=progress is not None,
                provisional=progress.provisional if progress else None, final=progress.final if progress else None,
                final_reason=progress.reason if progress else "",
            )
            await self._event("trunk_failed", {"agency": dial.agency.name, "trunk": str(dial.index), "cause": trunks.trunk_failure(outcome)})
            await self._dial_next()

    async def _agency_dropped(self, dial: AgencyDial, held: float, cause: str) -> None:
        """The trunk answered and hung up at once: count it failed and go on to the next."""
        log.warning("[%s] %s trunk %d answered and hung up after %.1f s (%s); trying the next",
                    self.channel_id, dial.agency.name, dial.index, held, cause)
        dial.answered = False
        if dial.bridge_id is not None:
            try:
                await self.ari.destroy_bridge(dial.bridge_id)
            except AriError as exc:
                log.warning("[%s] bridge %s not destroyed: %s", self.channel_id, dial.bridge_id, exc)
            dial.bridge_id = None
        if self.incident is not None:
            await self.store.update(self.incident.id, route_result="dialling")
            await self._event("trunk_failed", {"agency": dial.agency.name, "trunk": str(dial.index),
                                               "cause": f"answered and hung up after {held:.1f} s ({cause})"[:300]})
            # If the caller now hangs up before anyone else answers, route_result no longer says
            # "answered by", so the number goes (back) on the callback list.
        try:
            await self.ari.request("POST", f"/channels/{self.channel_id}/ring", channel_id=self.channel_id)
        except AriError as exc:
            log.warning("[%s] no ringback for the caller: %s", self.channel_id, exc)
        await self._dial_next()

    async def _bridge(self, dial: AgencyDial) -> None:
        assert dial.peer_id is not None
        dial.answered = True
        dial.answered_at = time.monotonic()
        await self._stop_ring()
        bridge_id = f"{self.channel_id}-bridge"
        await self.ari.create_bridge("mixing", bridge_id)
        dial.bridge_id = bridge_id
        await self.ari.add_channel(bridge_id, self.channel_id)
        try:
            await self.ari.add_channel(bridge_id, dial.peer_id)
        except AriError as exc:  # the trunk answered and hung up before it could be bridged
            await self._agency_dropped(dial, time.monotonic() - dial.answered_at, f"gone before the bridge: {exc}")
            return
        log.info("[%s] bridged with %s trunk %d", self.channel_id, dial.agency.name, dial.index)
        if self.incident is not None:
            await self.store.update(self.incident.id, route_result=f"answered by {dial.agency.name} trunk {dial.index}")
            await self._event("trunk_answered", {"agency": dial.agency.name, "trunk": str(dial.index)})
            await self._person_answered(f"agency {dial.agency.name}")

    async def _release_agency(self, why: str) -> None:
        dial, self.dial = self.dial, None
        if dial is None:
            return
        self._unwatch_trunk(dial)
        if dial.peer_id is not None:
            await self._hangup_quietly(dial.peer_id)
        if dial.bridge_id is not None:
            try:
                await self.ari.destroy_bridge(dial.bridge_id)
            except AriError as exc:
                log.warning("[%s] bridge %s not destroyed: %s", self.channel_id, dial.bridge_id, exc)
        log.info("[%s] agency leg released: %s", self.channel_id, why)

    async def _hangup_quietly(self, channel_id: str) -> None:
        try:
            await self.ari.hangup(channel_id)
        except AriError as exc:
            log.debug("[%s] hangup of %s: %s", self.channel_id, channel_id, exc)

    async def _stop_ring(self) -> None:
        try:
            await self.ari.request("DELETE", f"/channels/{self.channel_id}/ring", channel_id=self.channel_id)
        except AriError:
            pass

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
        self.peers.call_ended(self.caller, self.channel_id)
        if self.incident is None:
            self.incident = await self.store.by_channel(self.channel_id)
        if self.flow is not None and self.flow.state not in (State.ROUTED, State.ENDED):
            self.flow.handle(HungUp())
        if self.incident is not None:
            await self.store.update(self.incident.id, ended_at=now(), end_reason=cause)
            log.info("[%s] incident %d ended: %s", self.channel_id, self.incident.id, cause)
            await self._unanswered_to_callbacks()

    async def fail(self, exc: BaseException) -> None:
        """Log the error with the channel id and hand the call to the operators' queue."""
        self._cancel_timer()
        if await self._caller_gone(exc):
            # Not a fault: the caller hung up before the app could act (an app that fell
            # behind sees that often). Nothing to hand over; StasisEnd ends the call.
            log.warning("[%s] the caller hung up before the app could act: %s", self.channel_id, exc)
            try:
                await self._event("caller_gone", {"during": f"{getattr(exc, 'method', '')} {getattr(exc, 'path', '')}".strip()})
            except Exception as store_exc:  # logged; the call's end is still written later
                log.error("[%s] could not record the early hang-up: %r", self.channel_id, store_exc)
            return
        log.error("[%s] call controller error, sending the call to the operators: %r", self.channel_id, exc)
        if self.incident is not None:
            try:
                await self.store.update(self.incident.id, fallback=1)
                await self._event("error", {"error": repr(exc)[:500]})
            except Exception as store_exc:  # the store failing must not stop the fallback
                log.error("[%s] could not record the error: %r", self.channel_id, store_exc)
        if not self.in_stasis or self.ended:
            return
        await self._release_agency("error")
        plan = self.plan or self.plans.plan_for("")
        try:
            # The error may have come before the subscription: without it, the call's end
            # (after the queue) would never reach the app and its incident would stay open.
            await self._subscribe(self.channel_id)
        except AriError as sub_exc:
            log.warning("[%s] not subscribed to the call's end: %s", self.channel_id, sub_exc)
        try:
            await self.ari.continue_in_dialplan(
                self.channel_id, context=QUEUE_CONTEXT, extension=plan.asterisk_queue(plan.default_queue.name), priority=1
            )
        except AriError as ari_exc:
            log.error("[%s] fallback failed too (the channel may be gone): %s", self.channel_id, ari_exc)

    async def _caller_gone(self, exc: BaseException) -> bool:
        """True only when Asterisk confirms this call's channel no longer exists: a 404 (or a
        422) naming the channel, and the channel itself not found. Anything else is a fault,
        and the call goes to the fallback."""
        if not isinstance(exc, (AriNotFound, AriUnprocessable)) or exc.channel_id != self.channel_id:
            return False
        try:
            return await self.ari.channel_gone(self.channel_id)
        except AriError:
            return False

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

    async def _person_answered(self, who: str) -> None:
        """A person (agency) took the call: the number needs no callback."""
        caller = self.caller
        if caller:
            await self.store.run(lambda s: callbacks.answered(s, caller, reason=f"answered by {who}"))

    async def _unanswered_to_callbacks(self) -> None:
        """A call that ended before any person answered goes on the callback list."""
        assert self.incident is not None
        incident_id, caller = self.incident.id, self.caller
        final = await self.store.get(incident_id)
        if final is None or final.operator_answered_at or (final.route_result or "").startswith("answered by"):
            return
        entry = await self.store.run(lambda s: callbacks.missed(s, caller, incident_id))
        if entry is not None:
            await self._event("callback_listed", {"number": caller, "calls": str(entry.calls)})
            log.info("[%s] incident %d: no person answered %s; on the callback list (%d call(s))",
                     self.channel_id, incident_id, caller, entry.calls)

    def observe_only(self) -> None:
        """This call has left Stasis already (the service subscribed the app to it); on its
        ChannelDestroyed, close its incident."""
        self.in_stasis = False
        self.subscribed = True

    async def take_over(self, channel: ev.Channel, plan: Plan) -> None:
        """A call found in Stasis after a reconnect with no controller: put it before a person."""
        self.in_stasis = True
        self.plan = plan
        self.called = channel.dialplan_exten or "112"
        self.caller = channel.caller_number
        self.incident = await self.store.by_channel(channel.id)
        if self.incident is None:
            self.incident = await self.store.open_incident(
                channel_id=channel.id, plan_id=plan.id, caller_number=channel.caller_number, called_number=self.called
            )
        await self._event("recovered", {"state": channel.state})
        log.warning("[%s] taking over call left in Stasis (incident %d): to the operators", channel.id, self.incident.id)
        await self._subscribe(channel.id)
        if channel.state != "Up":
            await self.ari.answer(channel.id)
        await self.to_queue(plan.default_queue.name, reason="recovered after app reconnect")

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
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)

    async def _event(self, kind: str, detail: dict[str, str]) -> None:
        if self.incident is not None:
            await self.store.add_event(self.incident.id, kind, detail)
            self.peers.incident_changed(self.incident.id, kind, detail)
