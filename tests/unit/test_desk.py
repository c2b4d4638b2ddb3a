"""The operators' desk against the fake AMI (tests/unit/fake_ami.py) and the recorded
store: what operators and supervisors would notice (who is logged in, callers waiting,
the incident's queue steps, a caller lost in the queue put on the callback list)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ari_app.operators.desk import Desk, DeskError
from ari_app.storage import StoreUnavailable
from ivr import callbacks
from ivr.plan import PlanSet
from ivr.secrets import Secrets
from ivr.settings import Operator, load_settings
from tests.support.poll import eventually
from tests.unit.call_harness import CALLER, CHANNEL, plan_under_test
from tests.unit.fake_ami import FakeAmi
from tests.unit.fake_call_store import FakeCallStore

QUEUE = "t-ops"


class Plans:
    current = PlanSet((plan_under_test(),))


def queue_status(fields: dict[str, str]) -> list[dict[str, str]]:
    """app_queue as it answers QueueStatus: one caller waiting, operator1 logged in."""
    return [
        {"Response": "Success", "EventList": "start", "Message": "Queue status will follow"},
        {"Event": "QueueMember", "Queue": QUEUE, "Name": "operator1", "Location": "PJSIP/operator1",
         "StateInterface": "PJSIP/operator1", "Status": "1", "Paused": "0", "InCall": "0"},
        {"Event": "QueueEntry", "Queue": QUEUE, "Uniqueid": "waiting-1", "CallerIDNum": "0811", "Wait": "4"},
        {"Event": "QueueStatusComplete", "EventList": "Complete"},
    ]


@pytest.fixture
async def ami() -> AsyncIterator[FakeAmi]:
    server = FakeAmi()
    server.replies["QueueStatus"] = queue_status
    yield server
    await server.close()


@pytest.fixture
async def desk(ami: FakeAmi, tmp_path: Path) -> AsyncIterator[Desk]:
    port = await ami.start()
    settings = load_settings(environ={}).replace(data_dir=str(tmp_path), ami_host="127.0.0.1", ami_port=port,
                                                 operators=(Operator("operator1"),))
    store = FakeCallStore(tmp_path)
    d = Desk(settings, Secrets("ari", ami.secret, "console"), Plans(), store)  # type: ignore[arg-type]
    await d.start()
    await eventually(lambda: d.resyncs == 1, what="the board resynced after the AMI login")
    yield d
    await d.close()
    store.close()


def recorded(desk: Desk) -> FakeCallStore:
    assert isinstance(desk.store, FakeCallStore)
    return desk.store


async def test_after_login_the_board_shows_who_is_in_and_who_waits(desk: Desk) -> None:
    assert desk.board.get("operator1").queues
    assert list(desk.waiting) == ["waiting-1"]


async def test_logging_an_operator_in_adds_them_to_every_queue(desk: Desk, ami: FakeAmi) -> None:
    await desk.login("operator1")
    adds = [a for a in ami.actions if a.get("Action") == "QueueAdd"]
    assert [(a["Queue"], a["MemberName"]) for a in adds] == [(QUEUE, "operator1")]


async def test_an_unknown_operator_is_named_with_the_ones_there_are(desk: Desk) -> None:
    with pytest.raises(DeskError, match="operators: operator1"):
        await desk.login("nobody")


async def test_with_ami_down_an_operator_is_told_the_softphone_codes(desk: Desk, ami: FakeAmi) -> None:
    await ami.close()
    await eventually(lambda: not desk.connected, what="the AMI link seen down")
    with pytest.raises(DeskError, match=r"\*11"):
        await desk.login("operator1")


async def test_a_caller_joining_the_queue_is_a_step_on_their_incident(desk: Desk, ami: FakeAmi) -> None:
    store = recorded(desk)
    incident = store.store.open_incident(channel_id=CHANNEL, plan_id="t", caller_number=CALLER, called_number="112")
    ami.event({"Event": "QueueCallerJoin", "Queue": QUEUE, "Uniqueid": CHANNEL, "CallerIDNum": CALLER, "Position": "1"})
    await eventually(lambda: bool(store.details("queue_joined", incident.id)), what="queue_joined on the incident")
    assert store.details("queue_joined", incident.id) == [{"queue": QUEUE, "position": "1"}]
    assert CHANNEL in desk.waiting


async def test_a_caller_the_app_never_met_who_gives_up_in_the_queue_is_called_back(desk: Desk, ami: FakeAmi) -> None:
    store = recorded(desk)
    ami.event({"Event": "QueueCallerAbandon", "Queue": QUEUE, "Uniqueid": "never-seen", "CallerIDNum": "0819", "HoldTime": "30"})
    await eventually(lambda: callbacks.get(store.store, "0819") is not None, what="0819 on the callback list")


async def test_a_call_ringing_an_operator_while_the_store_fails_is_still_logged_and_answered(
    desk: Desk, ami: FakeAmi, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = recorded(desk)
    incident = store.store.open_incident(channel_id=CHANNEL, plan_id="t", caller_number=CALLER, called_number="112")

    async def unreadable(channel_id: str) -> None:
        raise StoreUnavailable("incident store failing: connection refused")

    monkeypatch.setattr(store, "by_channel", unreadable)  # reads fail; writes are kept (here: applied)
    member = {"Queue": QUEUE, "Interface": "PJSIP/operator1", "MemberName": "operator1", "Uniqueid": CHANNEL, "CallerIDNum": CALLER}
    ami.event({"Event": "AgentCalled", **member})
    ami.event({"Event": "AgentConnect", **member, "HoldTime": "3"})

    def actions() -> list[str]:
        return [line["action"] for line in reversed(store.store.operator_log("operator1"))]

    await eventually(lambda: actions()[-2:] == ["ringing", "answered"], what="the ring and the answer in the operators' log")
    answered = store.incident(incident.id)
    assert answered.operator == "operator1" and answered.operator_answered_at


async def test_two_reconciles_at_once_read_the_queue_log_once(desk: Desk) -> None:
    """At the app's start the ARI and AMI connections both reconcile: one reading serves both."""
    reads = 0
    real = desk._read_queue_log

    def counted() -> list[str]:
        nonlocal reads
        reads += 1
        return real()

    # The start's own reconcile may still be reading (it follows the first resync): the two
    # below must not join it, or neither reads through `counted`.
    await desk.reconcile()
    desk._read_queue_log = counted  # type: ignore[method-assign]
    assert await asyncio.gather(desk.reconcile(), desk.reconcile()) == [0, 0]
    assert reads == 1
    await desk.reconcile()
    assert reads == 2  # a later reconnect reads again


