"""What an agency receives with the call, on the real stack: the caller's position as a
PIDF-LO in the trunk's INVITE (RFC 6442), the RFC 7852 Call-Info, and the incident behind
the references, read with the agency's own token."""

from __future__ import annotations

import email
import email.policy
import json
import re
from dataclasses import dataclass
from email.message import EmailMessage

import pytest
from defusedxml import ElementTree

from tests.integration.stack import Sipp, Stack, sipp_args, wait_for
from tests.support import plan as plan_file

pytestmark = pytest.mark.asterisk

POLICE_1, SAR = 5071, 5075
PRESS_AFTER_MS = "1500"
SAMPIT = (-2.5330, 112.9500)
CIRCLE = ('<gs:Circle srsName="urn:ogc:def:crs:EPSG::4326"><gml:pos>-2.5330 112.9500</gml:pos>'
          '<gs:radius uom="urn:ogc:def:uom:EPSG::9001">25</gs:radius></gs:Circle>')
GML = "{http://www.opengis.net/gml}"
GS = "{http://www.opengis.net/pidflo/1.0}"


@dataclass
class Invite:
    """The INVITE an agency's trunk received: its headers (lower-case names) and body parts."""

    headers: dict[str, list[str]]
    parts: list[EmailMessage]

    def header(self, name: str) -> list[str]:
        return self.headers.get(name.lower(), [])

    def part(self, content_type: str) -> EmailMessage | None:
        return next((p for p in self.parts if p.get_content_type() == content_type), None)


def received_invite(sipp: Sipp) -> Invite:
    """The whole INVITE the SIPp agency kept (tests/sipp/agency_saves_invite.xml), parsed."""
    found = re.findall(r"INVITE-BEGIN(.*?)INVITE-END", sipp.logs(), flags=re.DOTALL)
    assert found, sipp.report()
    text = found[0].replace("\r\n", "\n")
    _request_line, rest = text.split("\n", 1)
    message = email.message_from_string(rest, policy=email.policy.default)
    headers: dict[str, list[str]] = {}
    for name, value in message.items():
        headers.setdefault(name.lower(), []).append(str(value))
    parts = [p for p in message.iter_parts()] if message.is_multipart() else [message]  # type: ignore[attr-defined]
    return Invite(headers, parts)  # type: ignore[arg-type]


def _press_1(live: Stack, caller: str, *, pidf: bool) -> Invite:
    police = live.sipp("agency_saves_invite", port=live.trunk_ports[POLICE_1], background=True, timeout=60)
    scenario, keys = ("caller_pidf", sipp_args(("caller", caller), ("shape", CIRCLE))) if pidf else ("caller", sipp_args(("caller", caller)))
    call = live.sipp(scenario, *keys, "-s", "112", "-d", "4000", steps=[("pause", PRESS_AFTER_MS), ("dtmf", "1")], timeout=60)
    assert call.returncode == 0, call.report()
    assert police.wait() == 0, police.report()
    return received_invite(police)


def _position(pidf_xml: str) -> tuple[float, float, float]:
    root = ElementTree.fromstring(pidf_xml)
    circle = root.find(f".//{GS}Circle")
    assert circle is not None, pidf_xml
    lat, lon = (float(v) for v in circle.findtext(f"{GML}pos", "").split())
    return lat, lon, float(circle.findtext(f"{GS}radius", "nan"))


def test_a_pidf_caller_pressing_1_reaches_the_police_with_their_position_in_the_invite(live: Stack) -> None:
    caller = "081250017001"
    invite = _press_1(live, caller, pidf=True)
    incident = live.incident_for(caller)
    assert incident is not None
    # RFC 6442: a multipart body, the Geolocation header pointing at the PIDF-LO part by cid.
    assert invite.header("Content-Type")[0].startswith("multipart/mixed")
    assert invite.header("Geolocation-Routing") == ["no"]
    cid = re.fullmatch(r"<cid:(.+)>", invite.header("Geolocation")[0])
    assert cid, invite.header("Geolocation")
    pidf = invite.part("application/pidf+xml")
    sdp = invite.part("application/sdp")
    assert pidf is not None and sdp is not None, invite.parts
    assert pidf["Content-ID"] == f"<{cid.group(1)}>"
    lat, lon, radius = _position(pidf.get_content())
    assert (lat, lon, radius) == (pytest.approx(SAMPIT[0]), pytest.approx(SAMPIT[1]), 25)
    assert b"m=audio" in sdp.get_payload(decode=True)  # the call's media is still offered
    # RFC 7852: the incident's id and the additional data blocks by reference.
    call_info = ", ".join(invite.header("Call-Info"))
    assert f"<urn:emergency:uid:incidentid:{incident.id:010d}:" in call_info
    assert "purpose=EmergencyCallData.IncidentId" in call_info
    for block in ("ServiceInfo", "ProviderInfo", "Comment"):
        assert re.search(rf"<http://[^>]+/agency/v1/incidents/{incident.id}/{block}>;purpose=EmergencyCallData.{block}", call_info), call_info


