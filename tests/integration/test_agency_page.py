"""The agency dispatchers' doors on the running app: an agency's account reads and
acknowledges only the incidents sent to its agency, and is refused at every door of the
centre's console (each route of the console's tables tried); the centre's people and the
bearer key are refused at the agency's doors."""

from __future__ import annotations

import re
import urllib.error
import urllib.request
from typing import Any

import pytest

from ari_app.texts import http as texts_http
from ari_app.web import api, console_login, phone
from ivr.secrets import load_or_create
from tests.integration.stack import Stack
from tests.integration.test_agency_data import _press_1
from tests.integration.test_console_api import Browser, _password

pytestmark = pytest.mark.asterisk

# The console's doors an agency's dispatcher may pass besides its own (/api/agency/...).
AGENCY_MAY = {"/api/boundaries"}


def agency_password(live: Stack, name: str, agency: str) -> str:
    out = live.ivr112("console", "password", name, "--agency", agency).stdout
    assert f"console account {name} (agency:{agency})" in out, out
    return out.split("password ", 1)[1].split()[0]


def dispatcher(live: Stack, name: str, agency: str) -> Browser:
    b = Browser(live)
    status, body = b.login(name, agency_password(live, name, agency))
    assert status == 200 and body["role"] == f"agency:{agency}", body
    return b


def console_doors() -> list[tuple[str, str]]:
    """Every door of the centre's console under /api/ (method, path), from the app's own route tables."""
    tables = [*api.routes, *phone.routes, *texts_http.console_routes, *console_login.routes]
    return [(r.method, r.path) for r in tables if r.path.startswith("/api/") and r.path not in AGENCY_MAY]  # type: ignore[attr-defined]


def concrete(path: str, incident_id: int) -> str:
    values = {"id": str(incident_id), "rec": "1", "number": "081250017201", "name": "operator1", "action": "login"}
    return re.sub(r"\{(\w+)(:[^}]*)?\}", lambda m: values[m.group(1)], path)


def test_an_agency_dispatcher_sees_and_acknowledges_only_its_agencys_incidents_and_no_other_door(live: Stack) -> None:
    caller = "081250017201"
    _press_1(live, caller, pidf=True)  # a PIDF-LO caller put through to the police
    incident = live.incident_for(caller)
    assert incident is not None
    police, fire = dispatcher(live, "polres1", "police"), dispatcher(live, "damkar1", "fire")

    # The police's dispatcher: the incident in the list, its EIDO with the caller's position, no recordings (not shared).
    status, listed = police.call("GET", "/api/agency/incidents")
    assert status == 200 and incident.id in [i["id"] for i in listed]
    status, shown = police.call("GET", f"/api/agency/incidents/{incident.id}")
    assert status == 200 and shown["caller_number"] == caller and shown["status"] == "Closed"
    best = next(loc for loc in shown["eido"]["locationComponent"] if loc["latitude"] is not None)
    assert (best["latitude"], best["longitude"]) == (pytest.approx(-2.533), pytest.approx(112.95))
    assert shown["recordings"] == [] and "callRecordingUrl" not in shown["eido"]["callComponent"][0]
    assert police.call("GET", f"/api/agency/incidents/{incident.id}/recordings/1.wav")[0] == 403
    # It acknowledges (with its CSRF token only); the centre's API shows who and when.
    assert police.call("POST", f"/api/agency/incidents/{incident.id}/ack", {"note": "Patroli 3"}, csrf="wrong")[0] == 403
    status, body = police.call("POST", f"/api/agency/incidents/{incident.id}/ack", {"note": "Patroli 3"})
    assert status == 200, body
    acks = [e for e in live.api(f"/api/incidents/{incident.id}")["events"] if e["kind"] == "agency_ack"]
    assert [(a["detail"]["agency"], a["detail"]["by"], a["detail"]["note"]) for a in acks] == [("police", "polres1", "Patroli 3")]
    assert police.call("GET", f"/api/agency/incidents/{incident.id}")[1]["acks"][0]["by"] == "polres1"

    # The fire service's dispatcher: the police's incident is as if it did not exist, at every agency door.
    status, listed = fire.call("GET", "/api/agency/incidents")
    assert status == 200 and incident.id not in [i["id"] for i in listed]
    for method, path in (("GET", f"/api/agency/incidents/{incident.id}"), ("POST", f"/api/agency/incidents/{incident.id}/ack"),
                         ("GET", f"/api/agency/incidents/{incident.id}/recordings/1.wav")):
        assert fire.call(method, path, {} if method == "POST" else None)[0] == 404, path
    assert len([e for e in live.api(f"/api/incidents/{incident.id}")["events"] if e["kind"] == "agency_ack"]) == 1

    # Every door of the centre's console refuses an agency's dispatcher, even with its CSRF token.
    refused: list[tuple[str, int, Any]] = []
    for method, path in console_doors():
        status, body = police.call(method, concrete(path, incident.id), {} if method in ("POST", "DELETE") else None)
        if status != 403 or "agency" not in body.get("error", ""):
            refused.append((f"{method} {path}", status, body))
    assert refused == [], refused
    assert police.call("GET", "/api/boundaries")[0] == 200  # the map it draws

    # The centre's people, the bearer key and nobody at all are refused at the agency's doors.
    operator = Browser(live)
    assert operator.login("operator1", _password(live, "operator1"))[0] == 200
    for who, expected in ((operator, 403), (Browser(live), 401)):
        assert who.call("GET", "/api/agency/incidents")[0] == expected
        assert who.call("POST", f"/api/agency/incidents/{incident.id}/ack", {})[0] == expected
    req = urllib.request.Request(f"{operator.base}/api/agency/incidents",
                                 headers={"Authorization": f"Bearer {load_or_create(live.settings.data_path).console_secret}"})
    with pytest.raises(urllib.error.HTTPError) as refused_bearer:
        urllib.request.urlopen(req, timeout=5)
    assert refused_bearer.value.code == 403
    refused_bearer.value.close()
    # It logs out like anyone else.
    assert police.call("POST", "/console/logout", {})[0] == 200
    assert police.call("GET", "/api/agency/incidents")[0] == 401
