"""The first second of a call in Stasis: the incident written before anything else, the
call's recording named on it, what earlier calls from the number say, talk detection, and
where the INVITE says the caller is. Also the entry of a caller coming back into Stasis
for an agency (a queue's overflow, an operator's transfer).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ari_app.ari import events as ev
from ari_app.ari.errors import AriError
from ari_app.asterisk.render import TALK_DETECT_VAR, call_recording_name
from ari_app.calls.locating import Earlier, dereference, since
from ari_app.calls.ports import LocationArrived
from ivr import callbacks, classify
from ivr.location import Location
from ivr.menu import CallFlow
from ivr.menu_events import LocationGood
from ivr.plan import Plan
from ivr.priority import CallerHistory
from ivr.store import now

if TYPE_CHECKING:
    from ari_app.calls.controller import CallController
    from ari_app.store import IncidentStore

log = logging.getLogger(__name__)


def carrier_of(channel: ev.Channel) -> str:
    """The carrier's endpoint from a channel name such as PJSIP/carrier-telkomsel-00000001."""
    return channel.name.split("/", 1)[-1].rsplit("-", 1)[0]


def incident_fields(ch: ev.Channel, plan: Plan, called: str) -> dict[str, str]:
    """What a call's incident opens with, however the app meets the call (at its start, back
    from the dialplan, or found after a reconnect). arrived_at is the INVITE's arrival
    (the channel's creation): the dialplan's Answer() waits up to 0.5 s for media before
    Stasis, a call met late may have waited much longer, and the 15 s the centre is judged
    by start at the INVITE."""
    fields = {"channel_id": ch.id, "plan_id": plan.id, "caller_number": ch.caller_number, "called_number": called,
              "carrier": carrier_of(ch), "language": plan.default_language}
    if created_at := ch.created_at:
        fields["arrived_at"] = created_at
    return fields


async def open_call(call: CallController, event: ev.StasisStart, plan: Plan) -> None:
    """A new call: write its incident, answer it, learn what can be known, start the menu."""
    ch = event.channel
    call.called = event.args[1] if len(event.args) > 1 else ch.dialplan_exten
    call.caller = ch.caller_number
    call.plan = plan
    call.in_stasis = True
    # The incident first: whatever fails after this, the call is on record. The plan's
    # dialplan answered the call before Stasis (the StasisStart says "Up": no request, and
    # the open says it was answered: one write fewer); the answer here covers a channel
    # that reached us another way, beside the incident's first write so that it never
    # waits on the store's fsyncs (synchronous=FULL).
    up = ch.state == "Up"
    opened, answer_result = await asyncio.gather(
        call.store.open_incident(**incident_fields(ch, plan, call.called), **({"answered_at": now()} if up else {})),
        _answer_unless_up(call, ch),
        return_exceptions=True,
    )
    if isinstance(opened, BaseException):
        raise opened
    call.incident = opened
    if isinstance(answer_result, BaseException):
        raise answer_result
    log.info("[%s] incident %d: call from %r to %s (plan %s)", ch.id, opened.id, ch.caller_number, call.called, plan.id)
    if not up:
        await call.store.update(opened.id, answered_at=now())
    await _keep_call_recording(call)
    call.peers.call_started(call.caller, ch.id)
    # Hang-up events must reach us after the call has left Stasis for the queue.
    await call.subscribe()
    history, earlier = await _history(call, plan)
    language = ch.language if ch.language in plan.languages else None
    call.announcement_media = call.peers.announcement_sound(language or plan.default_language)
    flow = call.flow = CallFlow(plan, language=language, prank=history.prank, announcement=call.announcement_media is not None)
    await _talk_detect(call, ch.variables)
    if await _locate_at_start(call, plan, earlier, ch.variables):
        flow.handle(LocationGood())
    await call.run(flow.start())
    if plan.operators_first.enabled:
        call.peers.person_wanted()


async def _answer_unless_up(call: CallController, ch: ev.Channel) -> None:
    if ch.state != "Up":
        await call.ari.answer(ch.id)


async def back_for_agency(call: CallController, event: ev.StasisStart, name: str, *, via: str) -> None:
    """The caller is back from the dialplan for an agency: the queue overflowed to it, or
    an operator transferred the call. The app dials it as from the menu, so the incident
    says which trunk answered (or why none did) and a dead trunk is left at once."""
    ch = event.channel
    call.in_stasis = True
    plan = call.plan = call.plan or call.plans.plan_for(event.args[0] if event.args else "")
    # Read again: the queue, the operator and the transfer were written since the start.
    incident = call.incident = await call.store.by_channel(ch.id)
    if incident is None:
        # A call the app never met: it came while the app was away and the fallback queued it.
        call.caller = ch.caller_number
        incident = call.incident = await call.store.open_incident(**incident_fields(ch, plan, next(iter(plan.numbers), "")))
        await call.step("recovered", {"state": ch.state, "via": via or "transfer"})
    call.caller = call.caller or incident.caller_number
    call.called = call.called or incident.called_number
    if not call.subscribed:
        await call.subscribe()
    if via == "overflow":
        queue = incident.queue or plan.default_queue.name
        reason = f"overflow from queue {queue}"
        await call.step("overflow", {"queue": queue, "agency": name})
    else:  # the transfer itself is on the incident already (API or softphone)
        reason = f"transfer by operator {incident.operator}" if incident.operator else "transfer"
    target = plan.agencies.get(name)
    if target is None:  # the plan was reloaded without it: never strand the caller
        log.error("[%s] agency %r is not in plan %s; to the operators", ch.id, name, plan.id)
        await call.to_queue(plan.default_queue.name, reason=f"agency {name} unknown")
        return
    log.info("[%s] incident %d: %s to agency %s", ch.id, incident.id, reason, name)
    await call.dial_agency(target, reason)


