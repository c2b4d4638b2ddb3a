"""The service's event routing on the recorded fakes: which consumer a channel's events
reach (a caller, an agency leg, an operator's callback), a leg's end after it left Stasis,
a recording's end by its name, and a caller coming back into Stasis for an agency."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ari_app.ari import events as ev
from ari_app.asterisk.render import AGENCY_ENTRY
from ari_app.calls.controller import CallController
from ari_app.calls.locating import Locator
from ari_app.service import PeerForwarder, Service
from ivr.plan import PlanSet
from ivr.secrets import Secrets
from ivr.settings import load_settings
from tests.support.poll import eventually
from tests.unit.call_harness import CHANNEL, channel, plan_under_test
from tests.unit.fake_call_ari import FakeCallAri
from tests.unit.fake_call_store import FakeCallStore


@pytest.fixture
async def service(tmp_path: Path) -> AsyncIterator[Service]:
    settings = load_settings(environ={}).replace(data_dir=str(tmp_path))
    svc = Service(settings, Secrets("ari", "ami", "console"), PlanSet((plan_under_test(),)))
    store = FakeCallStore(tmp_path)
    svc.ari = FakeCallAri()  # type: ignore[assignment]
    svc.store = store  # type: ignore[assignment]
    svc.locator = Locator(store)  # type: ignore[arg-type]
    yield svc
    await svc.dispatcher.close()
    for controller in svc.controllers.values():
        await controller.close()
    store.close()


def fakes(service: Service) -> tuple[FakeCallAri, FakeCallStore]:
    assert isinstance(service.ari, FakeCallAri) and isinstance(service.store, FakeCallStore)
    return service.ari, service.store


async def started(service: Service) -> CallController:
    """The caller's StasisStart, handled: its controller with its incident."""
    await service._on_event(ev.StasisStart(channel=channel(), args=("t", "112")))
    await eventually(lambda: CHANNEL in service.controllers and service.controllers[CHANNEL].flow is not None, what="the call's start")
    return service.controllers[CHANNEL]


async def test_a_new_caller_gets_a_controller_and_a_known_one_keeps_it(service: Service) -> None:
    first = service._consumer(CHANNEL)
    assert isinstance(first, CallController)
    assert service._consumer(CHANNEL) is first  # back in Stasis from the dialplan: the same call


async def test_an_agency_legs_events_reach_its_callers_controller_in_order(service: Service) -> None:
    ari, store = fakes(service)
    controller = await started(service)
    await controller.route(plan_under_test().menus["main"].options["1"], reason="menu 1")
    leg = f"{CHANNEL}-police-1"
    assert isinstance(service._consumer(leg), PeerForwarder)
    await service._on_event(ev.StasisStart(channel=channel(leg), args=("agency", CHANNEL)))
    await eventually(lambda: store.incident().route_result == "answered by police trunk 1", what="the trunk bridged")
    assert [c.args["channel_id"] for c in ari.named("add_channel")] == [CHANNEL, leg]


async def test_a_legs_end_after_it_left_stasis_still_reaches_the_caller(service: Service) -> None:
    _, store = fakes(service)
    controller = await started(service)
    await controller.route(plan_under_test().menus["main"].options["1"], reason="menu 1")
    leg = f"{CHANNEL}-police-1"
    await service._on_other(ev.ChannelDestroyed(channel=channel(leg), cause=17, cause_txt="User busy"))
    await eventually(lambda: bool(store.details("trunk_failed")), what="trunk 1 failed")
    assert [d["trunk"] for d in store.details("trunk_failed")] == ["1"]
    assert leg not in service.peers


async def test_a_callers_end_after_the_queue_closes_the_incident(service: Service) -> None:
    _, store = fakes(service)
    await started(service)
    await service._on_event(ev.StasisEnd(channel=channel()))
    await service._on_event(ev.ChannelDestroyed(channel=channel(), cause=16, cause_txt="Normal Clearing"))
    await eventually(lambda: store.incident().end_reason == "Normal Clearing", what="the incident's end")
    await eventually(lambda: CHANNEL not in service.controllers, what="the call forgotten")


async def test_a_recordings_end_is_routed_to_the_call_that_asked_for_it(service: Service) -> None:
    _, store = fakes(service)
    controller = await started(service)
    controller.recording_name = "incident-1-location"
    service.recording_started("incident-1-location", CHANNEL)
    await service._on_event(ev.RecordingFailed(name="incident-1-location", cause="disk"))
    await eventually(lambda: bool(store.details("recording_failed")), what="the recording's end on the incident")
    assert controller.recording_name is None and "incident-1-location" not in service.recordings


async def test_a_caller_overflowing_from_the_queue_comes_back_for_the_agency(service: Service) -> None:
    ari, store = fakes(service)
    controller = await started(service)
    await controller.to_queue("ops", reason="menu 2")
    await service._on_event(ev.StasisEnd(channel=channel()))
    await service._on_event(ev.StasisStart(channel=channel(), args=("t", "112", f"{AGENCY_ENTRY}police", "overflow")))
    await eventually(lambda: bool(ari.named("originate")), what="the agency dialled")
    assert service.controllers[CHANNEL] is controller
    assert store.details("overflow") == [{"queue": "ops", "agency": "police"}]
    assert ari.named("originate")[0].args["channel_id"] == f"{CHANNEL}-police-1"
    assert [c[0] for c in store.calls].count("open_incident") == 1  # the same incident


async def test_an_unknown_agency_after_a_reload_still_reaches_the_operators(service: Service) -> None:
    ari, store = fakes(service)
    await service._on_event(ev.StasisStart(channel=channel(), args=("t", "112", f"{AGENCY_ENTRY}coastguard", "transfer")))
    await eventually(lambda: bool(ari.named("continue_in_dialplan")), what="the caller handed to the operators")
    assert store.details("recovered")  # a call the app never met
    assert ari.named("continue_in_dialplan")[-1].args["extension"] == "t-ops"


async def test_a_call_the_app_never_met_is_timed_from_its_invite_not_from_when_the_app_saw_it(service: Service) -> None:
    # Queued by the dialplan's fallback while the app was away, then transferred back to it:
    # the time to a person is judged from the INVITE, so the incident starts at the channel's creation.
    _, store = fakes(service)
    met_late = ev.Channel(id=CHANNEL, name="PJSIP/carrier-a-0000002a", state="Up", caller_number="0812",
                          creationtime="2026-12-01T08:00:00.250+0700")
    await service._on_event(ev.StasisStart(channel=met_late, args=("t", "112", f"{AGENCY_ENTRY}police", "transfer")))
    await eventually(lambda: bool(store.details("recovered")), what="the call taken on record")
    opened = next(fields for name, fields in store.calls if name == "open_incident")
    assert opened["arrived_at"] == "2026-12-01T01:00:00.250+00:00"
    assert opened["carrier"] == "carrier-a"
