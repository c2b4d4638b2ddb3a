"""112 calls on a real Asterisk with the record kept in PostgreSQL (store_url), on a
server this module starts (tests/pg.py) and stops by pid: the incident, its events and
the callback list land there; the server stopped in the middle of a call loses nothing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import pg
from tests.integration.stack import Stack, sipp_args, wait_for
from tests.support.stacks import running_stack

pytestmark = pytest.mark.asterisk


@pytest.fixture(scope="module")
def server() -> Iterator[pg.PostgresServer]:
    with pg.running() as s:
        yield s


@pytest.fixture(scope="module")
def pg_stack(server: pg.PostgresServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack(tmp_path_factory, "testpg", store_url=server.create_database("ivr112")) as s:
        yield s


@pytest.fixture
def live(pg_stack: Stack, request: pytest.FixtureRequest) -> Iterator[Stack]:
    yield pg_stack
    pg_stack.stop_all_sipp()
    rep = getattr(request.node, "rep_call", None)
    if rep is not None and rep.failed:
        pg_stack.dump_logs()


def _sqlite_file(stack: Stack) -> Path:
    return stack.settings.data_path / "ivr112.sqlite"


def test_a_dropped_112_call_leaves_its_incident_events_and_callback_entry_in_postgresql(live: Stack) -> None:
    caller = "081250007001"
    call = live.sipp("caller", *sipp_args(("caller", caller)), "-s", "112", "-d", "1500", timeout=20)
    assert call.returncode == 0, call.report()
    incident = wait_for("the incident to close", lambda: (i := live.incident_for(caller)) and i.ended_at and i, timeout=40)
    assert incident.called_number == "112" and incident.answered_at
    kinds = [e.kind for e in live.incident_events(incident.id)]
    assert "prompt" in kinds and "callback_listed" in kinds
    entry = live.read(lambda s: s.callback(caller))
    assert entry is not None and entry.status == "open" and entry.calls == 1 and entry.incident_id == incident.id
    assert live.read(lambda s: s.engine_name) == "postgresql"
    assert not _sqlite_file(live).exists()  # nothing went to the embedded file
    assert live.health()["store"] == "ok"


def test_postgresql_stopped_in_the_middle_of_a_call_loses_nothing_and_doubles_nothing(live: Stack, server: pg.PostgresServer) -> None:
    caller = "081250007002"
    # A caller who stays in the voice menu for 12 s, then hangs up.
    call = live.sipp("caller", *sipp_args(("caller", caller)), "-s", "112", "-d", "12000", background=True, timeout=40)
    # Stopped once the caller is in the menu (its first prompt on record): the reads the call
    # makes at its start (redial, prank flag) are not kept while the store is down, and a
    # call that meets a failed one goes to the operators without a prompt (docs/store.md).
    incident = wait_for("the caller in the voice menu",
                        lambda: (i := live.incident_for(caller)) and "prompt" in [e.kind for e in live.incident_events(i.id)] and i,
                        timeout=20)
    before = live.incident_events(incident.id)
    server.stop()
    try:
        # The call goes on; the app keeps its writes (in memory and the spool) and says so.
        kept = wait_for("a write kept while PostgreSQL is down",
                        lambda: (h := live.health()["store"]).startswith("failing") and " 0 writes waiting" not in h and h, timeout=20)
        assert "writes waiting" in kept
        assert (live.settings.data_path / "store-spool.jsonl").exists()
    finally:
        server.start()
    assert call.wait() == 0, call.report()
    closed = wait_for("the incident to close", lambda: (i := live.incident_for(caller)) and i.ended_at and i, timeout=40)
    assert closed.id == incident.id
    wait_for("the backlog to drain", lambda: live.health()["store"] == "ok", timeout=20)
    assert not (live.settings.data_path / "store-spool.jsonl").exists()
    assert [i.id for i in live.incidents() if i.caller_number == caller] == [incident.id]  # not doubled
    events = live.incident_events(incident.id)
    assert len({(e.kind, e.at) for e in events}) == len(events)  # no event twice
    # What was on record stays first, in order; what the call wrote while the store was down follows it.
    assert [(e.kind, e.at) for e in events[:len(before)]] == [(e.kind, e.at) for e in before] and len(events) > len(before)
    entry = live.read(lambda s: s.callback(caller))  # nobody answered: listed once
    assert entry is not None and entry.calls == 1 and entry.incident_id == incident.id


def test_a_sip_text_sent_while_postgresql_is_down_is_kept_and_answered_once_it_is_back(live: Stack, server: pg.PostgresServer) -> None:
    from ivr.texts import AUTO_REPLY

    number = "081250007003"
    phone_port = live.sipp_port()
    phone = live.sipp("text_receiver", "-m", "1", port=phone_port, background=True, timeout=90)
    server.stop()
    try:
        sent = live.sipp("text_message", *sipp_args(("caller", number), ("text", "Saya tuli, ada perampokan"),
                                                    ("reply_port", str(phone_port))), "-s", "112", timeout=15)
        assert sent.returncode == 0, sent.report()  # Asterisk's 202: the text is in the journal only
        wait_for("the text said to wait in the journal", lambda: "SIP texts wait in" in live.app_log.read_text() or None,
                 timeout=20)
    finally:
        server.start()
    incident = wait_for("the text kept once PostgreSQL is back", lambda: live.incident_for(number), timeout=40)
    texts = live.read(lambda s: s.texts(incident.id))
    assert [t.body for t in texts if t.direction == "in"] == ["Saya tuli, ada perampokan"]
    assert phone.wait() == 0, phone.report()
    assert AUTO_REPLY["id"] in phone.messages()
    server.stop()  # an operator's reply cannot be kept now: refused, clearly, not lost silently
    try:
        status, answer = live.console(f"/api/texts/{incident.id}/reply", {"text": "Di mana Anda?"})
        assert status == 503 and "nothing was kept nor sent" in answer["error"], answer
    finally:
        server.start()
