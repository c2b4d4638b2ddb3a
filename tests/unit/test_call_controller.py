"""A call's controller against the recorded fakes: the edge cases that cost minutes on
the real stack (a hang-up at each step, ARI errors, late events, trunks that drop or say
nothing). The real-stack suites stay the proof that a call works."""

from __future__ import annotations

from pathlib import Path

import pytest

from ari_app.ari import events as ev
from ari_app.asterisk.render import QUEUE_CONTEXT, TALK_DETECT_VAR
from ari_app.calls.controller import AGENCY_DROP_S, TrunkSilent
from ari_app.calls.ending import GONE_BEFORE_FOLLOWED
from ari_app.calls.hep import LegProgress
from ari_app.calls.ports import PeerEvent
from ivr.location import Location
from ivr.menu_events import State
from tests.unit.call_harness import CALLER, CHANNEL, Call, channel
from tests.unit.fake_call_ari import ari_error


@pytest.fixture
def call(tmp_path: Path) -> Call:
    return Call(tmp_path)


def went_to_queue(call: Call) -> bool:
    return any(c.args["context"] == QUEUE_CONTEXT for c in call.ari.named("continue_in_dialplan"))


async def peer(call: Call, event: ev.Event) -> None:
    await call.send(PeerEvent(CHANNEL, event))


async def dial_police(call: Call) -> None:
    await call.to_menu()
    await call.press("1")


# The way a caller meets it -------------------------------------------------------------


async def test_a_caller_pressing_1_reaches_the_police_first_trunk_with_their_number(call: Call) -> None:
    await dial_police(call)
    originate = call.ari.named("originate")
    assert len(originate) == 1
    assert originate[0].args["caller_id"] == f'"{CALLER}" <{CALLER}>'
    assert originate[0].args["channel_id"] == call.leg(1)
    assert originate[0].args["variables"]["PJSIP_HEADER(add,X-Ivr112-Incident)"] == "1"
    assert "ring" in call.ari.names
    assert call.store.details("trunk_dial") == [{"agency": "police", "trunk": "1", "endpoint": originate[0].args["endpoint"]}]
    assert call.store.incident().route == "agency:police"
    assert call.peers.claimed == {call.leg(1): CHANNEL}


async def test_the_trunk_that_answers_is_bridged_and_the_number_needs_no_callback(call: Call) -> None:
    await dial_police(call)
    await peer(call, ev.StasisStart(channel=channel(call.leg(1)), args=("agency", CHANNEL)))
    assert [c.args["channel_id"] for c in call.ari.named("add_channel")] == [CHANNEL, call.leg(1)]
    assert call.store.incident().route_result == "answered by police trunk 1"
    assert call.controller.dial is not None and call.controller.dial.answered
    await call.hang_up()
    assert "callback_listed" not in call.store.kinds()
    assert call.ari.named("destroy_bridge") and call.store.incident().ended_at


async def test_a_trunk_that_answers_and_drops_at_once_rings_the_caller_again_and_dials_the_next(call: Call) -> None:
    await dial_police(call)
    await peer(call, ev.StasisStart(channel=channel(call.leg(1)), args=("agency", CHANNEL)))
    await peer(call, ev.ChannelDestroyed(channel=channel(call.leg(1)), cause=16, cause_txt="Normal Clearing"))
    assert call.store.details("trunk_failed")[0]["cause"].startswith("answered and hung up after")
    assert call.ari.names.count("ring") == 2
    assert call.ari.named("originate")[-1].args["channel_id"] == call.leg(2)
    assert call.store.incident().route_result == "dialling"
    await call.hang_up()
    assert "callback_listed" in call.store.kinds()


async def test_an_agency_that_talked_and_hung_up_ends_the_call(call: Call, monkeypatch: pytest.MonkeyPatch) -> None:
    await dial_police(call)
    await peer(call, ev.StasisStart(channel=channel(call.leg(1)), args=("agency", CHANNEL)))
    assert call.controller.dial is not None
    call.controller.dial.machine.answered_at -= AGENCY_DROP_S + 1  # it answered long ago
    await peer(call, ev.ChannelDestroyed(channel=channel(call.leg(1)), cause=16, cause_txt="Normal Clearing"))
    assert call.store.details("agency_hangup") == [{"agency": "police", "cause": "Normal Clearing"}]
    assert call.ari.named("hangup")[-1].args["channel_id"] == CHANNEL
    assert call.controller.dial is None


async def test_a_trunk_silent_past_its_response_timeout_is_left_for_the_next(call: Call) -> None:
    await dial_police(call)
    call.peers.progress[call.leg(1)] = LegProgress()  # the capture saw our INVITE, and no answer to it
    await call.send(TrunkSilent(CHANNEL, call.leg(1)))
    assert call.store.details("trunk_failed") == [{"agency": "police", "trunk": "1", "cause": "no response", "after_s": "2"}]
    assert call.leg(1) in [c.args["channel_id"] for c in call.ari.named("hangup")]
    assert call.ari.named("originate")[-1].args["channel_id"] == call.leg(2)


