"""The operators' desk: queue membership through AMI, the live board, and what answered
calls mean for incidents (who answered, when) and for the callback list.

Asterisk's app_queue keeps the members (persistentmembers: they survive a restart; the
softphone feature codes change them even with the app down). The desk sends QueueAdd /
QueueRemove / QueuePause for the command line and the API, follows every queue event into
the `Board`, and rebuilds it from QueueStatus after each AMI (re)login, so a dropped AMI
connection loses nothing that matters.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from ari_app.asterisk.layout import Layout
from ari_app.asterisk.render import (
    AGENCY_CONTEXT,
    AMI_USER,
    CALLER_CHANNEL_VAR,
    CONFERENCE_CONTEXT,
    all_queues,
    operator_interface,
    operator_queues,
)
from ari_app.metrics import Metrics
from ari_app.operators.ami import AmiClient, AmiError, AmiEvent
from ari_app.storage import AsyncStore, StoreUnavailable
from ari_app.store import IncidentStore
from ivr import callbacks, queue_log
from ivr.errors import ConfigError, Ivr112Error
from ivr.operators import AGENT_EVENTS, MEMBER_EVENTS, Board, Change, web_endpoint
from ivr.plan import PlanSet
from ivr.secrets import Secrets
from ivr.settings import Settings
from ivr.store import Incident, now

log = logging.getLogger(__name__)

# Events after which an operator may have become free for a caller in the IVR.
QUEUE_EVENTS = frozenset({*MEMBER_EVENTS, *AGENT_EVENTS, "QueueCallerJoin", "QueueCallerLeave", "QueueCallerAbandon"})
QUEUE_LOG_FILE = "queue_log"  # in the instance's log folder (Asterisk's default name)
# The phones an operator can answer on (`login`'s phone).
SOFTPHONE, BROWSER = "softphone", "browser"
PHONES = (SOFTPHONE, BROWSER)
# A wrap-up's end is told this long after it, so the board surely reads it as over.
WRAPUP_END_SLACK_S = 0.05


class DeskError(Ivr112Error):
    """An operator action that cannot be done (unknown operator, AMI down, Asterisk refused)."""


def as_caller(event: AmiEvent) -> AmiEvent:
    """The event as if on the caller's own channel: in a cluster a caller sent here from
    another node is a leg of its own (ari_app/asterisk/render.py, REMOTE_QUEUE_CONTEXT)
    that names the caller's channel in CALLER_CHANNEL_VAR (AMI's `ChanVariable`), so what
    happens in this node's queue is written on the caller's incident in the shared store."""
    for value in _values(event.fields.get("ChanVariable")):
        name, _, caller = value.partition("=")
        if name == CALLER_CHANNEL_VAR and caller and event.fields.get("Uniqueid") not in (None, caller):
            return AmiEvent(event.name, {**event.fields, "Uniqueid": caller, "LegUniqueid": event.fields["Uniqueid"]})
    return event


def _values(raw: object) -> list[str]:
    """A header AMI may repeat, as a list (one value is a plain string)."""
    if raw is None:
        return []
    return [str(v) for v in raw] if isinstance(raw, list) else [str(raw)]


class Desk:
    def __init__(self, settings: Settings, secrets: Secrets, plans: Any, store: AsyncStore,
                 publish: Callable[[str, dict[str, Any]], None] | None = None, metrics: Metrics | None = None) -> None:
        self.publish = publish
        self.metrics = metrics
        self.settings = settings
        self.plans = plans  # PlanRegistry: .current is the PlanSet being served
        self.store = store
        self.names = [op.name for op in settings.operators]
        self.board = Board(self.names, self._wrapups(plans.current))
        self.ami = AmiClient(
            settings.ami_host, settings.ami_port, AMI_USER, secrets.ami_secret,
            on_event=self._on_event, on_login=self.resync,
        )
        self.resyncs = 0
        # Callers waiting in our queues, by their channel's uniqueid (from AMI; resynced).
        self.waiting: dict[str, dict[str, str]] = {}
        # Told after every queue event and resync: the free operators may have changed.
        self.on_change: Callable[[], object] | None = None
        self._reconciling: asyncio.Future[int] | None = None  # the queue_log reading under way
        self._wrapup_ends: dict[str, asyncio.TimerHandle] = {}  # by operator: when to tell their wrap-up is over

    @staticmethod
    def _wrapups(plans: PlanSet) -> dict[str, int]:
        return {p.asterisk_queue(q.name): q.wrapup for p in plans.plans for q in p.queues.values()}

    async def start(self) -> None:
        await self.ami.start()

    async def close(self) -> None:
        for handle in self._wrapup_ends.values():
            handle.cancel()
        self._wrapup_ends.clear()
        await self.ami.close()
        if self._reconciling is not None and not self._reconciling.done():
            self._reconciling.cancel()
            await asyncio.gather(self._reconciling, return_exceptions=True)

    @property
    def connected(self) -> bool:
        return self.ami.connected

    # Actions ----------------------------------------------------------------------------

    def _check(self, name: str) -> str:
        """The interface `name` is a queue member as now (the softphone's when logged out)."""
        if name not in self.names:
            known = ", ".join(self.names) or "none (add operators: in config/ivr112.yaml)"
            raise DeskError(f"no operator named {name!r}; operators: {known}")
        if not self.ami.connected:
            raise DeskError("Asterisk's AMI is not connected; operators can still use the softphone codes *11 (log in) "
                            "*12 (log out) *13 (pause) *14 (resume)")
        member = self.board.get(name)
        return member.interface if member.queues and member.interface else operator_interface(name)

    def _queues_of(self, name: str) -> list[str]:
        """The queues operator `name` logs in to: their plan's, or every plan's."""
        op = next(o for o in self.settings.operators if o.name == name)
        try:
            return operator_queues(op, self.plans.current)
        except ConfigError as exc:
            raise DeskError(str(exc)) from None

    async def login(self, name: str, phone: str = SOFTPHONE) -> None:
        """Into the operator's plan's queues (every plan's for a provincial operator) with the
        phone the operator answers on: the softphone or the browser phone (one at a time: a
        switch takes the other out of the queues first)."""
        if phone not in PHONES:
            raise DeskError(f"no phone kind {phone!r}; say {' or '.join(PHONES)}")
        current = self._check(name)
        queues = self._queues_of(name)
        interface = operator_interface(web_endpoint(name) if phone == BROWSER else name)
        if current != interface and self.board.get(name).queues:
            await self.logout(name)
        for queue in queues:
            try:
                await self.ami.queue_add(queue, interface, member_name=name, state_interface=interface)
            except AmiError as exc:
                if "already" not in str(exc).lower():
                    raise DeskError(f"could not log {name} in to {queue}: {exc}") from exc
        await self._log(name, "login_requested", {"phone": phone})

    async def logout(self, name: str) -> None:
        interface = self._check(name)
        for queue in all_queues(self.plans.current):
            try:
                await self.ami.queue_remove(queue, interface)
            except AmiError as exc:
                if "not there" not in str(exc).lower() and "not in queue" not in str(exc).lower():
                    raise DeskError(f"could not log {name} out of {queue}: {exc}") from exc
        await self._log(name, "logout_requested", {})

    async def pause(self, name: str, reason: str) -> None:
        interface = self._check(name)
        if not self.board.get(name).queues:
            raise DeskError(f"{name} is not logged in; log in first (ivr112 operators login {name})")
        try:
            await self.ami.queue_pause(interface, True, reason=reason[:80] or "pause")
        except AmiError as exc:
            raise DeskError(f"could not pause {name}: {exc}") from exc

    async def resume(self, name: str) -> None:
        interface = self._check(name)
        try:
            await self.ami.queue_pause(interface, False)
        except AmiError as exc:
            raise DeskError(f"could not resume {name}: {exc}") from exc

    async def redirect(self, channel: str, context: str, exten: str) -> None:
        if not self.ami.connected:
            raise DeskError("Asterisk's AMI is not connected; transfer from the softphone instead")
        try:
            await self.ami.redirect(channel, context, exten)
        except AmiError as exc:
            raise DeskError(f"could not move the call: {exc}") from exc

    async def conference(self, caller: str, operator: str, *, room: str, agency_exten: str, caller_id: str,
                         variables: Sequence[str] = ()) -> None:
        """Caller and operator into a conference room, and the agency dialled into it (its
        trunk leg given `variables`, inherited: ivr.agency_data.dialplan_leg_variables)."""
        if not self.ami.connected:
            raise DeskError("Asterisk's AMI is not connected; transfer from the softphone instead")
        try:
            await self.ami.redirect(caller, CONFERENCE_CONTEXT, f"c{room}", extra_channel=operator,
                                    extra_context=CONFERENCE_CONTEXT, extra_exten=room)
            await self.ami.action(
                "Originate", Channel=f"Local/{agency_exten}@{AGENCY_CONTEXT}", Context=CONFERENCE_CONTEXT, Exten=room,
                Priority="1", Async="true", CallerID=f'"{caller_id}" <{caller_id}>',
                Variable=["__IVR112_CONFERENCE=1", *variables],
            )
        except AmiError as exc:
            raise DeskError(f"could not start the conference: {exc}") from exc

    def view(self) -> list[dict[str, object]]:
        return [o.view() for o in self.board.operators.values()]

    # Following Asterisk -----------------------------------------------------------------

    async def resync(self) -> None:
        """After every AMI login: rebuild the board from what app_queue holds right now."""
        members, entries = await self.ami.queue_status()
        ours = set(all_queues(self.plans.current))
        changes = self.board.reset([m for m in members if m.get("Queue") in ours])
        self.waiting = {
            e["Uniqueid"]: {"channel": e["Uniqueid"], "caller": e.get("CallerIDNum", ""), "queue": e.get("Queue", ""),
                            "since": now(), "wait_s": e.get("Wait", "")}
            for e in entries if e.get("Queue") in ours and e.get("Uniqueid")
        }
        self.resyncs += 1
        if self.resyncs > 1 and self.metrics is not None:
            self.metrics.failure("ami_disconnect")
        log.info("AMI: queue state resynced (%d member rows, %d callers waiting)", len(members), len(entries))
        for change in changes:
            await self._log(change.operator, change.action, change.detail)
        await self.reconcile()
        self._changed()

    def _queue_log_path(self) -> Path:
        layout = Layout(self.settings.root_path, self.settings.instance)
        return layout.host(layout.log) / QUEUE_LOG_FILE

    def _read_queue_log(self) -> list[str]:
        """The newest lines of Asterisk's queue_log (in a thread: a file read)."""
        path = self._queue_log_path()
        try:
            with path.open("rb") as f:
                size = f.seek(0, 2)
                start = max(0, size - queue_log.TAIL_BYTES)
                f.seek(start)
                return queue_log.tail_lines(f.read(), from_start=start == 0)
        except OSError as exc:
            log.warning("queue_log %s not read (what happened in the queues while the app was away stays unknown): %s", path, exc)
            return []

    async def reconcile(self) -> int:
        """Fill in from Asterisk's queue_log what the incidents miss: the queue a caller
        joined and the operator who answered, while the app (or its AMI link) was away.
        Returns how many incidents were corrected. Only fills what is empty: safe to run
        at every (re)connect, beside the live AMI events. At the app's start the ARI and
        AMI connections both ask at once: the second waits for the first's reading."""
        running = self._reconciling
        if running is None or running.done():
            running = self._reconciling = asyncio.ensure_future(self._reconcile())
        return await asyncio.shield(running)

    async def _reconcile(self) -> int:
        lines = await asyncio.get_running_loop().run_in_executor(None, self._read_queue_log)
        plans: PlanSet = self.plans.current
        names = {p.asterisk_queue(q): (p, q) for p in plans.plans for q in p.queues}
        found = queue_log.facts(lines, set(names))
        if not found:
            return 0

        def record(s: IncidentStore) -> list[tuple[Incident, str]]:
            fixed = []
            for channel, f in found.items():
                incident = s.by_channel(channel)
                if incident is None:
                    continue
                what = []
                if f.joined_at and not incident.queued_at:
                    queue = names[f.queue][1]
                    answered = (incident.route_result or "").startswith("answered by")
                    s.update(incident.id, queued_at=f.joined_at, queue=queue,
                             **({} if answered else {"route": f"queue:{queue}", "route_result": "queued"}))
                    s.add_event(incident.id, "queue_joined", {"queue": f.queue, "source": "queue_log"}, at=f.joined_at)
                    what.append("queue")
                if f.answered_at and not incident.operator_answered_at:
                    s.update(incident.id, operator=f.operator, operator_answered_at=f.answered_at)
                    s.add_event(incident.id, "operator_answered", {"operator": f.operator, "source": "queue_log"}, at=f.answered_at)
                    callbacks.answered(s, incident.caller_number, reason=f"answered by {f.operator}")
                    what.append("operator")
                if what:
                    fixed.append((incident, ",".join(what)))
            return fixed

        fixed = await self.store.run(record)
        for incident, what in fixed:
            log.warning("[%s] incident %d: %s filled in from Asterisk's queue_log (the app did not see it live)",
                        incident.channel_id, incident.id, what)
        return len(fixed)

    async def _on_event(self, event: AmiEvent) -> None:
        event = as_caller(event)
        fields = event.fields
        changes = self.board.apply(event.name, fields)
        for change in changes:
            if change.action == "answered":
                await self._answered(change)  # first: the pushed state then names the incident
            elif change.action == "ringing":
                await self._ringing(change)  # the console pops the call before the answer
            elif change.action in ("no_answer", "ring_ended"):
                self._ring_over(change.operator)
            await self._log(change.operator, change.action, change.detail)
        if event.name in ("QueueCallerJoin", "QueueCallerLeave", "QueueCallerAbandon"):
            self._follow_waiting(event)
        if event.name == "QueueCallerJoin":
            await self._incident_event(fields.get("Uniqueid", ""), "queue_joined",
                                       {"queue": fields.get("Queue", ""), "position": fields.get("Position", "")})
        elif event.name == "QueueCallerAbandon":
            # A caller with no incident (the app was down when the call came: the fallback
            # queued it) who hangs up in the queue goes on the callback list.
            caller = fields.get("CallerIDNum", "")
            known = await self._incident_event(fields.get("Uniqueid", ""), "queue_abandoned",
                                               {"queue": fields.get("Queue", ""), "hold_s": fields.get("HoldTime", "")}, missed_caller=caller)
            if known is False and caller:
                log.warning("caller %s hung up in the queue with no incident (it never went through the app): on the callback list", caller)
        elif event.name == "BlindTransfer":
            await self._incident_event(fields.get("TransfereeUniqueid", ""), "transferred",
                                       {"to": fields.get("Extension", ""), "by": fields.get("TransfererChannel", "")})
        elif event.name == "AttendedTransfer":
            await self._incident_event(fields.get("OrigTransfererUniqueid", ""), "transferred",
                                       {"to": fields.get("SecondTransfererExten", ""), "kind": "attended"})
        if changes or event.name in QUEUE_EVENTS:
            self._changed()

    def _changed(self) -> None:
        if self.on_change is not None:
            try:
                self.on_change()
            except Exception as exc:  # a listener's fault never stops the desk
                log.error("desk change listener failed: %r", exc)

    def _follow_waiting(self, event: AmiEvent) -> None:
        channel = event.fields.get("Uniqueid", "")
        if not channel:
            return
        if event.name == "QueueCallerJoin":
            self.waiting[channel] = {"channel": channel, "caller": event.fields.get("CallerIDNum", ""),
                                     "queue": event.fields.get("Queue", ""), "since": now()}
        else:
            self.waiting.pop(channel, None)
            # A caller from another node may be listed under its leg's id (QueueStatus after a resync).
            self.waiting.pop(event.fields.get("LegUniqueid", ""), None)
        if self.publish is not None:
            self.publish("wall", {"waiting": list(self.waiting.values())})

    async def _ringing(self, change: Change) -> None:
        """A queue call rings an operator's softphone: the board names its incident, so the
        operator's console shows the caller and what the IVR learned before they answer."""
        channel = change.detail.get("channel", "")
        try:
            incident = await self.store.by_channel(channel) if channel else None
        except StoreUnavailable as exc:  # the operator answers all the same, without the pop
            log.warning("operator %s: the ringing call's incident is unknown (%s)", change.operator, exc)
            incident = None
        operator = self.board.get(change.operator)
        if incident is not None and operator.ringing_channel == channel and not operator.caller_channel:
            operator.incident_id = incident.id

    def _ring_over(self, name: str) -> None:
        """The ring ended unanswered (or another operator took the call): the pop goes."""
        operator = self.board.get(name)
        if not operator.caller_channel and not operator.ringing_channel:
            operator.incident_id = None

    async def _answered(self, change: Change) -> None:
        """An operator answered a queued call: the incident says who and when; no callback needed."""
        channel, name = change.detail.get("channel", ""), change.operator

        # Handed to the store (kept while it fails); the incident comes back while it is healthy.
        incident = await self.store.write("operator_answered", wait=True, channel=channel, operator=name,
                                          caller=change.detail.get("caller", ""), hold_s=change.detail.get("hold_s", ""), at=now())
        incident_id = incident.id if isinstance(incident, Incident) else None
        if self.metrics is not None:
            self.metrics.person_answered("operator", incident.arrived_at if isinstance(incident, Incident) else None)
        self.board.get(name).incident_id = incident_id
        log.info("operator %s answered %s (incident %s)", name, change.detail.get("caller", "?"), incident_id)

    async def _incident_event(self, channel: str, kind: str, detail: dict[str, str], *, missed_caller: str = "") -> bool | None:
        """Add an event to the incident of a caller's channel; False when there is none, None
        when the store fails (the write is kept and decided when replayed)."""
        if not channel:
            return False
        known = await self.store.write("channel_event", wait=True, channel=channel, kind=kind, detail=detail, at=now(),
                                       missed_caller=missed_caller)
        return known if isinstance(known, bool) else None

    async def _log(self, operator: str, action: str, detail: dict[str, str]) -> None:
        log.info("operator %s: %s %s", operator, action, detail or "")
        await self.store.write("log_operator", operator=operator, action=action, detail=detail, at=now())
        if self.publish is not None:
            self.publish("operator", {**self.board.get(operator).view(), "action": action})
            self._tell_wrapup_end(operator)

    def _tell_wrapup_end(self, operator: str) -> None:
        """A wrap-up ends with no event from Asterisk: publish the operator's state when it
        does, or their own page (and the wall) would say "menyelesaikan" until the next change."""
        state = self.board.get(operator)
        if state.status() != "wrapup":
            return
        left = (datetime.fromisoformat(state.wrapup_until) - datetime.fromisoformat(now())).total_seconds()
        old = self._wrapup_ends.pop(operator, None)
        if old is not None:
            old.cancel()
        self._wrapup_ends[operator] = asyncio.get_running_loop().call_later(
            max(0.0, left) + WRAPUP_END_SLACK_S, self._wrapup_over, operator)

    def _wrapup_over(self, operator: str) -> None:
        self._wrapup_ends.pop(operator, None)
        view = self.board.get(operator).view()
        if self.publish is not None and view["status"] != "wrapup":
            self.publish("operator", {**view, "action": "wrapup_over"})

    def holding(self, incident_channel: str) -> str | None:
        return self.board.holding(incident_channel)
