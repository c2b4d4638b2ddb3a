"""What an agency receives, without a socket: the position chosen, the GEOLOC_PROFILE writes
Asterisk builds the PIDF-LO from, the Call-Info, the documents and the EIDO."""

from __future__ import annotations

from defusedxml import ElementTree

from ivr import agency_data as data
from ivr.eido import EidoSource, eido
from ivr.location.pidf import parse_pidf
from ivr.store import Incident, IncidentEvent, Recording, StoredLocation

CENTRE = data.Centre(name="Kotim 112", domain="112.kotimkab.example", base_url="https://112.kotimkab.example/")


def _loc(n: int, *, lat: float | None = -2.533, radius: float | None = 25.0, source: str = "pidf", method: str = "GPS",
         hint: bool = False) -> StoredLocation:
    return StoredLocation(id=n, incident_id=7, source=source, latitude=lat, longitude=112.95 if lat is not None else None,
                          radius_m=radius, shape="circle", method=method, confidence=None, measured_at="",
                          received_at=f"2026-11-28T06:00:0{n}+00:00", kecamatan="Mentawa Baru Ketapang", description="",
                          civic={}, uri="", detail={}, hint=hint)


def test_the_most_precise_real_position_is_sent_and_a_hint_or_a_keyed_kecamatan_never() -> None:
    cell, gps, keyed, hint = _loc(1, radius=1750, source="cell"), _loc(2, radius=25), _loc(3, lat=None, radius=None), _loc(4, radius=5, hint=True)
    assert data.best_position([cell, gps, keyed, hint]) == gps
    assert data.best_position([keyed, hint]) is None


def test_the_leg_variables_set_the_format_before_a_circle_with_the_radius_in_metres() -> None:
    out = data.geoloc_variables(_loc(1, radius=25.4, method="Wifi"))
    assert next(iter(out)) == "GEOLOC_PROFILE(format)" and out["GEOLOC_PROFILE(format)"] == "GML"
    assert out["GEOLOC_PROFILE(location_info)"] == 'shape=Circle, crs=2d, pos="-2.533 112.95", radius=25'
    assert out["GEOLOC_PROFILE(method)"] == "802.11" and out["GEOLOC_PROFILE(allow_routing_use)"] == "no"
    assert data.geoloc_variables(_loc(1, radius=None))["GEOLOC_PROFILE(location_info)"] == 'shape=Point, crs=2d, pos="-2.533 112.95"'


def test_call_info_names_the_incident_and_each_block_by_reference() -> None:
    value = data.call_info(CENTRE, 7)
    assert value.startswith("<urn:emergency:uid:incidentid:0000000007:112.kotimkab.example>;purpose=EmergencyCallData.IncidentId, ")
    assert "<https://112.kotimkab.example/agency/v1/incidents/7/Comment>;purpose=EmergencyCallData.Comment" in value


def test_the_served_pidf_lo_reads_back_as_the_same_circle_and_notes_are_escaped() -> None:
    [back] = parse_pidf(data.pidf_lo(_loc(1), entity="urn:x", when="2026-11-28T06:00:00Z"))
    assert (back.latitude, back.longitude, back.radius_m) == (-2.533, 112.95, 25)
    root = ElementTree.fromstring(data.comment(CENTRE, 7, "api <besar> & asap"))
    assert root.findtext("{urn:ietf:params:xml:ns:EmergencyCallData:Comment}Comment") == "api <besar> & asap"


def test_the_eido_carries_what_an_agency_relies_on_and_recordings_only_when_shared() -> None:
    incident = Incident(id=7, channel_id="c", plan_id="kotim", caller_number="0812", called_number="112", carrier="lokal",
                        language="id", arrived_at="2026-11-28T06:00:00+00:00", route="agency:police", notes="rumah terbakar",
                        category="emergency", operator="operator1")
    events = [IncidentEvent(7, "2026-11-28T06:00:05+00:00", "trunk_answered", {"agency": "police", "trunk": "1"})]
    source = EidoSource(incident, events, [_loc(1, radius=1750, source="cell"), _loc(2)],
                        [Recording(id=3, incident_id=7, kind="call", name="n", path="p", duration_s=None, created_at="")])
    doc = eido(source, centre=CENTRE, agency="police", share_recordings=False, recording_url="https://x/recordings")
    assert doc["$id"] == "urn:emergency:uid:incidentid:0000000007:112.kotimkab.example"
    assert doc["lastUpdateTimeStamp"] == "2026-11-28T06:00:05+00:00"
    assert doc["incidentComponent"]["incidentTypeCommonRegistryText"] == "Emergency"
    assert doc["incidentComponent"]["incidentStatusCommonRegistryText"] == "Connected"
    call = doc["callComponent"][0]
    assert call["callbackNumber"] == "0812" and "callRecordingUrl" not in call
    best = next(c for c in doc["locationComponent"] if c["$id"] == call["locationReference"])
    assert best["uncertaintyRadiusMeters"] == 25
    assert doc["notesComponent"][0]["noteText"] == "rumah terbakar"
    assert doc["agentComponent"][0]["agentIdentifier"] == "operator1"
    shared = eido(source, centre=CENTRE, agency="police", share_recordings=True, recording_url="https://x/recordings")
    assert shared["callComponent"][0]["callRecordingUrl"] == ["https://x/recordings/3"]