def test_a_caller_with_no_position_still_reaches_the_police_with_the_call_info_and_no_location(live: Stack) -> None:
    caller = "081250017002"
    invite = _press_1(live, caller, pidf=False)
    incident = live.incident_for(caller)
    assert incident is not None
    assert invite.header("Geolocation") == []
    assert invite.part("application/pidf+xml") is None
    assert f"urn:emergency:uid:incidentid:{incident.id:010d}:" in ", ".join(invite.header("Call-Info"))


def _urls(call_info: str) -> dict[str, str]:
    return {purpose: url for url, purpose in re.findall(r"<([^>]+)>;purpose=EmergencyCallData\.(\w+)", call_info)}


def test_the_police_read_the_incident_behind_the_invite_and_no_other_agency_can(live: Stack) -> None:
    caller = "081250017003"
    invite = _press_1(live, caller, pidf=True)
    incident = live.incident_for(caller)
    assert incident is not None
    urls = _urls(", ".join(invite.header("Call-Info")))
    base = urls["Comment"].rsplit("/", 1)[0]
    police, fire = live.agency_token("police"), live.agency_token("fire")
    # The EIDO: the incident the INVITE named, with the caller, the call and the position.
    status, kind, body = live.agency_get(base, police)
    assert (status, kind) == (200, "application/emergency.eido+json"), body
    eido = json.loads(body)
    assert eido["$id"] == urls["IncidentId"] == eido["incidentComponent"]["incidentTrackingIdentifier"]
    call = eido["callComponent"][0]
    assert call["callbackNumber"] == caller and call["calledNumber"] == "112"
    assert call["callStartTimeStamp"] == incident.arrived_at
    best = next(loc for loc in eido["locationComponent"] if loc["$id"] == call["locationReference"])
    assert (best["latitude"], best["longitude"], best["uncertaintyRadiusMeters"]) == (
        pytest.approx(SAMPIT[0]), pytest.approx(SAMPIT[1]), 25)
    assert best["kecamatan"] == "Mentawa Baru Ketapang"
    assert _position(best["locationByValue"])[:2] == (pytest.approx(SAMPIT[0]), pytest.approx(SAMPIT[1]))
    assert "callRecordingUrl" not in call  # recordings are not shared unless the plan says so
    # The RFC 7852 blocks the Call-Info points to.
    for block in ("ServiceInfo", "ProviderInfo", "Comment"):
        status, kind, body = live.agency_get(urls[block], police)
        assert (status, kind) == (200, f"application/emergencycalldata.{block.lower()}+xml"), body
        assert ElementTree.fromstring(body).tag == f"{{urn:ietf:params:xml:ns:EmergencyCallData:{block}}}EmergencyCallData.{block}"
    # Every door refuses another agency's token (as if the incident did not exist) and no token.
    for url in (base, f"{base}/location", *(urls[b] for b in ("ServiceInfo", "ProviderInfo", "Comment"))):
        assert live.agency_get(url, fire)[0] == 404, url
        assert live.agency_get(url, None)[0] == 401, url
        assert live.agency_get(url, "not-a-token")[0] == 401, url
    listed = json.loads(live.agency_get(base.rsplit("/", 1)[0], fire)[2])
    assert incident.id not in [row["id"] for row in listed]
    assert incident.id in [row["id"] for row in json.loads(live.agency_get(base.rsplit("/", 1)[0], police)[2])]
    # No agency token in the app's log.
    assert police not in live.app_log.read_text() and fire not in live.app_log.read_text()


