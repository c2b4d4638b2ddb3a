"""One incident as a NENA Emergency Incident Data Object (NENA-STA-021, JSON), as an agency
reads it: written from the standard's field names for the data we hold (the incident, its
call, the caller's positions, the agency it went to, the operator, notes, classification,
the RFC 7852 blocks by reference). Pure: the web side fetches the rows and serves it.

Recordings are personal data (UU 27/2022): their URLs are in the EIDO only for an agency
whose plan entry says `share_recordings: true`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ivr import agency_data as data
from ivr.store import Incident, IncidentEvent, Recording, StoredLocation

EIDO_VERSION = "1.0"
# Our categories as the EIDO's incident types (the operator's classification).
INCIDENT_TYPES = {"emergency": "Emergency", "information": "Information", "prank": "Prank call", "ghost": "Silent call"}


@dataclass(frozen=True)
class EidoSource:
    """Everything the store holds about one incident that an agency may see."""

    incident: Incident
    events: Sequence[IncidentEvent]
    locations: Sequence[StoredLocation]
    recordings: Sequence[Recording]


# The incident events that send an incident to an agency (sent_to), and that its status reads.
SENDING = ("trunk_dial", "transfer")
ANSWERED = "trunk_answered"


def sent_to(agency: str, incident: Incident, events: Sequence[IncidentEvent]) -> bool:
    """Whether the centre has dialled `agency` for this incident (its menu, an overflow, a
    transfer or conference): only then may the agency read it or be sent it."""
    return incident.route == f"agency:{agency}" or any(
        e.kind in SENDING and e.detail.get("agency") == agency for e in events)


def agency_eido(source: EidoSource, *, centre: data.Centre, agency: str, share_recordings: bool) -> dict[str, Any]:
    """The EIDO as `agency` reads it at the door or is pushed it: recordings by URL only when shared."""
    return eido(source, centre=centre, agency=agency, share_recordings=share_recordings,
                recording_url=data.incident_url(centre, source.incident.id, "recordings"))


def incident_status(incident: Incident, agency: str, events: Sequence[IncidentEvent]) -> str:
    """The incident as the agency sees it: Open (sent, not answered), Connected (its trunk answered), Closed (the call ended)."""
    if any(e.kind == ANSWERED and e.detail.get("agency") == agency for e in events):
        return "Closed" if incident.ended_at else "Connected"
    return "Closed" if incident.ended_at else "Open"


def _location(centre: data.Centre, incident_id: int, loc: StoredLocation, n: int) -> dict[str, Any]:
    out: dict[str, Any] = {
        "$id": f"{data.incident_urn(incident_id, centre.domain)}:location:{n}",
        "lastUpdateTimeStamp": loc.received_at,
        "locationTypeDescription": loc.source,
        "locationByValue": data.pidf_lo(loc, entity=f"urn:emergency:uid:incidentid:{incident_id}", when=loc.measured_at or loc.received_at),
        "latitude": loc.latitude, "longitude": loc.longitude, "uncertaintyRadiusMeters": loc.radius_m,
        "confidencePercent": loc.confidence, "locationMethod": data.geoloc_method(loc) or loc.method,
        "kecamatan": loc.kecamatan, "description": loc.description,
    }
    if loc.uri:
        out["locationByReferenceUrl"] = loc.uri
    return out


def eido(source: EidoSource, *, centre: data.Centre, agency: str, share_recordings: bool, recording_url: str = "") -> dict[str, Any]:
    """The EIDO of `source.incident` as `agency` sees it."""
    inc = source.incident
    urn = data.incident_urn(inc.id, centre.domain)
    updated = max([inc.arrived_at, *(t for t in (inc.ended_at, inc.classified_at, inc.closed_at) if t),
                   *(e.at for e in source.events), *(loc.received_at for loc in source.locations)])
    best = data.best_position(source.locations)
    real = [loc for loc in source.locations if not loc.hint]  # another call's position is not this incident's
    locations = [_location(centre, inc.id, loc, n) for n, loc in enumerate(real, start=1)]
    best_ref = next((c["$id"] for c, loc in zip(locations, real, strict=True) if best is not None and loc.id == best.id), None)
    call: dict[str, Any] = {
        "$id": f"urn:emergency:uid:callid:{inc.id:010d}:{centre.domain}",
        "callTypeDescription": "Emergency voice call",
        "callStartTimeStamp": inc.arrived_at, "callAnswerTimeStamp": inc.operator_answered_at or inc.answered_at,
        "callEndTimeStamp": inc.ended_at, "calledNumber": inc.called_number, "callbackNumber": inc.caller_number,
        "callRouteDescription": inc.route_result, "locationReference": best_ref,
    }
    if share_recordings and recording_url:
        call["callRecordingUrl"] = [f"{recording_url}/{r.id}" for r in source.recordings]
    notes = [{"$id": f"{urn}:note:1", "noteDateTimeStamp": inc.classified_at or updated, "noteText": inc.notes,
              "authorReference": f"{urn}:agent"}] if inc.notes else []
    return {
        "$id": urn,
        "eidoVersion": EIDO_VERSION,
        "eidoMessageIdentifier": f"{urn}:{updated}",
        "lastUpdateTimeStamp": updated,
        "sendingSystemIdentifier": centre.domain,
        "incidentComponent": {
            "incidentTrackingIdentifier": urn,
            "incidentTypeCommonRegistryText": INCIDENT_TYPES.get(inc.category or "", "Unclassified"),
            "incidentStatusCommonRegistryText": incident_status(inc, agency, source.events),
            "incidentPriority": inc.priority, "incidentFlags": [f for f in (inc.flags or "").split(",") if f],
            "incidentCreationTimeStamp": inc.arrived_at, "incidentClosedTimeStamp": inc.closed_at,
            "locationReference": best_ref,
        },
        "callComponent": [call],
        "locationComponent": locations,
        "personComponent": [{"$id": f"{urn}:caller", "personRole": "Caller", "contactTelephoneNumber": inc.caller_number,
                             "preferredLanguage": inc.language}],
        "agencyComponent": [{"$id": f"{urn}:agency:{agency}", "agencyIdentifier": agency, "agencyRole": "Responding"},
                            {"$id": f"{urn}:centre", "agencyIdentifier": centre.domain, "agencyName": centre.name, "agencyRole": "PSAP"}],
        "agentComponent": [{"$id": f"{urn}:agent", "agentIdentifier": inc.operator, "agentRoleType": "Call taker"}] if inc.operator else [],
        "notesComponent": notes,
        "additionalDataComponent": [
            {"$id": f"{urn}:{block}", "additionalDataType": data.CONTENT_TYPES[block],
             "additionalDataByReferenceUrl": data.incident_url(centre, inc.id, block)} for block in data.BLOCKS
        ],
    }
