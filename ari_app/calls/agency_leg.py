"""One agency being dialled for one call, on Asterisk: translates the agency legs' ARI
events into `ivr.agency` events and that machine's actions into ARI requests. All the
decisions (which trunk next, a drop, a silent trunk, the fail-over) are the machine's.

Each trunk leg is originated into our own Stasis app with PEER_ARG and the caller's
channel id, so the service hands its events, in order, to the caller's controller
(PeerEvent). The leg's INVITE carries the service number, the incident id and the leg's
own id (LEG_HEADER), by which the SIP capture tells whether a silent trunk answered at all.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any

from ari_app.ari import events as ev
from ari_app.ari.errors import AriError
from ari_app.asterisk.render import trunk_dial
from ari_app.calls.hep import LEG_HEADER
from ari_app.calls.ports import TrunkSilent
from ivr import agency as ag
from ivr import agency_data as data
from ivr import trunks
from ivr.plan import Agency, Plan

if TYPE_CHECKING:
    from ari_app.calls.controller import CallController

log = logging.getLogger(__name__)

PEER_ARG = "agency"
SERVICE_HEADER = "X-Ivr112-Service-Number"
INCIDENT_HEADER = "X-Ivr112-Incident"

# An agency leg that hangs up this soon after answering has not taken the call (an SBC
# that answers and drops, a trunk with no one behind it): the caller goes on to the next
# trunk or the agency's on_failure, as if that trunk had not answered at all.
AGENCY_DROP_S = ag.DROP_S


class AgencyLeg:
    """The ARI side of one `ivr.agency.AgencyDial`."""

    def __init__(self, call: CallController, plan: Plan, target: Agency, reason: str) -> None:
        self.call = call
        self.channel_id = call.channel_id
        endpoints = tuple(trunk_dial(plan, target, i, trunk) for i, trunk in enumerate(target.trunks, start=1))
        self.machine = ag.AgencyDial(target, reason=reason, endpoints=endpoints,
                                         urgent=target.name in plan.priority.urgent_agencies, drop_s=AGENCY_DROP_S)
        self.bridge_id: str | None = None
        self.watch: asyncio.Task[None] | None = None  # the current leg's response_timeout

    @property
    def agency(self) -> Agency:
        return self.machine.agency

    @property
    def name(self) -> str:
        return self.machine.agency.name

    @property
    def answered(self) -> bool:
        """A trunk of this agency has the caller (or is being bridged with it)."""
        return self.machine.answered

    def leg_id(self, leg: int) -> str:
        return f"{self.channel_id}-{self.name}-{leg}"

    def leg_of(self, channel_id: str | None) -> int | None:
        """The trunk index of one of this dialling's legs; None for any other channel."""
        prefix = f"{self.channel_id}-{self.name}-"
        if not channel_id or not channel_id.startswith(prefix) or not channel_id[len(prefix):].isdigit():
            return None
        return int(channel_id[len(prefix):])

    # ARI events in ------------------------------------------------------------------------

    async def start(self) -> None:
        await self.carry(self.machine.handle(ag.Start()))

    async def peer_event(self, event: Any) -> bool:
        """An event of an agency leg; False when it is none of this dialling's legs."""
        leg = self.leg_of(event.channel_id)
        if leg is None:
            return False
        found = self._translate(leg, event)
        if found is not None:
            await self.carry(self.machine.handle(found))
        return True

    def _translate(self, leg: int, event: Any) -> ag.Event | None:
        if isinstance(event, ev.StasisStart):
            return ag.TrunkAnswered(leg, at=time.monotonic())
        if isinstance(event, ev.ChannelStateChange) and event.channel.state == "Ringing":
            return ag.TrunkRang(leg)
        if isinstance(event, ev.ChannelDestroyed):
            progress = self.call.peers.leg_progress(event.channel_id or "")
            outcome = trunks.LegOutcome(
                cause=event.cause, cause_txt=event.cause_txt, captured=progress is not None,
                provisional=progress.provisional if progress else None, final=progress.final if progress else None,
                final_reason=progress.reason if progress else "",
            )
            return ag.TrunkGone(leg, at=time.monotonic(), outcome=outcome)
        return None

    async def timed_out(self, peer_id: str) -> None:
        """The leg's response_timeout ran out: did the trunk answer the INVITE at all?"""
        leg = self.leg_of(peer_id)
        if leg is None:
            return
        progress = self.call.peers.leg_progress(peer_id)
        answered = None if progress is None else (progress.provisional is not None or progress.final is not None)
        await self.carry(self.machine.handle(ag.TrunkSilent(leg, invite_answered=answered)))

    async def release(self, why: str, *, caller_gone: bool) -> None:
        event: ag.Event = ag.CallerHungUp() if caller_gone else ag.Cancelled(why)
        await self.carry(self.machine.handle(event))
        log.info("[%s] agency leg released: %s", self.channel_id, why)

    # Actions out --------------------------------------------------------------------------

    async def carry(self, actions: list[ag.Action]) -> None:
        for action in actions:
            await self._do(action)
        if not self.machine.live and self.call.dial is self:
            self.stop_watching()
            self.call.dial = None  # the caller is no longer with this agency

    async def _do(self, action: ag.Action) -> None:
        call = self.call
        if isinstance(action, ag.Step):
            await call.step(action.kind, action.detail)
        elif isinstance(action, ag.SetResult):
            fields = {"route_result": action.route_result, **({"route": action.route} if action.route else {})}
            await call.record(**fields)
        elif isinstance(action, ag.Ring):
            await self._ring()
        elif isinstance(action, ag.StopRinging):
            await self._ring_stop()
        elif isinstance(action, ag.WatchLeg):
            self._watch(action.leg, action.seconds)
        elif isinstance(action, ag.UnwatchLeg):
            self.stop_watching()
        elif isinstance(action, ag.Originate):
            await self._originate(action)
        elif isinstance(action, ag.Bridge):
            await self._bridge(action.leg)
        elif isinstance(action, ag.DestroyBridge):
            await self._destroy_bridge()
        elif isinstance(action, ag.HangUpLeg):
            await call.hangup_quietly(self.leg_id(action.leg))
        elif isinstance(action, ag.HangUpCaller):
            await call.hangup_quietly(self.channel_id)
        elif isinstance(action, ag.PersonAnswered):
            await call.person_answered(action.who)
        elif isinstance(action, ag.FailOver):
            await self._fail_over(action)

    async def _ring(self) -> None:
        try:
            await self.call.ari.ring(self.channel_id)
        except AriError as exc:  # ringback is a comfort, not a condition
            log.warning("[%s] no ringback for the caller: %s", self.channel_id, exc)

    async def _ring_stop(self) -> None:
        try:
            await self.call.ari.ring_stop(self.channel_id)
        except AriError as exc:
            log.debug("[%s] ringback not stopped: %s", self.channel_id, exc)

    async def _originate(self, action: ag.Originate) -> None:
        call, peer_id = self.call, self.leg_id(action.leg)
        call.peers.claim_peer(peer_id, self.channel_id)
        log.info("[%s] dialling %s trunk %d: %s", self.channel_id, self.name, action.leg, action.endpoint)
        variables = {f"PJSIP_HEADER(add,{SERVICE_HEADER})": call.called, f"PJSIP_HEADER(add,{LEG_HEADER})": peer_id}
        if call.incident is not None:
            variables[f"PJSIP_HEADER(add,{INCIDENT_HEADER})"] = str(call.incident.id)
            variables.update(await self._agency_data(call.incident.id))
        try:
            await call.ari.originate(
                action.endpoint, app=call.ari.app, app_args=f"{PEER_ARG},{self.channel_id}",
                caller_id=f'"{call.caller}" <{call.caller}>' if call.caller else None, timeout_s=action.ring_timeout,
                channel_id=peer_id, originator=self.channel_id, variables=variables,
            )
        except AriError as exc:  # the trunk's fate otherwise arrives as PeerEvents
            await self.carry(self.machine.handle(ag.OriginateFailed(action.leg, str(exc))))

    async def _agency_data(self, incident_id: int) -> dict[str, str]:
        """What travels with this leg's INVITE (docs/agencies.md): the RFC 7852 Call-Info and
        the caller's best position, by value (Asterisk builds the PIDF-LO body from the
        GEOLOC_PROFILE written here) or by reference (a Geolocation header to our URL)."""
        plan = self.call.plan
        if plan is None:
            return {}
        best = None
        if self.agency.location == "value":
            try:
                best = data.best_position(await self.call.store.run(lambda s: s.locations(incident_id)))
            except Exception as exc:  # the call goes through without its position rather than not at all
                log.warning("[%s] no position for %s: the store failed: %s", self.channel_id, self.name, exc)
        return data.leg_variables(self.call.peers.centre(plan), incident_id, mode=self.agency.location, best=best)

    async def _bridge(self, leg: int) -> None:
        bridge_id = f"{self.channel_id}-bridge"
        await self.call.ari.create_bridge("mixing", bridge_id)
        self.bridge_id = bridge_id
        await self.call.ari.add_channel(bridge_id, self.channel_id)
        try:
            await self.call.ari.add_channel(bridge_id, self.leg_id(leg))
        except AriError as exc:  # the trunk answered and hung up before it could be bridged
            log.warning("[%s] %s trunk %d answered and was gone before the bridge: %s", self.channel_id, self.name, leg, exc)
            await self.carry(self.machine.handle(ag.BridgeFailed(leg, at=time.monotonic(), error=str(exc))))
            return
        log.info("[%s] bridged with %s trunk %d", self.channel_id, self.name, leg)
        await self.carry(self.machine.handle(ag.Bridged(leg)))

    async def _destroy_bridge(self) -> None:
        bridge_id, self.bridge_id = self.bridge_id, None
        if bridge_id is None:
            return
        try:
            await self.call.ari.destroy_bridge(bridge_id)
        except AriError as exc:
            log.warning("[%s] bridge %s not destroyed: %s", self.channel_id, bridge_id, exc)

    async def _fail_over(self, action: ag.FailOver) -> None:
        call = self.call
        log.warning("[%s] no trunk of %s answered; %s", self.channel_id, self.name, action.target)
        if call.dial is self:
            call.dial = None
        if action.urgent and "agency_failed" not in call.flags:
            call.flags.append("agency_failed")
        await call.route(action.target, reason=action.reason)

    # The response_timeout ------------------------------------------------------------------

    def _watch(self, leg: int, seconds: float) -> None:
        """A trunk that answers the INVITE with nothing (not even 100 Trying) is dead, and
        the caller must not wait out its ring timeout."""
        self.stop_watching()
        peer_id, post, caller = self.leg_id(leg), self.call.post, self.channel_id

        async def fire() -> None:
            await asyncio.sleep(seconds)
            post(TrunkSilent(caller, peer_id))

        self.watch = asyncio.create_task(fire(), name=f"ivr112-trunk-{peer_id}")

    def stop_watching(self) -> None:
        if self.watch is not None:
            self.watch.cancel()
            self.watch = None
