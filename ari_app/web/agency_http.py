"""The agencies' door: what an agency's dispatch system reads about the incidents sent to it.

Every request carries `Authorization: Bearer <the agency's token>` (generated per agency in
the secrets; `ivr112 secrets` prints them). An agency sees an incident only once the centre
has dialled it for that incident (a trunk dialled, or an operator's transfer or conference);
any other incident answers 404, the same as one that does not exist, so a token cannot
learn which incidents exist. Paths are those the trunk's INVITE points to (ivr.agency_data).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from aiohttp import web

from ari_app.service import Service
from ari_app.store import IncidentStore
from ari_app.web.keys import APP_KEY
from ivr import agency_data as data
from ivr.eido import ANSWERED, SENDING, agency_eido, sent_to
from ivr.plan import Agency
from ivr.store import Incident, IncidentEvent, now

routes = web.RouteTableDef()
log = logging.getLogger(__name__)
PREFIX = "/agency/v1/incidents"
XML_DOCUMENTS: dict[str, Callable[[data.Centre, Incident], str]] = {
    "ServiceInfo": lambda centre, inc: data.service_info(centre, inc.id, called=inc.called_number),
    "ProviderInfo": lambda centre, inc: data.provider_info(centre, inc.id),
    "Comment": lambda centre, inc: data.comment(centre, inc.id, inc.notes or ""),
}


def _service(request: web.Request) -> Service:
    return request.app[APP_KEY]


def _agency(request: web.Request) -> str:
    """The agency whose token the request carries; 401 otherwise (the token is never logged)."""
    header = request.headers.get("Authorization", "")
    token = header[len("Bearer "):] if header.startswith("Bearer ") else ""
    name = _service(request).secrets.agency_of(token) if token else None
    if name is None:
        raise web.HTTPUnauthorized(text='{"error": "an agency token is needed: Authorization: Bearer <token>"}',
                                   content_type="application/json", headers={"WWW-Authenticate": 'Bearer realm="ivr112 agency"'})
    return name


def _not_found() -> web.HTTPNotFound:
    return web.HTTPNotFound(text='{"error": "no such incident for this agency"}', content_type="application/json")


async def incident_of(service: Service, agency: str, raw: str) -> tuple[Incident, list[IncidentEvent], data.Centre, Agency | None]:
    """Incident `raw` (the path's id), if `agency` may read it: the centre sent it there; 404
    otherwise, the same as for an incident that does not exist. Shared by the agencies'
    token door and their dispatchers' page (ari_app/web/agency_page.py)."""
    if not raw.isdigit() or len(raw) > 12:
        raise _not_found()
    incident_id = int(raw)
    row = await service.store.get(incident_id)
    events = await service.store.events(incident_id) if row is not None else []
    if row is None or not sent_to(agency, row, events):
        log.info("agency %s asked for incident %s: not sent to it", agency, raw)
        raise _not_found()
    plan = service.plans.plan_for(row.plan_id)
    return row, events, service.centre(plan), plan.agencies.get(agency)


async def sent_incidents(service: Service, agency: str, *, kinds: tuple[str, ...] = ()) -> list[tuple[Incident, list[IncidentEvent]]]:
    """The incidents sent to `agency` among the newest 200, newest first, with their events
    that send an incident to an agency or answer it, and those of `kinds` (two queries)."""

    def mine(store: IncidentStore) -> list[tuple[Incident, list[IncidentEvent]]]:
        rows = store.recent_with_events(200, (*SENDING, ANSWERED, *kinds))
        return [(inc, events) for inc, events in rows if sent_to(agency, inc, events)]

    return await service.store.run(mine)


async def _incident(request: web.Request) -> tuple[str, Incident, list[IncidentEvent], data.Centre, Agency | None]:
    """The incident of the path, if the requesting agency may read it; 404 otherwise."""
    agency = _agency(request)
    return agency, *await incident_of(_service(request), agency, request.match_info["id"])


@routes.get(PREFIX)
async def incidents(request: web.Request) -> web.Response:
    """The incidents sent to this agency, newest first: id, URN, times, where to read each."""
    agency = _agency(request)
    service = _service(request)
    rows = await sent_incidents(service, agency)
    out = []
    for inc, _events in rows:
        centre = service.centre(service.plans.plan_for(inc.plan_id))
        out.append({"id": inc.id, "urn": data.incident_urn(inc.id, centre.domain), "arrived_at": inc.arrived_at,
                    "ended_at": inc.ended_at, "url": data.incident_url(centre, inc.id)})
    return web.json_response(out)


@routes.get(PREFIX + "/{id}")
async def incident_eido(request: web.Request) -> web.Response:
    """The incident as an EIDO (NENA-STA-021), as it is now."""
    agency, row, _events, centre, plan_agency = await _incident(request)
    source = await _service(request).store.run(lambda s: s.eido_source(row.id))
    if source is None:
        raise _not_found()
    share = plan_agency is not None and plan_agency.share_recordings
    body = agency_eido(source, centre=centre, agency=agency, share_recordings=share)
    return web.json_response(body, content_type="application/emergency.eido+json")


@routes.get(PREFIX + "/{id}/location")
async def location(request: web.Request) -> web.Response:
    """The caller's best position as PIDF-LO: what a `Geolocation:` reference points to (RFC 6442)."""
    _agency_name, row, _events, centre, _a = await _incident(request)
    locations = await _service(request).store.run(lambda s: s.locations(row.id))
    body = data.pidf_lo(data.best_position(locations), entity=data.incident_urn(row.id, centre.domain), when=now())
    return web.Response(text=body, content_type="application/pidf+xml")


@routes.get(PREFIX + "/{id}/{block}")
async def additional_data(request: web.Request) -> web.Response:
    """An RFC 7852 block the INVITE's Call-Info points to (ServiceInfo, ProviderInfo, Comment)."""
    block = request.match_info["block"]
    if block not in XML_DOCUMENTS:
        raise web.HTTPNotFound(text='{"error": "no such document"}', content_type="application/json")
    _agency_name, row, _events, centre, _a = await _incident(request)
    return web.Response(text=XML_DOCUMENTS[block](centre, row), content_type=data.CONTENT_TYPES[block])


@routes.get(PREFIX + "/{id}/recordings/{rec}")
async def recording(request: web.Request) -> web.StreamResponse:
    """A recording of the call, only for an agency whose plan entry shares recordings."""
    _agency_name, row, _events, _centre, plan_agency = await _incident(request)
    return await shared_recording(_service(request), row, plan_agency, request.match_info["rec"])


async def shared_recording(service: Service, row: Incident, plan_agency: Agency | None, rec_id: str) -> web.FileResponse:
    """A recording of an incident sent to the agency, only when its plan entry shares recordings (403 otherwise)."""
    if plan_agency is None or not plan_agency.share_recordings:
        raise web.HTTPForbidden(text='{"error": "recordings are not shared with this agency (share_recordings)"}',
                                content_type="application/json")
    found = next((r for r in await service.store.run(lambda s: s.recordings(row.id)) if str(r.id) == rec_id), None)
    path = service.layout.host(found.path) if found is not None else None
    if path is None or not path.exists():
        raise web.HTTPNotFound(text='{"error": "no such recording"}', content_type="application/json")
    return web.FileResponse(path, headers={"Content-Type": "audio/wav"})