async def _keep_call_recording(call: CallController) -> None:
    """The dialplan's MixMonitor records the caller's channel from before Stasis to the
    hang-up (operator, agency and transfers included); the incident names its file."""
    assert call.incident is not None
    name = call_recording_name(call.channel_id)
    path = f"{call.layout.recordings}/{name}.wav"
    incident_id = call.incident.id
    await call.store.write("add_recording", incident_id, kind="call", name=name, path=path, at=now())
    await call.step("recording", {"name": name, "path": path, "kind": "call"})


async def _history(call: CallController, plan: Plan) -> tuple[CallerHistory, Earlier]:
    """What earlier calls from this number say: a redial after a dropped call, a prank flag,
    and where it was (AML that came first, the last position). One store call for all of
    them: four, each a round trip to the store's thread and a connection of the pool, were
    a tenth of the store thread's CPU per IVR call."""
    assert call.incident is not None
    caller, incident_id = call.caller, call.incident.id
    minutes = plan.priority.redial_minutes

    def read(s: IncidentStore) -> tuple[bool, bool, Earlier]:
        redial = bool(caller) and minutes > 0 and callbacks.redial(s, caller, since=since(minutes=minutes))
        prank = bool(plan.prank.prompt) and classify.prank_flagged(s, caller, plan.prank)
        return redial, prank, call.locator.earlier(s, incident_id, caller, plan)

    redial, prank, earlier = await call.store.run(read) if caller else (False, False, Earlier())
    call.history = CallerHistory(redial=redial, prank=prank)
    flags = [name for name, on in (("redial", redial), ("prank_flagged", prank)) if on]
    if flags:
        await call.store.update(incident_id, flags=",".join(flags))
        await call.step("caller_history", {"flags": ",".join(flags)})
    return call.history, earlier


async def _talk_detect(call: CallController, handed: Mapping[str, Any]) -> None:
    """Ask Asterisk to say when the caller talks: a silent caller is one who never does.
    The plan's dialplan does it before Stasis (and says so in `handed`, the StasisStart's
    channel variables); a call that came another way is asked here."""
    if handed.get(TALK_DETECT_VAR) == "1":
        return
    try:
        await call.ari.set_variable(call.channel_id, "TALK_DETECT(set)", "")
    except AriError as exc:
        log.warning("[%s] no talk detection (silent-caller check uses keys only): %s", call.channel_id, exc)


async def _locate_at_start(call: CallController, plan: Plan, earlier: Earlier, handed: Mapping[str, Any]) -> bool:
    """What the INVITE and earlier messages say of where the caller is; True if precise enough.

    A failure here costs the call nothing: it is logged and the call goes on.
    """
    assert call.incident is not None
    incident_id, locator = call.incident.id, call.locator
    good = False
    try:
        found = await locator.from_invite(call.ari, call.channel_id, handed)
        found += await locator.pending_aml(incident_id, earlier.aml)
        for location in found:
            await locator.keep(incident_id, location, plan)
            good = good or locator.is_good(location, plan)
        if plan.location.dereference:
            for ref in [loc for loc in found if loc.source == "reference" and loc.uri]:
                call.background(_fetch_reference(call, ref.uri, plan))
        hint = locator.repeat_hint(earlier.last)
        if hint is not None:
            await locator.keep(incident_id, hint, plan, hint=True)
    except AriError as exc:
        log.warning("[%s] location lookup failed, going on without it: %s", call.channel_id, exc)
    return good


async def _fetch_reference(call: CallController, uri: str, plan: Plan) -> None:
    """The position behind a Geolocation URI, fetched beside the call (it never waits on it)."""
    assert call.incident is not None
    for location in await dereference(uri):
        await call.locator.keep(call.incident.id, location, plan)
        if call.locator.is_good(location, plan):
            call.post(LocationArrived(call.channel_id, True))


async def keep_kecamatan(call: CallController, name: str, digits: str) -> None:
    """The caller's own keyed kecamatan: a place, no position; kept like any other source."""
    assert call.incident is not None and call.plan is not None
    location = Location(source="keypad", shape="kecamatan", method="Manual", detail={"kecamatan": name, "digits": digits})
    await call.locator.keep(call.incident.id, location, call.plan)
