"""Typed ARI events: the WebSocket's JSON turned into frozen dataclasses.

`parse_event` never raises: Asterisk versions differ in what they send, and one odd
message must not take down the event loop, so missing fields get empty defaults and
anything unrecognised becomes an `UnknownEvent` that still knows its channel.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypedDict

_log = logging.getLogger(__name__)

# Event type names as Asterisk spells them.
STASIS_START = "StasisStart"
STASIS_END = "StasisEnd"
CHANNEL_DTMF_RECEIVED = "ChannelDtmfReceived"
PLAYBACK_STARTED = "PlaybackStarted"
PLAYBACK_FINISHED = "PlaybackFinished"
CHANNEL_HANGUP_REQUEST = "ChannelHangupRequest"
CHANNEL_DESTROYED = "ChannelDestroyed"
CHANNEL_STATE_CHANGE = "ChannelStateChange"
APPLICATION_REPLACED = "ApplicationReplaced"
RECORDING_FINISHED = "RecordingFinished"
RECORDING_FAILED = "RecordingFailed"
CHANNEL_ENTERED_BRIDGE = "ChannelEnteredBridge"
CHANNEL_LEFT_BRIDGE = "ChannelLeftBridge"
DIAL = "Dial"
CHANNEL_TALKING_STARTED = "ChannelTalkingStarted"

_CHANNEL_TARGET = "channel:"
_BRIDGE_TARGET = "bridge:"

JsonDict = Mapping[str, Any]


def target_channel_id(target_uri: str) -> str | None:
    """Return the channel id of a playback/recording target "channel:<id>", else None."""
    if target_uri.startswith(_CHANNEL_TARGET):
        return target_uri[len(_CHANNEL_TARGET) :] or None
    return None


def target_bridge_id(target_uri: str) -> str | None:
    """Return the bridge id of a playback/recording target "bridge:<id>", else None."""
    if target_uri.startswith(_BRIDGE_TARGET):
        return target_uri[len(_BRIDGE_TARGET) :] or None
    return None


@dataclass(frozen=True, kw_only=True)
class Channel:
    """The parts of an ARI Channel object the app uses."""

    id: str = ""
    name: str = ""
    state: str = ""
    caller_number: str = ""
    caller_name: str = ""
    connected_number: str = ""
    dialplan_context: str = ""
    dialplan_exten: str = ""
    dialplan_app: str = ""  # the application the channel runs now ("Stasis" while in ours)
    language: str = ""
    creationtime: str = ""

    @property
    def created_at(self) -> str | None:
        """When Asterisk created the channel (the INVITE's arrival), as the store writes times
        (ISO, UTC, milliseconds); None when absent or unreadable."""
        try:
            created = datetime.strptime(self.creationtime, "%Y-%m-%dT%H:%M:%S.%f%z")
        except ValueError:
            return None
        return created.astimezone(UTC).isoformat(timespec="milliseconds")


@dataclass(frozen=True, kw_only=True)
class _EventBase:
    type: str = ""
    application: str = ""
    timestamp: str = ""

    @property
    def channel_id(self) -> str | None:
        """The channel this event is about; None when it is about no channel."""
        return None


@dataclass(frozen=True, kw_only=True)
class _ChannelEventBase(_EventBase):
    channel: Channel = field(default_factory=Channel)

    @property
    def channel_id(self) -> str | None:
        return self.channel.id or None


@dataclass(frozen=True, kw_only=True)
class StasisStart(_ChannelEventBase):
    """A channel entered our application; `args` are the Stasis() arguments."""

    type: str = STASIS_START
    args: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class StasisEnd(_ChannelEventBase):
    """A channel left our application (hung up or continued in the dialplan)."""

    type: str = STASIS_END


@dataclass(frozen=True, kw_only=True)
class ChannelDtmfReceived(_ChannelEventBase):
    """A digit ended; it does not stop a playback by itself."""

    type: str = CHANNEL_DTMF_RECEIVED
    digit: str = ""
    duration_ms: int = 0


@dataclass(frozen=True, kw_only=True)
class _PlaybackEventBase(_EventBase):
    playback_id: str = ""
    target_uri: str = ""
    media_uri: str = ""
    state: str = ""

    @property
    def channel_id(self) -> str | None:
        return target_channel_id(self.target_uri)


@dataclass(frozen=True, kw_only=True)
class PlaybackStarted(_PlaybackEventBase):
    """A playback began on a channel or bridge."""

    type: str = PLAYBACK_STARTED


@dataclass(frozen=True, kw_only=True)
class PlaybackFinished(_PlaybackEventBase):
    """A playback ended: played out, stopped, or failed (see `state`)."""

    type: str = PLAYBACK_FINISHED


@dataclass(frozen=True, kw_only=True)
class ChannelHangupRequest(_ChannelEventBase):
    """Someone asked to hang the channel up; `cause` is the Q.850 code."""

    type: str = CHANNEL_HANGUP_REQUEST
    cause: int = 0
    soft: bool = False


@dataclass(frozen=True, kw_only=True)
class ChannelDestroyed(_ChannelEventBase):
    """The channel is gone; `cause`/`cause_txt` say why."""

    type: str = CHANNEL_DESTROYED
    cause: int = 0
    cause_txt: str = ""


@dataclass(frozen=True, kw_only=True)
class ChannelStateChange(_ChannelEventBase):
    """The channel's state changed (e.g. Ring -> Up); see `channel.state`."""

    type: str = CHANNEL_STATE_CHANGE


@dataclass(frozen=True, kw_only=True)
class ChannelTalkingStarted(_ChannelEventBase):
    """Asterisk heard the caller start talking (TALK_DETECT set on the channel)."""

    type: str = CHANNEL_TALKING_STARTED


@dataclass(frozen=True, kw_only=True)
class ApplicationReplaced(_EventBase):
    """Another client connected with our application name and took it over."""

    type: str = APPLICATION_REPLACED


@dataclass(frozen=True, kw_only=True)
class _RecordingEventBase(_EventBase):
    name: str = ""
    format: str = ""
    state: str = ""
    target_uri: str = ""
    duration: int = 0
    cause: str = ""
    talking_duration: int = -1  # seconds of speech heard, when Asterisk measured it (silence detection on)

    @property
    def channel_id(self) -> str | None:
        return target_channel_id(self.target_uri)

    @property
    def bridge_id(self) -> str | None:
        """The recorded bridge's id, or None when a channel was recorded."""
        return target_bridge_id(self.target_uri)


@dataclass(frozen=True, kw_only=True)
class RecordingFinished(_RecordingEventBase):
    """A live recording ended and its file is complete; `duration` is in seconds."""

    type: str = RECORDING_FINISHED


@dataclass(frozen=True, kw_only=True)
class RecordingFailed(_RecordingEventBase):
    """A live recording failed; `cause` says why."""

    type: str = RECORDING_FAILED


@dataclass(frozen=True, kw_only=True)
class ChannelEnteredBridge(_ChannelEventBase):
    """A channel joined the bridge `bridge_id`."""

    type: str = CHANNEL_ENTERED_BRIDGE
    bridge_id: str = ""


@dataclass(frozen=True, kw_only=True)
class ChannelLeftBridge(_ChannelEventBase):
    """A channel left the bridge `bridge_id`."""

    type: str = CHANNEL_LEFT_BRIDGE
    bridge_id: str = ""


@dataclass(frozen=True, kw_only=True)
class Dial(_EventBase):
    """Progress of a dial: `dialstatus` is "" while ringing starts, then RINGING, ANSWER, BUSY...

    It is about the caller when there is one (a dial from the dialplan), otherwise about
    the dialled peer (a channel we originated).
    """

    type: str = DIAL
    peer: Channel = field(default_factory=Channel)
    caller: Channel | None = None
    dialstatus: str = ""
    dialstring: str = ""

    @property
    def peer_id(self) -> str:
        """The dialled channel's id."""
        return self.peer.id

    @property
    def channel_id(self) -> str | None:
        if self.caller is not None and self.caller.id:
            return self.caller.id
        return self.peer.id or None


@dataclass(frozen=True, kw_only=True)
class UnknownEvent(_EventBase):
    """Any event we do not model (or could not read); `raw` is the message as received."""

    raw: JsonDict = field(default_factory=dict)

    @property
    def channel_id(self) -> str | None:
        channel = _dict(self.raw, "channel")
        if channel_id := _str(channel, "id"):
            return channel_id
        # PlaybackContinuing, RecordingStarted and the like name their target instead.
        for key in ("playback", "recording"):
            if found := target_channel_id(_str(_dict(self.raw, key), "target_uri")):
                return found
        return None


Event = (
    StasisStart
    | StasisEnd
    | ChannelDtmfReceived
    | PlaybackStarted
    | PlaybackFinished
    | ChannelHangupRequest
    | ChannelDestroyed
    | ChannelStateChange
    | ChannelTalkingStarted
    | ApplicationReplaced
    | RecordingFinished
    | RecordingFailed
    | ChannelEnteredBridge
    | ChannelLeftBridge
    | Dial
    | UnknownEvent
)


# Total accessors: each returns a default instead of raising on a missing or
# mistyped field, which is what lets parse_event promise never to raise.
def _dict(data: object, key: str) -> JsonDict:
    if isinstance(data, Mapping):
        value = data.get(key)
        if isinstance(value, Mapping):
            return value
    return {}


def _str(data: JsonDict, key: str) -> str:
    value = data.get(key)
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return ""


def _int(data: JsonDict, key: str) -> int:
    value = data.get(key)
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            return 0
    return 0


def parse_channel(data: object) -> Channel:
    """Return the Channel described by an ARI Channel JSON object (defaults for gaps)."""
    if not isinstance(data, Mapping):
        return Channel()
    caller = _dict(data, "caller")
    connected = _dict(data, "connected")
    dialplan = _dict(data, "dialplan")
    return Channel(
        id=_str(data, "id"),
        name=_str(data, "name"),
        state=_str(data, "state"),
        caller_number=_str(caller, "number"),
        caller_name=_str(caller, "name"),
        connected_number=_str(connected, "number"),
        dialplan_context=_str(dialplan, "context"),
        dialplan_exten=_str(dialplan, "exten"),
        dialplan_app=_str(dialplan, "app_name"),
        language=_str(data, "language"),
        creationtime=_str(data, "creationtime"),
    )


class _Common(TypedDict):
    application: str
    timestamp: str


def _common(data: JsonDict) -> _Common:
    return {
        "application": _str(data, "application"),
        "timestamp": _str(data, "timestamp"),
    }


def _channel(data: JsonDict) -> Channel:
    return parse_channel(data.get("channel"))


def _stasis_start(data: JsonDict) -> Event:
    args = data.get("args")
    arg_list = args if isinstance(args, list) else []
    return StasisStart(
        **_common(data),
        channel=_channel(data),
        args=tuple(str(a) for a in arg_list if isinstance(a, (str, int, float))),
    )


def _stasis_end(data: JsonDict) -> Event:
    return StasisEnd(**_common(data), channel=_channel(data))


def _dtmf(data: JsonDict) -> Event:
    return ChannelDtmfReceived(
        **_common(data),
        channel=_channel(data),
        digit=_str(data, "digit"),
        duration_ms=_int(data, "duration_ms"),
    )


class _PlaybackFields(TypedDict):
    playback_id: str
    target_uri: str
    media_uri: str
    state: str


def _playback_fields(data: JsonDict) -> _PlaybackFields:
    playback = _dict(data, "playback")
    return {
        "playback_id": _str(playback, "id"),
        "target_uri": _str(playback, "target_uri"),
        "media_uri": _str(playback, "media_uri"),
        "state": _str(playback, "state"),
    }


def _playback_started(data: JsonDict) -> Event:
    return PlaybackStarted(**_common(data), **_playback_fields(data))


def _playback_finished(data: JsonDict) -> Event:
    return PlaybackFinished(**_common(data), **_playback_fields(data))


def _hangup_request(data: JsonDict) -> Event:
    return ChannelHangupRequest(
        **_common(data),
        channel=_channel(data),
        cause=_int(data, "cause"),
        soft=data.get("soft") is True,
    )


def _destroyed(data: JsonDict) -> Event:
    return ChannelDestroyed(
        **_common(data),
        channel=_channel(data),
        cause=_int(data, "cause"),
        cause_txt=_str(data, "cause_txt"),
    )


def _state_change(data: JsonDict) -> Event:
    return ChannelStateChange(**_common(data), channel=_channel(data))


def _talking_started(data: JsonDict) -> Event:
    return ChannelTalkingStarted(**_common(data), channel=_channel(data))


def _replaced(data: JsonDict) -> Event:
    return ApplicationReplaced(**_common(data))


class _RecordingFields(TypedDict):
    name: str
    format: str
    state: str
    target_uri: str
    duration: int
    cause: str
    talking_duration: int


def _recording(data: JsonDict) -> _RecordingFields:
    recording = _dict(data, "recording")
    return {
        "name": _str(recording, "name"),
        "format": _str(recording, "format"),
        "state": _str(recording, "state"),
        "target_uri": _str(recording, "target_uri"),
        "duration": _int(recording, "duration"),
        "cause": _str(recording, "cause"),
        "talking_duration": talking if isinstance(talking := recording.get("talking_duration"), int) and not isinstance(talking, bool) else -1,
    }


def _recording_finished(data: JsonDict) -> Event:
    return RecordingFinished(**_common(data), **_recording(data))


def _recording_failed(data: JsonDict) -> Event:
    return RecordingFailed(**_common(data), **_recording(data))


def _entered_bridge(data: JsonDict) -> Event:
    return ChannelEnteredBridge(
        **_common(data),
        channel=_channel(data),
        bridge_id=_str(_dict(data, "bridge"), "id"),
    )


def _left_bridge(data: JsonDict) -> Event:
    return ChannelLeftBridge(
        **_common(data),
        channel=_channel(data),
        bridge_id=_str(_dict(data, "bridge"), "id"),
    )


def _dial(data: JsonDict) -> Event:
    caller = data.get("caller")
    return Dial(
        **_common(data),
        peer=parse_channel(data.get("peer")),
        caller=parse_channel(caller) if isinstance(caller, Mapping) else None,
        dialstatus=_str(data, "dialstatus"),
        dialstring=_str(data, "dialstring"),
    )


_PARSERS: dict[str, Callable[[JsonDict], Event]] = {
    STASIS_START: _stasis_start,
    STASIS_END: _stasis_end,
    CHANNEL_DTMF_RECEIVED: _dtmf,
    PLAYBACK_STARTED: _playback_started,
    PLAYBACK_FINISHED: _playback_finished,
    CHANNEL_HANGUP_REQUEST: _hangup_request,
    CHANNEL_DESTROYED: _destroyed,
    CHANNEL_STATE_CHANGE: _state_change,
    APPLICATION_REPLACED: _replaced,
    RECORDING_FINISHED: _recording_finished,
    RECORDING_FAILED: _recording_failed,
    CHANNEL_ENTERED_BRIDGE: _entered_bridge,
    CHANNEL_LEFT_BRIDGE: _left_bridge,
    DIAL: _dial,
    CHANNEL_TALKING_STARTED: _talking_started,
}


def parse_event(data: object) -> Event:
    """Return the typed event for one decoded WebSocket message; never raises.

    A non-object, or an object with an unknown `type`, gives an `UnknownEvent`.
    """
    if not isinstance(data, Mapping):
        return UnknownEvent(raw={"unparsed": data})
    event_type = _str(data, "type")
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
    return UnknownEvent(type=event_type, raw=dict(data), **_common(data))