async def test_a_trunk_that_sent_100_trying_is_left_to_its_ring_timeout(call: Call) -> None:
    await dial_police(call)
    call.peers.progress[call.leg(1)] = LegProgress(provisional=100)
    await call.send(TrunkSilent(CHANNEL, call.leg(1)))
    assert call.store.details("trunk_failed") == []
    assert len(call.ari.named("originate")) == 1


async def test_every_trunk_failing_takes_the_caller_to_the_operators_flagged_urgent(call: Call) -> None:
    await dial_police(call)
    call.peers.progress[call.leg(1)] = LegProgress(provisional=100, final=486, reason="Busy Here")
    await peer(call, ev.ChannelDestroyed(channel=channel(call.leg(1)), cause=17, cause_txt="User busy"))
    await peer(call, ev.ChannelDestroyed(channel=channel(call.leg(2)), cause=3, cause_txt="No route to destination"))
    assert [d["cause"] for d in call.store.details("trunk_failed")] == ["busy (SIP 486 Busy Here)", "unreachable (No route to destination)"]
    assert call.store.details("agency_failed")[0]["next"] == "queue:ops"
    assert went_to_queue(call)
    incident = call.store.incident()
    assert incident.priority == "urgent" and "agency_failed" in (incident.flags or "")
    assert call.controller.dial is None


async def test_a_refused_originate_is_a_failed_trunk_not_a_stranded_caller(call: Call) -> None:
    await call.to_menu()
    call.ari.fail("originate", ari_error(500), always=True)
    await call.press("1")
    causes = [d["cause"] for d in call.store.details("trunk_failed")]
    assert len(causes) == 2 and all(c.startswith("refused (") and "500" in c for c in causes)
    assert went_to_queue(call)


# Hang-ups at each step -----------------------------------------------------------------


async def test_a_hang_up_during_the_greeting_ends_the_incident_and_lists_the_callback(call: Call) -> None:
    await call.start()
    await call.hang_up()
    assert call.store.incident().end_reason == "Normal Clearing"
    assert call.store.details("callback_listed")[0]["number"] == CALLER
    assert not went_to_queue(call) and call.peers.ended == [CHANNEL]


async def test_a_hang_up_during_the_location_recording_keeps_no_timer(call: Call) -> None:
    await call.start()
    await call.prompt_done()
    await call.prompt_done()
    assert call.controller.flow is not None and call.controller.flow.state is State.RECORDING
    await call.hang_up()
    assert call.controller.timer is None and call.store.incident().ended_at


async def test_a_hang_up_in_the_menu_then_a_late_prompt_end_plays_nothing(call: Call) -> None:
    await call.to_menu()
    playback = call.controller.playback_id
    await call.hang_up()
    plays = len(call.ari.named("play"))
    await call.send(ev.PlaybackFinished(playback_id=playback or ""))
    await call.press("1")
    assert len(call.ari.named("play")) == plays and not call.ari.named("originate")


async def test_a_hang_up_while_dialling_hangs_up_the_trunk_and_a_late_answer_too(call: Call) -> None:
    await dial_police(call)
    await call.send(ev.ChannelHangupRequest(channel=channel(), cause=16))
    assert call.ari.named("hangup")[-1].args["channel_id"] == call.leg(1)
    await call.send(ev.StasisEnd(channel=channel()))
    await peer(call, ev.StasisStart(channel=channel(call.leg(1)), args=("agency", CHANNEL)))
    assert [c.args["channel_id"] for c in call.ari.named("hangup")].count(call.leg(1)) == 2
    assert not call.ari.named("create_bridge")
    await call.send(ev.ChannelDestroyed(channel=channel(), cause=16, cause_txt="Normal Clearing"))
    assert "callback_listed" in call.store.kinds()


async def test_a_caller_gone_before_the_app_could_follow_the_call_is_ended(call: Call) -> None:
    await call.start()
    call.controller.subscribed = False  # the subscription never happened
    call.ari.fail("subscribe", ari_error(422, channel_id=CHANNEL))
    await call.send(ev.StasisEnd(channel=channel()))
    assert call.store.incident().end_reason == GONE_BEFORE_FOLLOWED


# ARI errors ------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["answer", "subscribe", "play"])
@pytest.mark.parametrize("status", [404, 422, 500])
async def test_an_ari_error_at_the_start_hands_a_live_caller_to_the_operators(call: Call, method: str, status: int) -> None:
    call.ari.fail(method, ari_error(status, channel_id=CHANNEL))
    await call.start(state="Ring")  # not answered before Stasis: the app answers it
    assert went_to_queue(call)
    assert call.store.incident().fallback == 1
    assert call.store.details("error")


