"""What travels to an agency with a call: the caller's best position (RFC 6442, by value
through Asterisk's outgoing geolocation, or by reference to our own URL), the RFC 7852
Call-Info, and the documents served behind those references (PIDF-LO, ServiceInfo,
ProviderInfo, Comment). Pure: no sockets, no Asterisk; the call code carries it out.

By value, Asterisk builds the multipart body and the `Geolocation: <cid:...>` header
itself from a GEOLOC_PROFILE written on the trunk leg (geolocation.conf's `ivr112-agency`
profile on every trunk endpoint); a location_info holding `${...}` is refused at load by
Asterisk 22, so the position is written per leg, not templated in the config.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from xml.sax.saxutils import escape, quoteattr

from ivr.settings import Settings
from ivr.store import StoredLocation

LOCATION_MODES = ("value", "reference", "none")
# Asterisk's GEOLOC_PROFILE(method) takes only these words (RFC 4119 method tokens).
GEOLOC_METHODS = {"gps": "GPS", "a-gps": "A-GPS", "manual": "Manual", "dhcp": "DHCP", "triangulation": "Triangulation",
                  "cell": "Cell", "wifi": "802.11", "802.11": "802.11"}
# Where our locating sources' positions come from, when the sender named no method.
SOURCE_METHODS = {"cell": "Cell", "keypad": "Manual", "aml_sms": "GPS", "aml_http": "GPS"}
PURPOSE = "EmergencyCallData"
BLOCKS = ("ServiceInfo", "ProviderInfo", "Comment")
CONTENT_TYPES = {block: f"application/{PURPOSE}.{block}+xml" for block in BLOCKS}
NS_ADDITIONAL = "urn:ietf:params:xml:ns:EmergencyCallData"
NS_OURS = "urn:ivr112:agency-data"


@dataclass(frozen=True)
class Centre:
    """Who we are, as the agencies see it: the plan's service name, the centre's domain
    (the `centre_domain` setting) and the base URL agencies read our references at."""

    name: str
    domain: str
    base_url: str


def centre_of(plan_name: str, settings: Settings) -> Centre:
    """The centre as agencies see it, for a plan served with these settings."""
    return Centre(name=plan_name, domain=settings.centre_domain, base_url=settings.agency_url)


def best_position(locations: Sequence[StoredLocation]) -> StoredLocation | None:
    """The position to send: the most precise real (not hint) report with coordinates; of
    equally precise ones, the newest. None when the call has no coordinates."""
    real = [loc for loc in locations if not loc.hint and loc.latitude is not None and loc.longitude is not None]
    if not real:
        return None
    return min(reversed(real), key=lambda loc: loc.radius_m if loc.radius_m is not None else float("inf"))


def geoloc_method(location: StoredLocation) -> str:
    """The RFC 4119 method word Asterisk accepts for this report ("" when none fits)."""
    return GEOLOC_METHODS.get(location.method.lower(), "") or SOURCE_METHODS.get(location.source, "")


def _coord(value: float | None) -> str:
    return f"{value:.6f}".rstrip("0").rstrip(".") if value is not None else ""


def geoloc_variables(location: StoredLocation) -> dict[str, str]:
    """GEOLOC_PROFILE writes for a trunk leg, in the order Asterisk needs them (the format
    before the location it checks against it): a Circle when the radius is known, else a Point."""
    pos = f"{_coord(location.latitude)} {_coord(location.longitude)}"
    if location.radius_m:
        info = f'shape=Circle, crs=2d, pos="{pos}", radius={location.radius_m:.0f}'
    else:
        info = f'shape=Point, crs=2d, pos="{pos}"'
    out = {"GEOLOC_PROFILE(format)": "GML", "GEOLOC_PROFILE(pidf_element)": "device",
           "GEOLOC_PROFILE(allow_routing_use)": "no", "GEOLOC_PROFILE(location_info)": info}
    method = geoloc_method(location)
    if method:
        out["GEOLOC_PROFILE(method)"] = method
    return out


CALL_INFO_HEADER = "Call-Info"
GEOLOCATION_HEADER = "Geolocation"
GEOLOCATION_ROUTING_HEADER = "Geolocation-Routing"
# The dialplan's pre-dial handler (ivr112-agency-leg) writes IVR112_LEG_1, _2 ... in order.
LEG_VARIABLE = "IVR112_LEG_"


def leg_variables(centre: Centre, incident_id: int, *, mode: str, best: StoredLocation | None) -> dict[str, str]:
    """The channel writes that make a trunk leg's INVITE carry the incident (docs/agencies.md):
    the RFC 7852 Call-Info, and the caller's best position by value (GEOLOC_PROFILE, from which
    Asterisk builds the PIDF-LO body) or by reference (a Geolocation header to our URL), per
    the agency's `location` mode."""
    out = {f"PJSIP_HEADER(add,{CALL_INFO_HEADER})": call_info(centre, incident_id)}
    if mode == "reference":
        out[f"PJSIP_HEADER(add,{GEOLOCATION_HEADER})"] = geolocation_reference(centre, incident_id)
        out[f"PJSIP_HEADER(add,{GEOLOCATION_ROUTING_HEADER})"] = "no"
    elif mode == "value" and best is not None:
        out.update(geoloc_variables(best))
    return out


def dialplan_leg_variables(writes: dict[str, str]) -> list[str]:
    """`leg_variables` for a leg the dialplan dials (an operator's conference): inherited
    channel variables, one write each in order, base64 so that no comma, quote or colon of a
    header is parsed on the way (AMI's Variable, Set); the pre-dial handler decodes each one
    into Set(NAME=VALUE) on the trunk's channel."""
    return [f"__{LEG_VARIABLE}{n}={base64.b64encode(f'{name}={value}'.encode()).decode()}"
            for n, (name, value) in enumerate(writes.items(), start=1)]


