"""The caller saying where they are: a recording of the caller's channel, kept with the
incident; Asterisk ends it (silence, '#', the maximum), and a timer only guards against
its end never being heard.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from ari_app.ari import events as ev
from ari_app.ari.errors import AriError
from ivr.menu_events import RecordingDone, RecordVoice
from ivr.store import now

if TYPE_CHECKING:
    from ari_app.calls.controller import CallController

log = logging.getLogger(__name__)

# Seconds past the recording's maximum after which the app stops waiting for its end.
END_GRACE_S = 5


async def record_voice(call: CallController, action: RecordVoice) -> None:
    """Record the caller saying where they are; the file is kept with the incident."""
    assert call.incident is not None
    name = f"incident-{call.incident.id}-location"
    call.recording_name = name
    call.peers.recording_started(name, call.channel_id)
    try:
        await call.ari.record(call.channel_id, name, max_duration_s=action.max_seconds, max_silence_s=action.silence_seconds)
    except AriError as exc:
        log.error("[%s] could not record the caller's location: %s", call.channel_id, exc)
        call.recording_name = None
        await call.feed(RecordingDone(), None)
        return
    await call.step("recording_started", {"name": name})
    call.start_timer(action.max_seconds + END_GRACE_S)


async def stop_recording(call: CallController) -> None:
    """End the caller's location recording early (a free operator takes the call); the
    file so far is kept when Asterisk reports its end."""
    if call.recording_name is None:
        return
    call.cancel_timer()
    try:
        await call.ari.stop_recording(call.recording_name, channel_id=call.channel_id)
    except AriError as exc:  # it ended on its own meanwhile
        log.debug("[%s] recording %s not stopped: %s", call.channel_id, call.recording_name, exc)


async def recorded(call: CallController, event: ev.RecordingFinished | ev.RecordingFailed) -> None:
    """Asterisk's end of the caller's recording: keep the file, and let the menu go on."""
    if event.name != call.recording_name or call.incident is None:
        return
    call.recording_name = None
    call.cancel_timer()
    path = f"{call.layout.recordings}/{event.name}.wav"
    if isinstance(event, ev.RecordingFinished):
        duration = float(event.duration) if event.duration is not None else None
        incident_id, name = call.incident.id, event.name
        await call.store.write("add_recording", incident_id, kind="caller_location", name=name, path=path, duration_s=duration, at=now())
        await call.step("recording", {"name": event.name, "path": path, "kind": "caller_location"})
    else:
        await call.step("recording_failed", {"name": event.name, "cause": event.cause})
    talked = None if event.talking_duration < 0 else event.talking_duration > 0
    await call.feed(RecordingDone(talked=talked), None)
