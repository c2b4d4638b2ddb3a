"""The running app: one place that starts the store, the ARI client, the channel
dispatcher and the web side, and stops them in reverse order (aiohttp cleanup_ctx).

It takes over calls found in Stasis after every (re)connect (a call left in silence while
the app was away goes straight to the operators), and reloads the plans on request:
a plan that does not validate is refused and the running plans stay; calls in progress
finish on the plan they started with.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

from ari_app.agency_push import AgencyPush
from ari_app.announcement import Announcements
from ari_app.ari import events as ev
from ari_app.ari.client import AriClient
from ari_app.ari.dispatch import ChannelDispatcher
from ari_app.ari.event_parsing import ASKED_TYPES
from ari_app.asterisk.layout import Layout
from ari_app.asterisk.render import ARI_USER, queue_nodes_before_me
from ari_app.calls.agency_leg import PEER_ARG
from ari_app.calls.callback_call import CallbackCall
from ari_app.calls.controller import CallController
from ari_app.calls.hep import HepStore, LegProgress
from ari_app.calls.locating import Locator
from ari_app.calls.ports import PeerEvent, RecordingEvent
from ari_app.calls.recovery import Recovery
from ari_app.calls.wall import LEARNING, signature
from ari_app.live import Hub
from ari_app.memory import QuietTrim
from ari_app.metrics import LiveCounts, Metrics
from ari_app.operators.actions import OperatorActions
from ari_app.operators.desk import Desk
from ari_app.operators.free_operators import FreeOperators
from ari_app.plan_reload import PlanRegistry, PlanReloader, ReloadResult
from ari_app.storage import AsyncStore
from ari_app.store.engine import libpq_url
from ari_app.store.notify import NodeFeed
from ari_app.texts import TextsRoom
from ivr.agency_data import Centre, centre_of
from ivr.location import LocationParseError
from ivr.location.aml import normalise_msisdn
from ivr.plan import Plan, PlanSet
from ivr.secrets import Secrets
from ivr.settings import Settings

log = logging.getLogger(__name__)

# Incident events that are failures a supervisor would act on, and their metric kind.
EVENT_FAILURES = {"trunk_failed": "agency_trunk", "agency_failed": "agency_unreachable", "error": "controller_error"}
RETENTION_INTERVAL_S = 3600.0
# What the consoles of other nodes on one PostgreSQL store hear of this node: changes of the
# shared record. The wall and the operators' board show what this node's own Asterisk holds.
RELAYED = ("incident",)
# One resource's life: start, yield while the app runs, stop (aiohttp's cleanup_ctx shape).
Resource = Callable[[], AsyncIterator[None]]


class PeerForwarder:
    """The consumer of an agency leg: its events go, in order, to the caller's controller."""

    def __init__(self, caller_id: str, service: Service) -> None:
        self.caller_id = caller_id
        self.service = service

    async def handle(self, event: Any) -> None:
        await self.service.dispatcher.dispatch(PeerEvent(self.caller_id, event))


