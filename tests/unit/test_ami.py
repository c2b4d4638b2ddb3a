"""The AMI wrapper's own promises, against a fake server: confirmed login, refused login
said and retried, timeouts, the ping watchdog, ordered events, resync after each login."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import pytest

from ari_app.operators.ami import AmiClient, AmiError, AmiEvent
from tests.support.poll import eventually
from tests.unit.fake_ami import FakeAmi


@pytest.fixture
async def fake() -> AsyncIterator[FakeAmi]:
    server = FakeAmi()
    yield server
    for c in server.clients:
        await c.close()
    await server.close()


async def client(fake: FakeAmi, *, secret: str = "s3cret", **kw: object) -> tuple[AmiClient, list[str], list[AmiEvent]]:
    port = await fake.start()
    logins: list[str] = []
    events: list[AmiEvent] = []

    async def on_login() -> None:
        logins.append("login")

    async def on_event(event: AmiEvent) -> None:
        if event.name == "Boom":
            raise RuntimeError("a bad handler")
        events.append(event)

    c = AmiClient("127.0.0.1", port, "ivr112", secret, on_login=on_login, on_event=on_event,
                  action_timeout=0.5, reconnect_max=0.3, **kw)  # type: ignore[arg-type]
    await c.start()
    fake.clients.append(c)
    return c, logins, events


async def test_login_is_confirmed_before_connected_and_resync_runs_once(fake: FakeAmi) -> None:
    c, logins, _ = await client(fake)
    assert await c.wait_connected(3)
    assert c.connected and logins == ["login"] and fake.logins == 1


async def test_a_refused_login_is_logged_with_what_to_check_and_retried(fake: FakeAmi, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR, "ari_app.operators.ami")
    c, logins, _ = await client(fake, secret="wrong")
    await eventually(lambda: len([a for a in fake.actions if a.get("Action") == "Login"]) >= 2)
    assert not c.connected and logins == []
    assert "refused" in caplog.text and "var/secrets.yaml" in caplog.text and "wrong" not in caplog.text
    with pytest.raises(AmiError, match="not connected"):
        await c.queue_add("q", "PJSIP/andi")


async def test_queue_add_resolves_and_an_error_reply_raises_with_asterisks_message(fake: FakeAmi) -> None:
    c, _, _ = await client(fake)
    assert await c.wait_connected(3)
    fake.replies["QueueAdd"] = lambda f: [{"Response": "Success", "Message": "Added interface to queue"}]
    await c.queue_add("kotim-operators", "PJSIP/andi", member_name="andi", state_interface="PJSIP/andi")
    sent = next(a for a in fake.actions if a.get("Action") == "QueueAdd")
    assert sent["Queue"] == "kotim-operators" and sent["MemberName"] == "andi"
    fake.replies["QueueAdd"] = lambda f: [{"Response": "Error", "Message": "Unable to add interface: Already there"}]
    with pytest.raises(AmiError, match="QueueAdd failed: Unable to add interface: Already there"):
        await c.queue_add("kotim-operators", "PJSIP/andi")


async def test_an_action_never_answered_times_out(fake: FakeAmi) -> None:
    c, _, _ = await client(fake)
    assert await c.wait_connected(3)
    fake.silent.add("QueuePause")
    with pytest.raises(AmiError, match=r"no answer within 0\.5 s"):
        await c.queue_pause("PJSIP/andi", True, reason="istirahat")


async def test_unanswered_pings_drop_the_connection_and_the_client_logs_in_again(fake: FakeAmi) -> None:
    c, logins, _ = await client(fake, ping_interval=0.2)
    assert await c.wait_connected(3)
    fake.answer_pings = False
    await eventually(lambda: fake.logins >= 2 or not c.connected)
    fake.answer_pings = True
    await eventually(lambda: fake.logins >= 2 and c.connected)
    assert len(logins) >= 2


async def test_a_dropped_connection_is_rebuilt_and_resynced(fake: FakeAmi) -> None:
    c, logins, _ = await client(fake)
    assert await c.wait_connected(3)
    fake.drop()
    await eventually(lambda: len(logins) == 2 and c.connected)


async def test_events_arrive_in_order_and_a_failing_handler_does_not_stop_the_next(fake: FakeAmi) -> None:
    c, _, events = await client(fake)
    assert await c.wait_connected(3)
    for i in range(5):
        fake.event({"Event": "QueueMemberStatus", "Queue": "q", "Seq": str(i)})
        if i == 2:
            fake.event({"Event": "Boom"})
    await eventually(lambda: len(events) == 5)
    assert [e.fields["Seq"] for e in events] == ["0", "1", "2", "3", "4"]
    assert events[0].name == "QueueMemberStatus" and "Event" not in events[0].fields


async def test_queue_status_collects_members_and_callers_up_to_the_complete_event(fake: FakeAmi) -> None:
    c, _, _ = await client(fake)
    assert await c.wait_connected(3)
    fake.replies["QueueStatus"] = lambda f: [
        {"Response": "Success", "EventList": "start", "Message": "Queue status will follow"},
        {"Event": "QueueParams", "Queue": "q"},
        {"Event": "QueueMember", "Queue": "q", "Name": "andi", "Location": "PJSIP/andi", "Paused": "1"},
        {"Event": "QueueEntry", "Queue": "q", "Position": "1", "Uniqueid": "17.1"},
        {"Event": "QueueStatusComplete", "EventList": "Complete", "ListItems": "3"},
    ]
    members, entries = await c.queue_status()
    assert [m["Location"] for m in members] == ["PJSIP/andi"] and [e["Uniqueid"] for e in entries] == ["17.1"]
    await c.close()
    assert not c.connected


async def test_a_resync_that_asterisk_does_not_answer_is_tried_again_on_a_new_connection(fake: FakeAmi) -> None:
    """Right after a restart Asterisk takes the login before app_queue answers QueueStatus:
    the board must not stay unsynced until the next drop."""
    port = await fake.start()
    resyncs: list[str] = []

    async def on_login() -> None:
        resyncs.append("login")
        if len(resyncs) == 1:
            raise AmiError("AMI QueueStatus: no answer within 5 s")

    async def on_event(event: AmiEvent) -> None:
        pass

    c = AmiClient("127.0.0.1", port, "ivr112", "s3cret", on_login=on_login, on_event=on_event, action_timeout=0.5, reconnect_max=0.3)
    await c.start()
    fake.clients.append(c)
    await eventually(lambda: len(resyncs) == 2 and c.connected)
    assert fake.logins == 2
