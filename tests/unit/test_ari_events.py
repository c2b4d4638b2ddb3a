"""Reading ARI events: what Asterisk sends becomes typed events that know their
channel, and nothing Asterisk (or a broken proxy) sends can make the reader raise."""

from __future__ import annotations

from typing import Any

import pytest
from fake_ari import APP, channel_json, event_json
from hypothesis import given, settings
from hypothesis import strategies as st

from ari_app.ari.event_parsing import parse_channel, parse_event
from ari_app.ari.events import (
    APPLICATION_REPLACED,
    CHANNEL_DESTROYED,
    CHANNEL_DTMF_RECEIVED,
    CHANNEL_ENTERED_BRIDGE,
    CHANNEL_HANGUP_REQUEST,
    CHANNEL_LEFT_BRIDGE,
    CHANNEL_STATE_CHANGE,
    DIAL,
    PLAYBACK_FINISHED,
    PLAYBACK_STARTED,
    RECORDING_FAILED,
    RECORDING_FINISHED,
    STASIS_END,
    STASIS_START,
    ApplicationReplaced,
    Channel,
    ChannelDestroyed,
    ChannelDtmfReceived,
    ChannelEnteredBridge,
    ChannelHangupRequest,
    ChannelLeftBridge,
    ChannelStateChange,
    Dial,
    PlaybackFinished,
    PlaybackStarted,
    RecordingFailed,
    RecordingFinished,
    StasisEnd,
    StasisStart,
    UnknownEvent,
)


def test_a_caller_entering_the_app_gives_stasis_start_with_caller_details() -> None:
    event = parse_event(event_json(STASIS_START, "1714532400.12", args=["id", "7"]))

    assert isinstance(event, StasisStart)
    assert event.type == STASIS_START
    assert event.application == APP
    assert event.timestamp == "2024-05-01T10:00:01.000+0700"
    assert event.args == ("id", "7")
    assert event.channel_id == "1714532400.12"
    assert event.channel == Channel(
        id="1714532400.12",
        name="PJSIP/caller-1714532400.12",
        state="Ring",
        caller_number="08123456789",
        caller_name="",
        connected_number="",
        dialplan_context="from-caller",
        dialplan_exten="112",
        language="id",
        creationtime="2024-05-01T10:00:00.000+0700",
    )


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"type": STASIS_END}, StasisEnd),
        ({"type": CHANNEL_STATE_CHANGE}, ChannelStateChange),
    ],
)
def test_plain_channel_events(fields: dict[str, Any], expected: type) -> None:
    event = parse_event(event_json(fields["type"], "c1"))
    assert isinstance(event, expected)
    assert event.channel_id == "c1"


def test_a_digit() -> None:
    event = parse_event(event_json(CHANNEL_DTMF_RECEIVED, "c1", digit="2", duration_ms=160))
    assert isinstance(event, ChannelDtmfReceived)
    assert (event.digit, event.duration_ms, event.channel_id) == ("2", 160, "c1")


def test_hangup_and_destroy_carry_the_cause() -> None:
    request = parse_event(event_json(CHANNEL_HANGUP_REQUEST, "c1", cause=16, soft=True))
    destroyed = parse_event(event_json(CHANNEL_DESTROYED, "c1", cause=16, cause_txt="Normal Clearing"))
    assert isinstance(request, ChannelHangupRequest)
    assert (request.cause, request.soft) == (16, True)
    assert isinstance(destroyed, ChannelDestroyed)
    assert (destroyed.cause, destroyed.cause_txt, destroyed.channel_id) == (
        16,
        "Normal Clearing",
        "c1",
    )


def playback_json(event_type: str, target_uri: str) -> dict[str, Any]:
    return {
        "type": event_type,
        "application": APP,
        "timestamp": "t",
        "playback": {
            "id": "pb-1",
            "media_uri": "sound:welcome",
            "target_uri": target_uri,
            "language": "id",
            "state": "done" if event_type == PLAYBACK_FINISHED else "playing",
        },
    }


def test_a_playback_on_a_channel_is_about_that_channel() -> None:
    started = parse_event(playback_json(PLAYBACK_STARTED, "channel:c1"))
    finished = parse_event(playback_json(PLAYBACK_FINISHED, "channel:c1"))

    assert isinstance(started, PlaybackStarted)
    assert isinstance(finished, PlaybackFinished)
    assert (finished.playback_id, finished.media_uri, finished.state) == (
        "pb-1",
        "sound:welcome",
        "done",
    )
    assert started.channel_id == finished.channel_id == "c1"


def test_a_playback_on_a_bridge_is_about_no_channel() -> None:
    event = parse_event(playback_json(PLAYBACK_FINISHED, "bridge:br-1"))
    assert event.channel_id is None


def recording_json(event_type: str, target_uri: str, **extra: Any) -> dict[str, Any]:
    return {
        "type": event_type,
        "application": APP,
        "timestamp": "t",
        "recording": {
            "name": "inc-7",
            "format": "wav",
            "state": "done",
            "target_uri": target_uri,
            **extra,
        },
    }


def test_recordings() -> None:
    finished = parse_event(recording_json(RECORDING_FINISHED, "bridge:br-1", duration=42))
    failed = parse_event(recording_json(RECORDING_FAILED, "channel:c1", state="failed", cause="no space"))

    assert isinstance(finished, RecordingFinished)
    assert (finished.name, finished.duration, finished.channel_id) == ("inc-7", 42, None)
    assert finished.bridge_id == "br-1"
    assert isinstance(failed, RecordingFailed)
    assert (failed.cause, failed.channel_id, failed.bridge_id) == ("no space", "c1", None)


