"""The EIDO pushed to an agency's webhook, on the real stack: a PIDF-LO caller reaches the
police, the police's receiver (aiohttp on loopback) gets the signed EIDO of the answered
call; a redirect to another host is refused, not followed; the receiver is stopped while
the call ends, the operator writes notes, the app restarts and the incident is closed, and
once it is back it gets every version, in order, each once.

The receiver stays away 30 s under IVR112_CHAOS=long (make chaos), a few seconds otherwise.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest

from ivr import agency_push as push
from ivr.secrets import load_or_create
from tests.integration.stack import Stack, sipp_args, wait_for
from tests.integration.test_agency_data import CIRCLE, POLICE_1, PRESS_AFTER_MS, SAMPIT
from tests.support import plan as plan_file
from tests.support.webhook_receiver import Post, Receiver

pytestmark = pytest.mark.asterisk

OUTAGE_S = 30.0 if os.environ.get("IVR112_CHAOS", "") == "long" else 6.0


@pytest.fixture
def receivers(live: Stack) -> Iterator[tuple[Receiver, Receiver]]:
    """The police's webhook (in the plan while the test runs) and another host it may redirect to."""
    police, elsewhere = Receiver().start(), Receiver("127.0.0.2").start()
    original = live.plan_file.read_text()
    doc = plan_file.load(live.plan_file)
    doc["agencies"]["police"]["webhook"] = police.url
    plan_file.write(doc, live.plan_file)
    try:
        assert "reloaded" in live.ivr112("reload").stdout
        yield police, elsewhere
    finally:
        live.plan_file.write_text(original)
        live.ivr112("reload", check=False)
        police.close()
        elsewhere.close()


def _eido(post: Post) -> dict[str, Any]:
    return dict(json.loads(post.body))


def _mine(receiver: Receiver, urn: str) -> list[Post]:
    return [p for p in receiver.received() if p.headers.get(push.EIDO_ID_HEADER) == urn]


def test_the_police_webhook_gets_every_update_in_order_once_through_an_outage_and_a_restart(
        live: Stack, receivers: tuple[Receiver, Receiver]) -> None:
    hook, elsewhere = receivers
    caller = "081250017101"
    secret = load_or_create(live.settings.data_path).agency_webhook_secrets["police"]
    police = live.sipp("agency_saves_invite", port=live.trunk_ports[POLICE_1], background=True, timeout=60)
    call = live.sipp("caller_pidf", *sipp_args(("caller", caller), ("shape", CIRCLE)), "-s", "112", "-d", "4000",
                     steps=[("pause", PRESS_AFTER_MS), ("dtmf", "1")], background=True, timeout=60)
    incident = wait_for("the call's incident", lambda: live.incident_for(caller), timeout=20)
    urn = f"urn:emergency:uid:incidentid:{incident.id:010d}:{live.settings.centre_domain}"

    # The police answer: their system gets the EIDO of the connected call, signed.
    def connected() -> Post | None:
        return next((p for p in _mine(hook, urn) if _eido(p)["incidentComponent"]["incidentStatusCommonRegistryText"] == "Connected"), None)

    first = wait_for("the police's webhook to get the EIDO of the answered call", connected, timeout=10)
    answered = next(e.at for e in live.incident_events(incident.id) if e.kind == "trunk_answered")
    print(f"EIDO of the connected call received {first.at - datetime.fromisoformat(answered).timestamp():.2f} s after the police answered")
    eido = _eido(first)
    assert first.headers["Content-Type"] == "application/emergency.eido+json"
    assert push.verify(secret, timestamp=first.headers[push.TIMESTAMP_HEADER], body=first.body,
                       given=first.headers[push.SIGNATURE_HEADER], now=time.time())
    call_part = eido["callComponent"][0]
    assert (eido["$id"], call_part["callbackNumber"], call_part["calledNumber"]) == (urn, caller, "112")
    best = next(loc for loc in eido["locationComponent"] if loc["$id"] == call_part["locationReference"])
    assert (best["latitude"], best["longitude"], best["uncertaintyRadiusMeters"]) == (
        pytest.approx(SAMPIT[0]), pytest.approx(SAMPIT[1]), 25)

    # A redirect to another host is refused and logged, never followed.
    hook.redirect_to = elsewhere.url
    assert live.console(f"/api/incidents/{incident.id}/classify",
                        {"category": "emergency", "operator": "operator1", "notes": "Rumah terbakar di Jl. Ahmad Yani"})[0] == 200
    wait_for("the app to log the refused redirect", lambda: "redirects are not followed" in live.app_log.read_text(), timeout=10)
    assert elsewhere.received() == []

    # The receiver goes away; meanwhile the call ends, the notes change, the app restarts, the incident closes.
    hook.stop()
    hook.redirect_to = ""
    away_since = time.monotonic()
    assert call.wait() == 0, call.report()
    assert police.wait() == 0, police.report()
    wait_for("the call's end in the store", lambda: live.incident_for(caller).ended_at, timeout=10)  # type: ignore[union-attr]
    assert live.console(f"/api/incidents/{incident.id}/classify",
                        {"category": "emergency", "operator": "operator1", "notes": "Dua orang terjebak di lantai 2"})[0] == 200
    live.app_stop()
    live.app_start()
    assert live.console(f"/api/incidents/{incident.id}/close", {"notes": "Unit Damkar tiba"})[0] == 200

    def waiting() -> list[Any]:
        return [p for p in live.read(lambda s: s.pushes("police")) if p.incident_id == incident.id and p.sent_at is None]

    def closed_queued_and_retried() -> bool:
        rows = waiting()
        return (any(json.loads(p.body)["incidentComponent"]["incidentClosedTimeStamp"] for p in rows)
                and any(p.attempts > 0 and p.version > 1 for p in rows))

    wait_for(f"the close queued and the updates to wait {OUTAGE_S:g} s, tried again after the restart",
             lambda: time.monotonic() - away_since >= OUTAGE_S and closed_queued_and_retried(), timeout=OUTAGE_S + 30)
    kept = live.read(lambda s: s.pushes("police"))
    versions = [p.version for p in kept if p.incident_id == incident.id]
    assert versions == list(range(1, len(versions) + 1))

    print(f"incident {incident.id}: versions {versions} waited {OUTAGE_S:g} s")
    # Back: every version arrives, in order, each once, each signed; the last is the closed incident.
    hook.start()
    wait_for("every update to be delivered", lambda: not waiting(), timeout=60)
    got = _mine(hook, urn)
    assert [int(p.headers[push.VERSION_HEADER]) for p in got] == versions
    assert [_eido(p)["eidoMessageIdentifier"] for p in got] == [f"{urn}:{v}" for v in versions]
    for p in got:
        assert push.verify(secret, timestamp=p.headers[push.TIMESTAMP_HEADER], body=p.body,
                           given=p.headers[push.SIGNATURE_HEADER], now=time.time())
    last = _eido(got[-1])
    assert last["incidentComponent"]["incidentStatusCommonRegistryText"] == "Closed"
    assert last["incidentComponent"]["incidentClosedTimeStamp"]
    assert last["notesComponent"][0]["noteText"] == "Unit Damkar tiba"
    assert any(_eido(p)["notesComponent"] and _eido(p)["notesComponent"][0]["noteText"] == "Dua orang terjebak di lantai 2"
               for p in got)
    assert elsewhere.received() == []
    assert secret not in live.app_log.read_text()