def incident_urn(incident_id: int, domain: str) -> str:
    """RFC 7852's incident id: urn:emergency:uid:incidentid:<id>:<domain>."""
    return f"urn:emergency:uid:incidentid:{incident_id:010d}:{domain}"


def incident_url(centre: Centre, incident_id: int, document: str = "") -> str:
    """Where an agency reads an incident (the EIDO) or one of its documents."""
    base = f"{centre.base_url.rstrip('/')}/agency/v1/incidents/{incident_id}"
    return f"{base}/{document}" if document else base


def location_url(centre: Centre, incident_id: int) -> str:
    return incident_url(centre, incident_id, "location")


def call_info(centre: Centre, incident_id: int) -> str:
    """The Call-Info header's value (RFC 7852): the incident id, then the additional data
    blocks by reference (the agency reads them with its token)."""
    parts = [f"<{incident_urn(incident_id, centre.domain)}>;purpose={PURPOSE}.IncidentId"]
    parts += [f"<{incident_url(centre, incident_id, block)}>;purpose={PURPOSE}.{block}" for block in BLOCKS]
    return ", ".join(parts)


def geolocation_reference(centre: Centre, incident_id: int) -> str:
    """The Geolocation header of a trunk marked `location: reference` (RFC 6442)."""
    return f"<{location_url(centre, incident_id)}>"


# The documents behind the references ------------------------------------------------------


def pidf_lo(location: StoredLocation | None, *, entity: str, when: str) -> str:
    """A PIDF-LO (RFC 4119, RFC 5491 device element, GML Circle or Point) of one position;
    with no position, a PIDF with an empty location-info (RFC 5491 §3.4 allows none)."""
    shape = ""
    if location is not None and location.latitude is not None:
        pos = f"<gml:pos>{_coord(location.latitude)} {_coord(location.longitude)}</gml:pos>"
        if location.radius_m:
            shape = (f'<gs:Circle srsName="urn:ogc:def:crs:EPSG::4326">{pos}'
                     f'<gs:radius uom="urn:ogc:def:uom:EPSG::9001">{location.radius_m:.0f}</gs:radius></gs:Circle>')
        else:
            shape = f'<gml:Point srsName="urn:ogc:def:crs:EPSG::4326">{pos}</gml:Point>'
    method = f"<gp:method>{escape(geoloc_method(location))}</gp:method>" if location and geoloc_method(location) else ""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:gp="urn:ietf:params:xml:ns:pidf:geopriv10" '
        'xmlns:gml="http://www.opengis.net/gml" xmlns:gs="http://www.opengis.net/pidflo/1.0" '
        f'xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model" entity={quoteattr(entity)}>'
        f'<dm:device id="caller"><gp:geopriv><gp:location-info>{shape}</gp:location-info>'
        '<gp:usage-rules><gbp:retransmission-allowed xmlns:gbp="urn:ietf:params:xml:ns:pidf:geopriv10:basicPolicy">'
        f"no</gbp:retransmission-allowed></gp:usage-rules>{method}</gp:geopriv>"
        f"<dm:timestamp>{escape(when)}</dm:timestamp></dm:device></presence>\n"
    )


def _block(block: str, data_provider: str, body: str) -> str:
    """An RFC 7852 block: root EmergencyCallData.<block> in the namespace ...:EmergencyCallData:<block>."""
    name, ns = f"{PURPOSE}.{block}", f"{NS_ADDITIONAL}:{block}"
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<{name} xmlns="{ns}">'
            f"<DataProviderReference>{escape(data_provider)}</DataProviderReference>{body}</{name}>\n")


def service_info(centre: Centre, incident_id: int, *, called: str) -> str:
    """RFC 7852 §4.3 ServiceInfo. The carrier tells us neither the caller's service
    environment nor type, so they are "unknown"; the number dialled (112 or a legacy short
    code) and the centre's service ride in our own namespace (the schema's extension point)."""
    ref = incident_urn(incident_id, centre.domain)
    return _block("ServiceInfo", ref,
                  "<ServiceEnvironment>unknown</ServiceEnvironment><ServiceType>unknown</ServiceType>"
                  "<ServiceMobility>Unknown</ServiceMobility>"
                  f'<ivr:ServiceNumber xmlns:ivr="{NS_OURS}">{escape(called)}</ivr:ServiceNumber>'
                  f'<ivr:Service xmlns:ivr="{NS_OURS}">{escape(centre.name)} (emergency)</ivr:Service>')


def provider_info(centre: Centre, incident_id: int) -> str:
    """RFC 7852 §4.1 ProviderInfo: our centre, the one handing the call over."""
    ref = incident_urn(incident_id, centre.domain)
    return _block("ProviderInfo", ref,
                  f"<DataProviderString>{escape(centre.name)}</DataProviderString>"
                  f"<ProviderID>{escape(centre.domain)}</ProviderID><ProviderIDSeries>domain</ProviderIDSeries>"
                  "<TypeOfProvider>Other</TypeOfProvider>")


def comment(centre: Centre, incident_id: int, notes: str) -> str:
    """RFC 7852 §4.6 Comment: the operators' notes on the incident, as they are now."""
    ref = incident_urn(incident_id, centre.domain)
    return _block("Comment", ref, f'<Comment xml:lang="id">{escape(notes)}</Comment>')