def test_bridge_membership() -> None:
    bridge = {"id": "br-1", "bridge_type": "mixing", "channels": ["c1"]}
    entered = parse_event(event_json(CHANNEL_ENTERED_BRIDGE, "c1", bridge=bridge))
    left = parse_event(event_json(CHANNEL_LEFT_BRIDGE, "c1", bridge=bridge))

    assert isinstance(entered, ChannelEnteredBridge)
    assert isinstance(left, ChannelLeftBridge)
    assert entered.bridge_id == left.bridge_id == "br-1"
    assert entered.channel_id == left.channel_id == "c1"


def test_a_dial_we_originated_is_about_the_peer() -> None:
    data = {
        "type": DIAL,
        "application": APP,
        "timestamp": "t",
        "peer": channel_json("out-1"),
        "dialstring": "police",
        "dialstatus": "ANSWER",
    }
    event = parse_event(data)

    assert isinstance(event, Dial)
    assert (event.peer_id, event.dialstatus, event.dialstring) == (
        "out-1",
        "ANSWER",
        "police",
    )
    assert event.caller is None
    assert event.channel_id == "out-1"


def test_a_dial_with_a_caller_is_about_the_caller() -> None:
    data = {
        "type": DIAL,
        "peer": channel_json("out-1"),
        "caller": channel_json("c1"),
        "dialstatus": "RINGING",
    }
    event = parse_event(data)
    assert isinstance(event, Dial)
    assert (event.channel_id, event.peer_id) == ("c1", "out-1")


def test_application_replaced() -> None:
    event = parse_event({"type": APPLICATION_REPLACED, "application": APP})
    assert isinstance(event, ApplicationReplaced)
    assert event.channel_id is None


def test_an_event_we_do_not_model_still_knows_its_channel() -> None:
    varset = parse_event(event_json("ChannelVarset", "c1", variable="X", value="1"))
    continuing = parse_event({"type": "PlaybackContinuing", "playback": {"target_uri": "channel:c2"}})
    bridge_only = parse_event({"type": "BridgeCreated", "bridge": {"id": "br-1"}})

    assert isinstance(varset, UnknownEvent)
    assert varset.type == "ChannelVarset"
    assert varset.raw["variable"] == "X"
    assert varset.channel_id == "c1"
    assert continuing.channel_id == "c2"
    assert bridge_only.channel_id is None


@pytest.mark.parametrize(
    "garbage",
    [None, 7, "StasisStart", [], ["type", STASIS_START], {}, {"type": 5}],
)
def test_garbage_gives_an_unknown_event(garbage: object) -> None:
    event = parse_event(garbage)
    assert isinstance(event, UnknownEvent)
    assert event.channel_id is None


def test_a_known_event_with_broken_fields_gets_defaults() -> None:
    start = parse_event({"type": STASIS_START, "channel": "oops", "args": "not-a-list", "timestamp": 1})
    digit = parse_event({"type": CHANNEL_DTMF_RECEIVED, "channel": {"id": 5}, "duration_ms": "abc"})

    assert isinstance(start, StasisStart)
    assert (start.channel, start.args, start.channel_id) == (Channel(), (), None)
    assert start.timestamp == "1"
    assert isinstance(digit, ChannelDtmfReceived)
    assert (digit.channel_id, digit.duration_ms, digit.digit) == ("5", 0, "")


def test_parse_channel_of_a_non_object_is_empty() -> None:
    assert parse_channel(None) == Channel()
    assert parse_channel({"caller": "x", "dialplan": []}) == Channel()


KNOWN_TYPES = [
    STASIS_START,
    STASIS_END,
    CHANNEL_DTMF_RECEIVED,
    PLAYBACK_STARTED,
    PLAYBACK_FINISHED,
    CHANNEL_HANGUP_REQUEST,
    CHANNEL_DESTROYED,
    CHANNEL_STATE_CHANGE,
    APPLICATION_REPLACED,
    RECORDING_FINISHED,
    RECORDING_FAILED,
    CHANNEL_ENTERED_BRIDGE,
    CHANNEL_LEFT_BRIDGE,
    DIAL,
]
# The field names ARI uses, so that random objects hit the parsers' real paths.
FIELD_NAMES = st.sampled_from(
    ["channel", "args", "digit", "duration_ms", "playback", "recording", "cause",
     "cause_txt", "soft", "bridge", "peer", "caller", "dialstatus", "id", "target_uri",
     "number", "application", "timestamp"]
)  # fmt: skip
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.sampled_from(["", "channel:", "channel:x", "bridge:b", "1"])
    | st.text(max_size=5)
)
JSON = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(FIELD_NAMES, inner, max_size=6),
    max_leaves=20,
)
EVENT_LIKE = st.builds(
    lambda fields, kind: {**fields, "type": kind}, st.dictionaries(FIELD_NAMES, JSON), st.sampled_from(KNOWN_TYPES)
)


@settings(database=None, max_examples=300)
@given(EVENT_LIKE | JSON)
def test_parse_event_never_raises(data: Any) -> None:
    event = parse_event(data)
    # Reading the channel must not raise either.
    assert event.channel_id is None or isinstance(event.channel_id, str)


def test_a_channels_creation_time_is_the_calls_arrival_in_the_stores_format() -> None:
    from ari_app.ari.events import Channel

    assert Channel(id="c", creationtime="2026-12-01T22:04:30.536+0700").created_at == "2026-12-01T15:04:30.536+00:00"
    assert Channel(id="c", creationtime="2026-12-01T15:04:30.536+0000").created_at == "2026-12-01T15:04:30.536+00:00"
    assert Channel(id="c", creationtime="yesterday").created_at is None
    assert Channel(id="c", creationtime="2026-12-01T15:04:30.536").created_at is None  # no zone: not a sure time
    assert Channel(id="c").created_at is None
