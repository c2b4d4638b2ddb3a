"""How a call's time in the app ends: the caller hung up (the incident's end written, and
a call no person answered put on the callback list), or the app failed (logged with the
channel id, and the call handed to the operators' queue: never left in silence). A caller
who simply hung up before the app could act is told apart from a fault (`caller_gone`).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from ari_app.ari.errors import AriError, AriNotFound, AriUnprocessable
from ari_app.asterisk.render import QUEUE_CONTEXT
from ivr import callbacks
from ivr.menu_events import HungUp, State
from ivr.store import now

if TYPE_CHECKING:
    from ari_app.calls.controller import CallController

log = logging.getLogger(__name__)

# The end reason of a call whose caller hung up before the app could subscribe to it.
GONE_BEFORE_FOLLOWED = "hung up before the app could follow the call"
ERROR_MAX_CHARS = 500


async def ended(call: CallController, cause: str) -> None:
    """The call's channel is gone: write the end once, and list an unanswered caller."""
    call.cancel_timer()
    if call.ended:
        return
    call.ended = True
    call.peers.call_ended(call.caller, call.channel_id)
    if call.incident is None:
        call.incident = await call.store.by_channel(call.channel_id)
    if call.flow is not None and call.flow.state not in (State.ROUTED, State.ENDED):
        call.flow.handle(HungUp())
    if call.incident is not None:
        await call.store.update(call.incident.id, ended_at=now(), end_reason=cause)
        call.peers.incident_changed(call.incident.id, "ended", {"cause": cause})  # the console and the agencies' push
        log.info("[%s] incident %d ended: %s", call.channel_id, call.incident.id, cause)
        await _unanswered_to_callbacks(call)


async def follow_or_end(call: CallController) -> None:
    """The call left Stasis and the app is not subscribed to it, so no ChannelDestroyed
    will come: follow it now, or, when it is gone already, end it here.

    That happens when the caller hangs up before the app could subscribe: an app that
    fell behind (stalled, or on a starved CPU) reads the call's start and end at once.
    Without this the incident stayed open and the caller never reached the callback list.
    """
    try:
        await call.subscribe()
    except (AriNotFound, AriUnprocessable):  # 404 / 422 "Event source does not exist": gone
        cause = f" (cause {call.hangup_cause})" if call.hangup_cause is not None else ""
        log.warning("[%s] the caller hung up%s before the app could follow the call", call.channel_id, cause)
        await ended(call, f"{GONE_BEFORE_FOLLOWED}{cause}")
    except AriError as exc:
        log.error("[%s] cannot follow the call after Stasis: %s", call.channel_id, exc)


async def fail(call: CallController, exc: BaseException) -> None:
    """Log the error with the channel id and hand the call to the operators' queue."""
    call.cancel_timer()
    if await caller_gone(call, exc):
        # Not a fault: the caller hung up before the app could act (an app that fell
        # behind sees that often). Nothing to hand over; StasisEnd ends the call.
        log.warning("[%s] the caller hung up before the app could act: %s", call.channel_id, exc)
        try:
            await call.step("caller_gone", {"during": f"{getattr(exc, 'method', '')} {getattr(exc, 'path', '')}".strip()})
        except Exception as store_exc:  # logged; the call's end is still written later
            log.error("[%s] could not record the early hang-up: %r", call.channel_id, store_exc)
        return
    log.error("[%s] call controller error, sending the call to the operators: %r", call.channel_id, exc)
    if call.incident is not None:
        try:
            await call.store.update(call.incident.id, fallback=1)
            await call.step("error", {"error": repr(exc)[:ERROR_MAX_CHARS]})
        except Exception as store_exc:  # the store failing must not stop the fallback
            log.error("[%s] could not record the error: %r", call.channel_id, store_exc)
    if not call.in_stasis or call.ended:
        return
    await call.release_agency("error", caller_gone=False)
    await _to_fallback(call)


async def _to_fallback(call: CallController) -> None:
    plan = call.plan or call.plans.plan_for("")
    try:
        # The error may have come before the subscription: without it, the call's end
        # (after the queue) would never reach the app and its incident would stay open.
        await call.subscribe()
    except AriError as sub_exc:
        log.warning("[%s] not subscribed to the call's end: %s", call.channel_id, sub_exc)
    try:
        await call.ari.continue_in_dialplan(call.channel_id, context=QUEUE_CONTEXT, extension=plan.asterisk_queue(plan.default_queue.name),
                                            priority=1)
    except AriError as ari_exc:
        log.error("[%s] fallback failed too (the channel may be gone): %s", call.channel_id, ari_exc)


async def caller_gone(call: CallController, exc: BaseException) -> bool:
    """True only when Asterisk confirms this call's channel no longer exists: a 404 (or a
    422) naming the channel, and the channel itself not found. Anything else is a fault,
    and the call goes to the fallback."""
    if not isinstance(exc, (AriNotFound, AriUnprocessable)) or exc.channel_id != call.channel_id:
        return False
    try:
        return await call.ari.channel_gone(call.channel_id)
    except AriError:
        return False


async def _unanswered_to_callbacks(call: CallController) -> None:
    """A call that ended before any person answered goes on the callback list. The store
    decides (a person may have answered on another path: the record says), on its thread,
    after the call's other writes: while it fails the write is kept and decided when replayed."""
    assert call.incident is not None
    incident_id, caller = call.incident.id, call.caller
    entry = await call.store.write("callback_missed", incident_id, wait=True, number=caller, at=now())
    if isinstance(entry, callbacks.Callback):
        detail = {"number": caller, "calls": str(entry.calls)}
        call.peers.incident_changed(incident_id, "callback_listed", detail)
        log.info("[%s] incident %d: no person answered %s; on the callback list (%d call(s))", call.channel_id, incident_id, caller,
                 entry.calls)
    elif not call.store.ok:
        log.warning("[%s] incident %d: the callback list decision for %s waits for the store", call.channel_id, incident_id, caller)