@pytest.mark.parametrize(("state", "answers"), [("Up", 0), ("Ring", 1)])
async def test_the_app_answers_only_a_caller_the_dialplan_did_not(call: Call, state: str, answers: int) -> None:
    await call.start(state=state)
    assert len(call.ari.named("answer")) == answers
    assert call.store.incident().answered_at


@pytest.mark.parametrize(("handed", "asks"), [({TALK_DETECT_VAR: "1"}, 0), ({}, 1)])
async def test_the_app_asks_for_talk_detection_only_when_the_dialplan_did_not(call: Call, handed: dict[str, str],
                                                                              asks: int) -> None:
    await call.start(variables=handed)
    assert len([r for r in call.ari.named("set_variable") if r.args["name"] == "TALK_DETECT(set)"]) == asks
    assert call.store.incident().answered_at


@pytest.mark.parametrize("status", [404, 422])
async def test_an_ari_error_for_a_caller_who_hung_up_is_no_fault(call: Call, status: int) -> None:
    call.ari.gone.add(CHANNEL)
    call.ari.fail("play", ari_error(status, channel_id=CHANNEL))
    await call.start()
    assert not went_to_queue(call)
    assert call.store.details("caller_gone") and not call.store.details("error")


@pytest.mark.parametrize("status", [404, 500])
async def test_a_failed_bridge_sends_the_caller_to_the_operators(call: Call, status: int) -> None:
    await dial_police(call)
    call.ari.fail("create_bridge", ari_error(status))
    await peer(call, ev.StasisStart(channel=channel(call.leg(1)), args=("agency", CHANNEL)))
    assert went_to_queue(call)
    assert call.leg(1) in [c.args["channel_id"] for c in call.ari.named("hangup")]


async def test_a_trunk_gone_before_the_bridge_counts_as_dropped_and_the_next_is_dialled(call: Call) -> None:
    await dial_police(call)
    call.ari.fail("add_channel", ari_error(404), after=1)  # the caller joins; the trunk is gone
    await peer(call, ev.StasisStart(channel=channel(call.leg(1)), args=("agency", CHANNEL)))
    assert "gone before the bridge" in call.store.details("trunk_failed")[0]["cause"]
    assert call.ari.named("destroy_bridge") and not went_to_queue(call)
    assert call.ari.named("originate")[-1].args["channel_id"] == call.leg(2)


async def test_the_caller_not_joining_the_bridge_is_a_fault_handed_to_the_operators(call: Call) -> None:
    await dial_police(call)
    call.ari.fail("add_channel", ari_error(500))
    await peer(call, ev.StasisStart(channel=channel(call.leg(1)), args=("agency", CHANNEL)))
    assert went_to_queue(call) and call.store.incident().fallback == 1


async def test_no_ringback_is_no_reason_to_stop_dialling(call: Call) -> None:
    await call.to_menu()
    call.ari.fail("ring", ari_error(500))
    await call.press("1")
    assert len(call.ari.named("originate")) == 1 and not went_to_queue(call)


async def test_the_store_failing_never_stops_the_fallback(call: Call) -> None:
    await call.start()
    call.store.failing = RuntimeError("disk full")
    await call.press("2")
    assert went_to_queue(call)


# Recovery --------------------------------------------------------------------------------


async def test_a_prompt_that_ended_while_the_app_was_away_moves_the_menu_on(call: Call) -> None:
    from ari_app.calls.recovery import resync

    await call.start()
    call.ari.playing.clear()  # Asterisk forgot the greeting's playback
    await resync(call.controller)
    assert call.controller.flow is not None and call.controller.flow.state is not State.GREETING


async def test_a_call_starts_with_the_aml_that_came_first_and_the_numbers_last_position_as_a_hint(call: Call) -> None:
    store = call.store.store
    before = store.open_incident(channel_id="earlier-call", plan_id="t", caller_number=CALLER, called_number="112")
    store.add_location(before.id, Location(source="aml", latitude=-2.54, longitude=112.95, radius_m=30.0, shape="circle",
                                           method="GPS"), kecamatan=None, description="earlier")
    store.update(before.id, ended_at="2026-01-01T00:00:00.000+00:00", end_reason="hangup")
    aml = store.add_aml(gateway="gw1", number=CALLER, kind="sms", raw="A\"ML=1;lt=-2.5;lg=112.9;rd=12",
                        location=Location(source="aml", latitude=-2.51, longitude=112.91, radius_m=12.0, shape="circle",
                                          method="GPS"), incident_id=None)

    await call.start()

    incident = store.by_channel(CHANNEL)
    assert incident is not None
    kept = {(loc.source, loc.hint, loc.latitude) for loc in store.locations(incident.id)}
    assert kept == {("aml", False, -2.51), ("repeat", True, -2.54)}
    assert store.unmatched_aml(CALLER, since="2000-01-01T00:00:00") == [], f"AML {aml} should be on the new call"