class Service:
    def __init__(self, settings: Settings, secrets: Secrets, plans: PlanSet) -> None:
        self.settings = settings
        self.secrets = secrets
        self.plans = PlanRegistry(plans)
        self.layout = Layout(settings.root_path, settings.instance)
        self.store = AsyncStore(settings.data_path, url=settings.store_url, backlog_max=settings.store_backlog)
        self.metrics = Metrics(self.live_counts)
        self.store.on_fault = lambda: self.metrics.failure("store")
        self.hep = HepStore(secrets.hep_password)
        self.locator = Locator(self.store, unreadable=lambda: self.metrics.failure("location_unreadable"), hep=self.hep)
        self.ari = AriClient(
            base_url=f"http://{settings.ari_host}:{settings.ari_port}",
            username=ARI_USER,
            password=secrets.ari_password,
            app=settings.app_name,
            request_timeout=settings.ari_request_timeout,
            reconnect_min=settings.ari_reconnect_min,
            reconnect_max=settings.ari_reconnect_max,
            events=ASKED_TYPES,
        )
        self.controllers: dict[str, CallController] = {}
        self.peers: dict[str, str] = {}
        # The caller number (normalised) of each live call, for AML matching.
        self.live_calls: dict[str, str] = {}
        # Recordings a call asked for, by name: their end comes back to that call.
        self.recordings: dict[str, str] = {}
        self.hub = Hub()
        self.node_feed = _node_feed(settings, self.hub, self.store)
        if self.node_feed is not None:
            self.node_feed.on_fault = lambda: self.metrics.failure("node_feed")
        self.announcements = Announcements(settings.data_path, self.layout)
        self.desk = Desk(settings, secrets, self.plans, self.store, publish=self.hub.publish, metrics=self.metrics)
        self.reloader = PlanReloader(settings, secrets, self.layout, self.plans, self.desk.ami)
        self.free_operators = FreeOperators(self.desk, lambda: list(self.controllers.values()), self._post,
                                            here=not queue_nodes_before_me(settings))
        self.desk.on_change = self.free_operators.kick
        self.actions = OperatorActions(settings=settings, ari=self.ari, store=self.store, plans=self.plans, layout=self.layout,
                                       desk=self.desk)
        # Operators' callbacks being placed, by each of their two channels.
        self.callback_calls = self.actions.callback_calls
        self.texts = TextsRoom(settings, secrets, store=self.store, ari=self.ari, hep=self.hep, plans=self.plans,
                               publish=self.hub.publish)
        self.agency_push = AgencyPush(settings, secrets, self.store, self.plans, self.centre)
        self.recovery = Recovery(ari=self.ari, store=self.store, plans=self.plans, controllers=self.controllers, peers=self.peers,
                                 new_controller=self._controller, desk=self.desk, gone=self._on_event,
                                 node_name=settings.node_name)
        self.dispatcher = ChannelDispatcher(self._consumer, on_error=self._on_error, on_other=self._on_other)
        # Memory freed by calls that malloc keeps is handed back when no call is in hand.
        self.quiet_trim = QuietTrim(lambda: bool(self.controllers or self.live_calls))
        self._forgetting: set[asyncio.Task[None]] = set()
        self._stack: contextlib.AsyncExitStack | None = None
        self.ari_connects = 0
        self._by_incident: dict[int, CallController] = {}  # see _call_of
        self._ivr_seen: tuple[tuple[str, str], ...] | None = ()  # the calls in the menu the wall last showed (None: unknown)

    # Channel consumers ------------------------------------------------------------------

    def _consumer(self, channel_id: str) -> CallController | PeerForwarder | CallbackCall:
        callback = self.callback_calls.get(channel_id)
        if callback is not None:
            return callback
        caller = self.peers.get(channel_id)
        if caller is not None:
            return PeerForwarder(caller, self)
        known = self.controllers.get(channel_id)
        if known is not None and not known.ended:
            return known  # back in Stasis from the dialplan (an agency after the queue): same call
        return self._controller(channel_id)

    def _controller(self, channel_id: str) -> CallController:
        controller = CallController(
            channel_id, ari=self.ari, store=self.store, plans=self.plans, layout=self.layout, post=self._post, peers=self,
            locator=self.locator,
        )
        self.controllers[channel_id] = controller
        return controller

    def claim_peer(self, peer_id: str, caller_id: str) -> None:
        self.peers[peer_id] = caller_id

    def recording_started(self, name: str, channel_id: str) -> None:
        self.recordings[name] = channel_id

    def incident_changed(self, incident_id: int, kind: str, detail: dict[str, str]) -> None:
        controller = self._call_of(incident_id)
        incident = controller.incident if controller is not None else None
        # The plan, when a call in hand knows it: a console bound to another plan skips the step.
        self.hub.publish("incident", {"id": incident_id, "kind": kind, "detail": detail, "plan": incident.plan_id if incident else ""})
        self.agency_push.changed(incident_id)
        self._ivr_moved(learned=kind in LEARNING and controller is not None and controller.in_ivr)
        self.metrics.incident_event(kind)
        failure = EVENT_FAILURES.get(kind)
        if failure is not None:
            self.metrics.failure(failure)
        elif kind == "trunk_answered":
            self.metrics.person_answered("agency", incident.arrived_at if incident else None)

    def _call_of(self, incident_id: int) -> CallController | None:
        """The call in hand with this incident, if any. Remembered: this runs at every step
        of every call, and a pass over every call in hand each time was a few per cent of
        the event loop's CPU with 160 callers in the menu."""
        found = self._by_incident.get(incident_id)
        if (found is not None and found.incident is not None and found.incident.id == incident_id
                and self.controllers.get(found.channel_id) is found):
            return found
        found = next((c for c in self.controllers.values() if c.incident is not None and c.incident.id == incident_id), None)
        if len(self._by_incident) > 2 * len(self.controllers) + 100:  # forget the calls gone
            self._by_incident = {i: c for i, c in self._by_incident.items() if self.controllers.get(c.channel_id) is c}
        if found is not None:
            self._by_incident[incident_id] = found
        return found

    def announcement_sound(self, language: str) -> str | None:
        return self.announcements.sound(language)

    def person_wanted(self) -> None:
        self.free_operators.kick()

    def person_declined(self, channel_id: str) -> None:
        self.free_operators.release(channel_id)

    def leg_progress(self, leg_id: str) -> LegProgress | None:
        return self.hep.leg_progress(leg_id) if self.hep.listening else None

    def centre(self, plan: Plan) -> Centre:
        return centre_of(plan.name, self.settings)

    def call_started(self, number: str, channel_id: str) -> None:
        self.metrics.arrived.inc()
        key = _msisdn(number)
        if key:
            self.live_calls[key] = channel_id

    def call_ended(self, number: str, channel_id: str) -> None:
        self.metrics.ended.inc()
        key = _msisdn(number)
        if key and self.live_calls.get(key) == channel_id:
            del self.live_calls[key]
        self.quiet_trim.ended()

    def _post(self, event: Any) -> None:
        task = asyncio.get_running_loop().create_task(self.dispatcher.dispatch(event))
        task.add_done_callback(lambda t: t.exception() if not t.cancelled() else None)

    async def _on_error(self, channel_id: str, exc: Exception) -> None:
        controller = self.controllers.get(channel_id)
        if controller is not None:
            await controller.fail(exc)

    async def _on_other(self, event: Any) -> None:
        """Events outside a channel worker; after StasisEnd only a call's end matters."""
        if isinstance(event, ev.ChannelDestroyed) and event.channel_id in self.callback_calls:
            await self.callback_calls[event.channel_id].handle(event)
            return
        if isinstance(event, ev.ChannelDestroyed) and event.channel_id:
            caller = self.peers.pop(event.channel_id, None)
            if caller is not None:
                await self.dispatcher.dispatch(PeerEvent(caller, event))
                return
            controller = self.controllers.get(event.channel_id)
            if controller is not None:
                try:  # still in hand while it ends: its steps find it without a pass over every call
                    await controller.handle(event)
                finally:
                    self.controllers.pop(event.channel_id, None)
        elif isinstance(event, ev.ApplicationReplaced):
            log.error("another program connected as ARI application %r; this app no longer receives calls", self.ari.app)

    async def _on_event(self, event: Any) -> None:
        if isinstance(event, (ev.RecordingFinished, ev.RecordingFailed)) and event.name in self.recordings:
            event = RecordingEvent(self.recordings.pop(event.name), event)
        if isinstance(event, ev.StasisStart) and event.args[:1] == (PEER_ARG,) and len(event.args) > 1:
            self.peers.setdefault(event.channel.id, event.args[1])
        await self.dispatcher.dispatch(event)
        if isinstance(event, ev.ChannelDestroyed) and event.channel_id:
            if self.dispatcher.pending(event.channel_id):
                # Its call is still being handled (an app that fell behind reads a start
                # and an end at once): forget the channel once that is done.
                task = asyncio.create_task(self._forget_channel(event.channel_id), name=f"ivr112-forget-{event.channel_id}")
                self._forgetting.add(task)
                task.add_done_callback(self._forgetting.discard)
            else:
                self._forget_now(event.channel_id)

    async def _forget_channel(self, channel_id: str) -> None:
        await self.dispatcher.drained(channel_id)
        self._forget_now(channel_id)

    def _forget_now(self, channel_id: str) -> None:
        self.controllers.pop(channel_id, None)
        self.peers.pop(channel_id, None)
        self._ivr_moved()

    def _ivr_moved(self, *, learned: bool = False) -> None:
        """Tell the walls when a call entered or left the menu, moved in it, or the menu
        learned something of it (the page then reads /api/wall again).

        The signature goes over every call in hand, at every step of every call (a tenth
        of the event loop's CPU with 160 callers in the menu): with no page open here (the
        wall is not relayed to other nodes), it is not worked out, and the next one heard
        is told at once (a page reads the whole wall when it opens)."""
        if not self.hub.hears("wall"):
            self._ivr_seen = None
            return
        seen = signature(self.controllers.values())
        if seen != self._ivr_seen or learned:
            self._ivr_seen = seen
            self.hub.publish("wall", {"in_ivr": len(seen)})

    async def _on_connect(self) -> None:
        """Take over what happened while the WebSocket was down (ari_app.calls.recovery)."""
        self.ari_connects += 1
        if self.ari_connects > 1:
            self.metrics.failure("ari_disconnect")
        await self.recovery.on_connect()

    # Operators' actions on calls (ari_app.operators.actions) -----------------------------

    async def place_callback(self, number: str, operator: str) -> CallbackCall:
        """Call back a number from the callback list through its carrier, operator first."""
        return await self.actions.place_callback(number, operator)

    async def transfer(self, incident_id: int, agency: str, *, mode: str = "blind") -> str:
        """Move an answered caller to an agency, blind or as a three-way conference."""
        exten = await self.actions.transfer(incident_id, agency, mode=mode)
        self.incident_changed(incident_id, "transfer", {"agency": agency, "mode": mode})  # its page and webhook learn of it
        return exten

    # Reload -----------------------------------------------------------------------------

    async def reload(self) -> ReloadResult:
        """Validate the configured plans and switch to them; a refused reload changes nothing."""
        return await self.reloader.reload()

    # Life cycle -------------------------------------------------------------------------

    @property
    def ari_connected(self) -> bool:
        return self.ari.is_connected

    def live_counts(self) -> LiveCounts:
        """What is happening now, for the wall and the metrics (one reading of the controllers)."""
        in_ivr = at_agency = 0
        for controller in list(self.controllers.values()):
            if controller.in_ivr:
                in_ivr += 1
            elif not controller.ended and controller.incident is not None and controller.dial is not None:
                at_agency += 1
        operators: dict[str, int] = {}
        for row in self.desk.view():
            state = str(row.get("status", "unknown"))
            operators[state] = operators.get(state, 0) + 1
        return LiveCounts(
            in_ivr=in_ivr, at_agency=at_agency, waiting=len(self.desk.waiting), operators=operators,
            ari_connected=self.ari_connected, ami_connected=self.desk.connected, store_ok=self.store_ok,
            store_backlog=self.store.backlog,
        )

    @property
    def store_ok(self) -> bool:
        return self.store.ok

    # Life cycle: one entry per resource, started in this order, stopped in reverse -----

    def resources(self) -> list[tuple[str, Resource]]:
        """Each resource's start and stop as one async generator (aiohttp's cleanup_ctx
        shape): the web app appends them in this order and aiohttp stops them in reverse;
        `start`/`stop` do the same with an AsyncExitStack for callers without a web app."""
        return [
            ("store", self._store_life),
            ("node-feed", self._node_feed_life),
            ("desk", self._desk_life),
            ("hep", self._hep_life),
            ("ari", self._ari_life),
            ("retention", self._task_life(self._retention_loop, "ivr112-retention")),
            ("memory-trim", self._task_life(self.quiet_trim.run, "ivr112-memory-trim")),
            ("operators-first", self._task_life(self.free_operators.run, "ivr112-operators-first")),
            ("texts", self._texts_life),
            ("agency-push", self._task_life(self.agency_push.run, "ivr112-agency-push")),
        ]

    async def _store_life(self) -> AsyncIterator[None]:
        await self.store.open()
        yield
        await self.store.close()

    async def _node_feed_life(self) -> AsyncIterator[None]:
        if self.node_feed is not None:
            self.node_feed.start()
        yield
        if self.node_feed is not None:
            await self.node_feed.close()

    async def _desk_life(self) -> AsyncIterator[None]:
        await self.desk.start()
        yield
        await self.desk.close()

    async def _hep_life(self) -> AsyncIterator[None]:
        await self.hep.start("127.0.0.1", self.settings.hep_port)
        yield
        self.hep.stop()

    async def _ari_life(self) -> AsyncIterator[None]:
        """The ARI link and everything fed by it: the channel workers and the call controllers."""
        events = asyncio.create_task(self.ari.run(self._on_event, self._on_connect), name="ivr112-ari-events")
        yield
        await self.ari.close()
        await asyncio.gather(events, return_exceptions=True)
        await self.dispatcher.close()
        await asyncio.gather(*self._forgetting, return_exceptions=True)
        for controller in self.controllers.values():
            await controller.close()

    async def _texts_life(self) -> AsyncIterator[None]:
        self.texts.start()
        yield
        await self.texts.stop()

    @staticmethod
    def _task_life(run: Callable[[], Coroutine[Any, Any, None]], name: str) -> Resource:
        async def life() -> AsyncIterator[None]:
            task = asyncio.create_task(run(), name=name)
            yield
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

        return life

    async def start(self) -> None:
        from ari_app.deploy.firewall import exposure_warnings

        for warning in exposure_warnings(self.settings, self.plans.current):
            log.warning(warning)
        stack = contextlib.AsyncExitStack()
        for _name, life in self.resources():
            await stack.enter_async_context(contextlib.asynccontextmanager(life)())
        self._stack = stack

    async def stop(self) -> None:
        if self._stack is not None:
            stack, self._stack = self._stack, None
            await stack.aclose()

    async def _retention_loop(self) -> None:
        from ari_app.retention import purge_store

        while True:
            try:
                await self.store.run(lambda s: purge_store(s, self.settings))
            except Exception as exc:  # loud, but never the end of the app
                log.error("retention run failed: %r", exc)
            await asyncio.sleep(RETENTION_INTERVAL_S)


def _node_feed(settings: Settings, hub: Hub, store: AsyncStore) -> NodeFeed | None:
    """On a PostgreSQL store, the feed that joins this node's live stream to the other nodes'."""
    conninfo = libpq_url(settings.store_url)
    if conninfo is None:
        return None
    name = settings.node_name or socket.gethostname()
    feed = NodeFeed(conninfo, node=f"{name}/{settings.instance}/{os.getpid()}", settle=store.settle,
                    unnamed=not settings.node_name)
    feed.carry(hub, RELAYED)
    return feed


def _msisdn(number: str) -> str:
    """The number AML would name this caller by; "" for anonymous or odd caller ids."""
    try:
        return normalise_msisdn(number) if number else ""
    except LocationParseError:
        return ""
