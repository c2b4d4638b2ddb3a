"""ARI's WebSocket JSON turned into the typed events of `ari_app.ari.events`.

`parse_event` never raises: one odd message must not take down the event loop, so missing
fields get empty defaults (`ari_app.ari.json_fields`) and anything unrecognised becomes an
`UnknownEvent` that still knows its channel.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import TypedDict

from ari_app.ari import events as ev
from ari_app.ari.json_fields import JsonDict, json_dict, json_int, json_str

_log = logging.getLogger(__name__)


def parse_channel(data: object) -> ev.Channel:
    """Return the Channel described by an ARI Channel JSON object (defaults for gaps)."""
    if not isinstance(data, Mapping):
        return ev.Channel()
    caller = json_dict(data, "caller")
    connected = json_dict(data, "connected")
    dialplan = json_dict(data, "dialplan")
    return ev.Channel(
        id=json_str(data, "id"),
        name=json_str(data, "name"),
        state=json_str(data, "state"),
        caller_number=json_str(caller, "number"),
        caller_name=json_str(caller, "name"),
        connected_number=json_str(connected, "number"),
        dialplan_context=json_str(dialplan, "context"),
        dialplan_exten=json_str(dialplan, "exten"),
        dialplan_app=json_str(dialplan, "app_name"),
        language=json_str(data, "language"),
        creationtime=json_str(data, "creationtime"),
        variables=json_dict(data, "channelvars"),
    )


class _Common(TypedDict):
    application: str
    timestamp: str


def _common(data: JsonDict) -> _Common:
    return {
        "application": json_str(data, "application"),
        "timestamp": json_str(data, "timestamp"),
    }


def _channel(data: JsonDict) -> ev.Channel:
    return parse_channel(data.get("channel"))


def _stasis_start(data: JsonDict) -> ev.Event:
    args = data.get("args")
    arg_list = args if isinstance(args, list) else []
    return ev.StasisStart(
        **_common(data),
        channel=_channel(data),
        args=tuple(str(a) for a in arg_list if isinstance(a, (str, int, float))),
    )


def _stasis_end(data: JsonDict) -> ev.Event:
    return ev.StasisEnd(**_common(data), channel=_channel(data))


def _dtmf(data: JsonDict) -> ev.Event:
    return ev.ChannelDtmfReceived(
        **_common(data),
        channel=_channel(data),
        digit=json_str(data, "digit"),
        duration_ms=json_int(data, "duration_ms"),
    )


class _PlaybackFields(TypedDict):
    playback_id: str
    target_uri: str
    media_uri: str
    state: str


def _playback_fields(data: JsonDict) -> _PlaybackFields:
    playback = json_dict(data, "playback")
    return {
        "playback_id": json_str(playback, "id"),
        "target_uri": json_str(playback, "target_uri"),
        "media_uri": json_str(playback, "media_uri"),
        "state": json_str(playback, "state"),
    }


def _playback_started(data: JsonDict) -> ev.Event:
    return ev.PlaybackStarted(**_common(data), **_playback_fields(data))


def _playback_finished(data: JsonDict) -> ev.Event:
    return ev.PlaybackFinished(**_common(data), **_playback_fields(data))


def _hangup_request(data: JsonDict) -> ev.Event:
    return ev.ChannelHangupRequest(
        **_common(data),
        channel=_channel(data),
        cause=json_int(data, "cause"),
        soft=data.get("soft") is True,
    )


def _destroyed(data: JsonDict) -> ev.Event:
    return ev.ChannelDestroyed(
        **_common(data),
        channel=_channel(data),
        cause=json_int(data, "cause"),
        cause_txt=json_str(data, "cause_txt"),
    )


def _state_change(data: JsonDict) -> ev.Event:
    return ev.ChannelStateChange(**_common(data), channel=_channel(data))


def _talking_started(data: JsonDict) -> ev.Event:
    return ev.ChannelTalkingStarted(**_common(data), channel=_channel(data))


def _replaced(data: JsonDict) -> ev.Event:
    return ev.ApplicationReplaced(**_common(data))


class _RecordingFields(TypedDict):
    name: str
    format: str
    state: str
    target_uri: str
    duration: int
    cause: str
    talking_duration: int


def _recording(data: JsonDict) -> _RecordingFields:
    recording = json_dict(data, "recording")
    return {
        "name": json_str(recording, "name"),
        "format": json_str(recording, "format"),
        "state": json_str(recording, "state"),
        "target_uri": json_str(recording, "target_uri"),
        "duration": json_int(recording, "duration"),
        "cause": json_str(recording, "cause"),
        "talking_duration": talking if isinstance(talking := recording.get("talking_duration"), int) and not isinstance(talking, bool) else -1,
    }


def _recording_finished(data: JsonDict) -> ev.Event:
    return ev.RecordingFinished(**_common(data), **_recording(data))


def _recording_failed(data: JsonDict) -> ev.Event:
    return ev.RecordingFailed(**_common(data), **_recording(data))


def _entered_bridge(data: JsonDict) -> ev.Event:
    return ev.ChannelEnteredBridge(
        **_common(data),
        channel=_channel(data),
        bridge_id=json_str(json_dict(data, "bridge"), "id"),
    )


def _left_bridge(data: JsonDict) -> ev.Event:
    return ev.ChannelLeftBridge(
        **_common(data),
        channel=_channel(data),
        bridge_id=json_str(json_dict(data, "bridge"), "id"),
    )


def _dial(data: JsonDict) -> ev.Event:
    caller = data.get("caller")
    return ev.Dial(
        **_common(data),
        peer=parse_channel(data.get("peer")),
        caller=parse_channel(caller) if isinstance(caller, Mapping) else None,
        dialstatus=json_str(data, "dialstatus"),
        dialstring=json_str(data, "dialstring"),
    )


_PARSERS: dict[str, Callable[[JsonDict], ev.Event]] = {
    ev.STASIS_START: _stasis_start,
    ev.STASIS_END: _stasis_end,
    ev.CHANNEL_DTMF_RECEIVED: _dtmf,
    ev.PLAYBACK_STARTED: _playback_started,
    ev.PLAYBACK_FINISHED: _playback_finished,
    ev.CHANNEL_HANGUP_REQUEST: _hangup_request,
    ev.CHANNEL_DESTROYED: _destroyed,
    ev.CHANNEL_STATE_CHANGE: _state_change,
    ev.APPLICATION_REPLACED: _replaced,
    ev.RECORDING_FINISHED: _recording_finished,
    ev.RECORDING_FAILED: _recording_failed,
    ev.CHANNEL_ENTERED_BRIDGE: _entered_bridge,
    ev.CHANNEL_LEFT_BRIDGE: _left_bridge,
    ev.DIAL: _dial,
    ev.CHANNEL_TALKING_STARTED: _talking_started,
}

# The event types the app asks for: given to Asterisk as the calls application's event
# filter (AriClient's `events`), so nothing else is written to the WebSocket or decoded
# here. PlaybackStarted is parsed (an application without a filter gets it) but not asked
# for: no handler reads it (a playback is known from the play request's answer), and it
# was one event in four of an IVR call.
ASKED_TYPES = frozenset(_PARSERS) - {ev.PLAYBACK_STARTED}


def parse_event(data: object) -> ev.Event:
    """Return the typed event for one decoded WebSocket message; never raises.

    A non-object, or an object with an unknown `type`, gives an `UnknownEvent`.
    """
    if not isinstance(data, Mapping):
        return ev.UnknownEvent(raw={"unparsed": data})
    event_type = json_str(data, "type")
    parser = _PARSERS.get(event_type)
    if parser is not None:
        try:
            return parser(data)
        # The accessors are total; this only backstops the never-raise promise.
        except Exception:
            _log.warning(
                "could not read a %s event; passing it on as unknown",
                event_type,
                exc_info=True,
            )
    return ev.UnknownEvent(type=event_type, raw=dict(data), **_common(data))
