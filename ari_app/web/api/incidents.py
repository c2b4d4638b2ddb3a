"""Incidents: the list, one with its events, locations and recordings, and what operators do
with one (classify, close, transfer) or with a number (lift its prank flag).
"""

from __future__ import annotations

import dataclasses

from aiohttp import web

from ari_app.operators.desk import DeskError
from ari_app.store import IncidentStore
from ari_app.web.api.common import error, incident_seen, incident_to_change, read_form, row_id, scoped, service_of, who
from ari_app.web.console_auth import SUPERVISOR
from ivr import classify
from ivr.store import now

routes = web.RouteTableDef()


@routes.get("/api/incidents")
async def incidents(request: web.Request) -> web.Response:
    """The newest incidents (?limit=, ?number=) of the plans the asker sees."""
    _, scope = scoped(request)
    try:
        limit = min(500, max(1, int(request.query.get("limit", "50"))))
    except ValueError:
        raise web.HTTPBadRequest(text='{"error": "limit must be a whole number"}', content_type="application/json") from None
    number = request.query.get("number", "")
    if number or not scope.provincial:
        rows = await service_of(request).store.run(
            lambda s: [i for i in s.recent(500) if scope.sees(i.plan_id) and (not number or i.caller_number == number)][:limit])
    else:
        rows = await service_of(request).store.recent(limit)
    return web.json_response([dataclasses.asdict(r) for r in rows])


@routes.get("/api/incidents/{id}")
async def incident(request: web.Request) -> web.Response:
    _, scope = scoped(request)
    try:
        incident_id = row_id(request.match_info["id"])
    except ValueError:
        raise web.HTTPBadRequest(text='{"error": "incident id must be a number"}', content_type="application/json") from None
    store = service_of(request).store
    row = await store.get(incident_id)
    if row is None or not scope.sees(row.plan_id):
        raise web.HTTPNotFound(text='{"error": "no such incident"}', content_type="application/json")
    events = await store.events(incident_id)
    locations = await store.run(lambda s: s.locations(incident_id))
    recordings = await store.run(lambda s: s.recordings(incident_id))
    return web.json_response(
        {
            **dataclasses.asdict(row),
            "events": [dataclasses.asdict(e) for e in events],
            "locations": [dataclasses.asdict(loc) for loc in locations],
            "recordings": [
                {**dataclasses.asdict(r), "url": f"/api/incidents/{incident_id}/recordings/{r.id}.wav"} for r in recordings
            ],
        }
    )


@routes.get("/api/incidents/{id}/recordings/{rec}.wav")
async def recording(request: web.Request) -> web.StreamResponse:
    """A recording of the call, for the operator to play back."""
    _, scope = scoped(request)
    service = service_of(request)
    try:
        incident_id, rec_id = row_id(request.match_info["id"]), row_id(request.match_info["rec"])
    except ValueError:
        raise web.HTTPBadRequest(text='{"error": "ids are numbers"}', content_type="application/json") from None
    await incident_seen(request, scope, incident_id)
    recordings = await service.store.run(lambda s: s.recordings(incident_id))
    found = next((r for r in recordings if r.id == rec_id), None)
    if found is None:
        raise web.HTTPNotFound(text='{"error": "no such recording"}', content_type="application/json")
    path = service.layout.host(found.path)
    if not path.exists():
        raise web.HTTPGone(text='{"error": "the recording file is gone (retention, or not written yet)"}', content_type="application/json")
    return web.FileResponse(path, headers={"Content-Type": "audio/wav"})


@routes.post("/api/incidents/{id}/classify")
async def classify_incident(request: web.Request) -> web.Response:
    """What the call was (form: category = emergency|information|prank|ghost, operator, notes)."""
    me, incident_id = await incident_to_change(request)
    form = await read_form(request)
    category, notes = form.get("category", ""), form.get("notes", "")
    by = form.get("operator", "") if me.via == "bearer" else me.name
    if not by:
        raise error(web.HTTPBadRequest, "say who classifies: operator=NAME")
    try:
        await service_of(request).store.run(lambda s: classify.classify(s, incident_id, category, by=by, notes=notes))
    except classify.ClassifyError as exc:
        raise error(web.HTTPBadRequest, str(exc)) from None
    service_of(request).incident_changed(incident_id, "classified", {"category": category, "by": by})
    return web.json_response({"ok": True, "incident_id": incident_id, "category": category})


@routes.post("/api/incidents/{id}/close")
async def close_incident(request: web.Request) -> web.Response:
    """The operator is done with the incident (form: notes)."""
    me, incident_id = await incident_to_change(request)
    notes = (await read_form(request)).get("notes", "")[:2000]

    def close(s: IncidentStore) -> bool:
        if s.get(incident_id) is None:
            return False
        s.update(incident_id, closed_at=now(), **({"notes": notes} if notes else {}))
        s.add_event(incident_id, "closed", {"by": me.name})
        return True

    if not await service_of(request).store.run(close):
        raise error(web.HTTPNotFound, "no such incident")
    service_of(request).incident_changed(incident_id, "closed", {"by": me.name})
    return web.json_response({"ok": True, "incident_id": incident_id})


@routes.post("/api/incidents/{id}/transfer")
async def transfer(request: web.Request) -> web.Response:
    """Send the caller to an agency (form: agency, mode = blind|conference)."""
    _, incident_id = await incident_to_change(request)
    form = await read_form(request)
    try:
        exten = await service_of(request).transfer(incident_id, form.get("agency", ""), mode=form.get("mode", "blind"))
    except DeskError as exc:
        raise error(web.HTTPConflict, str(exc)) from None
    return web.json_response({"ok": True, "incident_id": incident_id, "to": exten})


@routes.post("/api/numbers/{number}/clear")
async def clear_number(request: web.Request) -> web.Response:
    """A supervisor lifts a number's prank flag (form: by)."""
    me = who(request, role=SUPERVISOR, changes=True)
    number = request.match_info["number"]
    by = ((await read_form(request)).get("by", "") or "supervisor") if me.via == "bearer" else me.name
    await service_of(request).store.run(lambda s: classify.clear(s, number, by=by))
    return web.json_response({"ok": True, "number": number})
