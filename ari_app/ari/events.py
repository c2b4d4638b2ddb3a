"""Typed ARI events: frozen dataclasses for what the WebSocket sends, and the type names.

They are built from JSON by `ari_app.ari.event_parsing.parse_event`, which never raises:
missing fields get empty defaults, and anything unrecognised becomes an `UnknownEvent`
that still knows its channel.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from ari_app.ari.json_fields import JsonDict, json_dict, json_str

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
    # The channel variables ari.conf's `channelvars` lists (the caller's SIP headers the
    # plan's dialplan copied before Stasis: ari_app.asterisk.render), as strings.
    variables: JsonDict = field(default_factory=dict)

    @property
    def created_at(self) -> str | None:
        """When Asterisk created the channel (the INVITE's arrival), as the store writes times
        (ISO, UTC, milliseconds); None when absent or unreadable."""
        # fromisoformat reads Asterisk's "2026-12-01T23:18:33.182+0000" in 0.2 us; strptime
        # took 10 us, and a call asked twice (2.8 % of the event loop's CPU per call).
        try:
            created = datetime.fromisoformat(self.creationtime)
        except ValueError:
            return None
        if created.tzinfo is None:  # a time without its zone says nothing sure
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
        channel = json_dict(self.raw, "channel")
        if channel_id := json_str(channel, "id"):
            return channel_id
        # PlaybackContinuing, RecordingStarted and the like name their target instead.
        for key in ("playback", "recording"):
            if found := target_channel_id(json_str(json_dict(self.raw, key), "target_uri")):
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