async def test_the_end_of_an_operators_wrap_up_is_told_to_the_console(desk: Desk, ami: FakeAmi) -> None:
    """Asterisk says nothing when a wrap-up ends; the operator's page must not keep "menyelesaikan"."""
    told: list[tuple[str, str]] = []
    desk.publish = lambda kind, data: told.append((str(data["status"]), str(data["action"])))
    desk.board.wrapup_s[QUEUE] = 1
    member = {"Queue": QUEUE, "MemberName": "operator1", "Interface": "PJSIP/operator1"}
    ami.event({"Event": "AgentConnect", **member, "Uniqueid": CHANNEL, "DestChannel": "PJSIP/operator1-1"})
    ami.event({"Event": "AgentComplete", **member, "Uniqueid": CHANNEL, "TalkTime": "40"})
    await eventually(lambda: ("wrapup", "completed") in told, what="the wrap-up published")
    await eventually(lambda: told[-1] == ("ready", "wrapup_over"), what="the wrap-up's end published")


async def test_a_caller_sent_here_by_another_node_is_followed_on_its_own_incident(desk: Desk, ami: FakeAmi) -> None:
    """docs/cluster.md: the queue leg names the caller's channel (AMI ChanVariable); what
    happens to the leg is written on the caller's incident, and the leg listed by QueueStatus
    before (under its own id, "waiting-1") leaves the waiting list with it."""
    store = recorded(desk)
    incident = store.store.open_incident(channel_id="node2-1.3", plan_id="t", caller_number=CALLER, called_number="112")
    leg = {"Queue": QUEUE, "Uniqueid": "waiting-1", "CallerIDNum": CALLER, "ChanVariable": "IVR112_CALLER_CHANNEL=node2-1.3"}
    ami.event({"Event": "QueueCallerJoin", **leg, "Position": "1"})
    await eventually(lambda: bool(store.details("queue_joined", incident.id)), what="queue_joined on the caller's incident")
    ami.event({"Event": "QueueCallerLeave", **leg})
    await eventually(lambda: not desk.waiting, what="the caller and its leg off the waiting list")