def test_an_agency_marked_location_reference_gets_a_url_it_reads_the_pidf_lo_from(live: Stack) -> None:
    caller = "081250017004"
    original = live.plan_file.read_text()
    doc = plan_file.load(live.plan_file)
    doc["agencies"]["sar"]["location"] = "reference"
    plan_file.write(doc, live.plan_file)
    try:
        assert "reloaded" in live.ivr112("reload").stdout
        sar = live.sipp("agency_saves_invite", port=live.trunk_ports[SAR], background=True, timeout=60)
        call = live.sipp("caller_pidf", *sipp_args(("caller", caller), ("shape", CIRCLE)), "-s", "112", "-d", "4000",
                         steps=[("pause", PRESS_AFTER_MS), ("dtmf", "4")], timeout=60)
        assert call.returncode == 0, call.report()
        assert sar.wait() == 0, sar.report()
    finally:
        live.plan_file.write_text(original)
        live.ivr112("reload", check=False)
    invite = received_invite(sar)
    assert invite.part("application/pidf+xml") is None  # no body: the agency fetches it
    assert invite.header("Geolocation-Routing") == ["no"]
    url = re.fullmatch(r"<(http://[^>]+/location)>", invite.header("Geolocation")[0])
    assert url, invite.header("Geolocation")
    status, kind, body = live.agency_get(url.group(1), live.agency_token("sar"))
    assert (status, kind) == (200, "application/pidf+xml"), body
    assert _position(body.decode()) == (pytest.approx(SAMPIT[0]), pytest.approx(SAMPIT[1]), 25)
    assert live.agency_get(url.group(1), live.agency_token("police"))[0] == 404


def test_an_operators_blind_transfer_to_the_police_carries_the_callers_position(live: Stack) -> None:
    caller, operator_name = "081250017005", "operator1"
    port = live.sipp_port()
    live.register_operator(operator_name, port)
    operator = live.sipp("answer", port=port, background=True, timeout=60)
    call = live.sipp("caller_pidf", *sipp_args(("caller", caller), ("shape", CIRCLE)), "-s", "112", "-d", "500",
                     steps=[("pause", "1000"), ("dtmf", "0"), ("pause", "9000")], background=True, timeout=60)
    incident = wait_for("the operator to answer", lambda: (i := live.incident_for(caller)) and i.operator_answered_at and i, timeout=20)
    police = live.sipp("agency_saves_invite", port=live.trunk_ports[POLICE_1], background=True, timeout=60)
    live.ivr112("transfer", str(incident.id), "police")
    assert operator.wait() == 0, operator.report()
    assert call.wait() == 0, call.report()
    assert police.wait() == 0, police.report()
    invite = received_invite(police)
    pidf = invite.part("application/pidf+xml")
    assert pidf is not None and pidf["Content-ID"] == invite.header("Geolocation")[0].replace("cid:", "")
    assert _position(pidf.get_content()) == (pytest.approx(SAMPIT[0]), pytest.approx(SAMPIT[1]), 25)
    assert f"urn:emergency:uid:incidentid:{incident.id:010d}:" in ", ".join(invite.header("Call-Info"))


def test_an_operators_conference_leg_to_the_police_carries_the_callers_position_and_call_info(live: Stack) -> None:
    caller, operator_name = "081250017006", "operator1"
    port = live.sipp_port()
    live.register_operator(operator_name, port)
    # The operator's softphone leaves the conference 4 s after answering; caller and police stay.
    operator = live.sipp("answer_bye", "-d", "4000", port=port, background=True, timeout=60)
    call = live.sipp("caller_pidf", *sipp_args(("caller", caller), ("shape", CIRCLE)), "-s", "112", "-d", "500",
                     steps=[("pause", "1000"), ("dtmf", "0"), ("pause", "12000")], background=True, timeout=60)
    incident = wait_for("the operator to answer", lambda: (i := live.incident_for(caller)) and i.operator_answered_at and i, timeout=20)
    police = live.sipp("agency_saves_invite", port=live.trunk_ports[POLICE_1], background=True, timeout=60)
    live.ivr112("transfer", str(incident.id), "police", "--conference")
    assert operator.wait() == 0, operator.report()
    assert call.wait() == 0, call.report()
    assert police.wait() == 0, police.report()
    invite = received_invite(police)
    # Dialled by the dialplan (Local channel into the conference), yet the same as the app's own legs.
    assert invite.header("Content-Type")[0].startswith("multipart/mixed")
    assert invite.header("Geolocation-Routing") == ["no"]
    pidf = invite.part("application/pidf+xml")
    assert pidf is not None and pidf["Content-ID"] == invite.header("Geolocation")[0].replace("cid:", "")
    assert _position(pidf.get_content()) == (pytest.approx(SAMPIT[0]), pytest.approx(SAMPIT[1]), 25)
    call_info = ", ".join(invite.header("Call-Info"))
    assert f"<urn:emergency:uid:incidentid:{incident.id:010d}:" in call_info
    for block in ("ServiceInfo", "ProviderInfo", "Comment"):
        assert f"/agency/v1/incidents/{incident.id}/{block}>;purpose=EmergencyCallData.{block}" in call_info, call_info
    # The police may read it: the conference sent the incident to them.
    assert live.agency_get(_urls(call_info)["Comment"], live.agency_token("police"))[0] == 200
