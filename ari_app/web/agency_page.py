"""An agency dispatcher's page (docs/agencies.md): a console account of role `agency:<name>`
(`ivr112 console password NAME --agency police`) sees, live, only the incidents the centre
sent to its agency (dialled, transferred or conferenced there): the caller's positions,
the operators' notes, the status, recordings only when the plan shares them; and it can
acknowledge ("Unit diberangkatkan"), an event on the incident the 112 operator's page shows.

Every door here asks for an agency session (console_auth: `who(..., agency=True)`), and
every other door of the console refuses one. An incident not sent to the agency answers
404, as one that does not exist (the same check as the agencies' token door).
"""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web

from ari_app.live import keeping
from ari_app.service import Service
from ari_app.web.agency_http import incident_of, sent_incidents, shared_recording
from ari_app.web.api.common import error, read_form, service_of, who
from ari_app.web.api.console import STATIC, content_policy
from ivr.eido import SENDING, agency_eido, incident_status
from ivr.store import Incident, IncidentEvent

routes = web.RouteTableDef()
log = logging.getLogger(__name__)

ACK = "agency_ack"  # the incident event of an agency's acknowledgement
NOTE_MAX = 200


def _me(request: web.Request, *, changes: bool = False) -> tuple[str, str]:
    """The dispatcher's name and agency; 401/403 for anyone else."""
    principal = who(request, agency=True, changes=changes)
    return principal.name, principal.agency or ""


def _summary(incident: Incident, events: list[IncidentEvent], agency: str) -> dict[str, Any]:
    acks = [{"at": e.at, "by": e.detail.get("by", ""), "note": e.detail.get("note", "")}
            for e in events if e.kind == ACK and e.detail.get("agency") == agency]
    return {"id": incident.id, "arrived_at": incident.arrived_at, "ended_at": incident.ended_at,
            "closed_at": incident.closed_at, "caller_number": incident.caller_number, "priority": incident.priority,
            "category": incident.category, "status": incident_status(incident, agency, events), "acks": acks}


@routes.get("/agency")
async def page(request: web.Request) -> web.FileResponse:
    """The dispatchers' page (it logs in through the console's own login)."""
    return web.FileResponse(STATIC / "agency.html", headers={"Content-Security-Policy": content_policy(request), "Cache-Control": "no-cache"})


@routes.get("/api/agency/incidents")
async def incidents(request: web.Request) -> web.Response:
    """The incidents sent to my agency, newest first."""
    _name, agency = _me(request)
    rows = await sent_incidents(service_of(request), agency, kinds=(ACK,))
    return web.json_response([_summary(inc, events, agency) for inc, events in rows])


@routes.get("/api/agency/incidents/{id}")
async def incident(request: web.Request) -> web.Response:
    """One incident sent to my agency: its summary, its EIDO as my agency reads it, and its
    recordings when the plan shares them."""
    _name, agency = _me(request)
    service = service_of(request)
    row, events, centre, plan_agency = await incident_of(service, agency, request.match_info["id"])
    source = await service.store.run(lambda s: s.eido_source(row.id))
    if source is None:
        raise error(web.HTTPNotFound, "no such incident for this agency")
    share = plan_agency is not None and plan_agency.share_recordings
    recordings = [{"id": r.id, "kind": r.kind, "url": f"/api/agency/incidents/{row.id}/recordings/{r.id}.wav"}
                  for r in source.recordings] if share else []
    return web.json_response({**_summary(row, events, agency), "recordings": recordings,
                              "eido": agency_eido(source, centre=centre, agency=agency, share_recordings=share)})


@routes.post("/api/agency/incidents/{id}/ack")
async def acknowledge(request: web.Request) -> web.Response:
    """My agency has sent a unit (form: note, optional); the 112 operator's page shows it."""
    name, agency = _me(request, changes=True)
    service = service_of(request)
    row, _events, _centre, _agency = await incident_of(service, agency, request.match_info["id"])
    note = (await read_form(request)).get("note", "").strip()[:NOTE_MAX]
    detail = {"agency": agency, "by": name, **({"note": note} if note else {})}
    await service.store.run(lambda s: s.add_event(row.id, ACK, detail))
    service.incident_changed(row.id, ACK, detail)
    log.info("incident %d: %s acknowledged by %s (%s)", row.id, agency, name, "unit dispatched")
    return web.json_response({"ok": True, "incident_id": row.id})


@routes.get("/api/agency/incidents/{id}/recordings/{rec}.wav")
async def recording(request: web.Request) -> web.StreamResponse:
    _name, agency = _me(request)
    service = service_of(request)
    row, _events, _centre, plan_agency = await incident_of(service, agency, request.match_info["id"])
    return await shared_recording(service, row, plan_agency, request.match_info["rec"])


@routes.get("/api/agency/stream")
async def stream(request: web.Request) -> web.StreamResponse:
    """Server-sent events of my agency's incidents only: the page reads the incident again on each."""
    _name, agency = _me(request)
    service: Service = service_of(request)
    mine = {inc.id for inc, _events in await sent_incidents(service, agency)}
    return await service.hub.stream(request, keeping(AgencyFilter(agency, mine)))


class AgencyFilter:
    """Which live messages an agency's page gets: changes of the incidents sent to it (those
    it had when the stream opened, and each one sent to it since), nothing else."""

    def __init__(self, agency: str, mine: set[int]) -> None:
        self.agency = agency
        self.mine = mine

    def __call__(self, kind: str, data: dict[str, Any]) -> bool:
        if kind != "incident":
            return False
        detail = data.get("detail") or {}
        if data.get("kind") in SENDING and detail.get("agency") == self.agency:
            self.mine.add(data.get("id", 0))
        return data.get("id") in self.mine
