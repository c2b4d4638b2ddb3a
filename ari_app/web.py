"""The app's HTTP side: health for supervisors and scripts, and the incidents API.

`/health` tells whether the app can take calls (no caller data, no login). Everything
under `/api/` needs `Authorization: Bearer <console_secret>` from the generated secrets.
"""

from __future__ import annotations

import dataclasses
import hmac

from aiohttp import web

from ari_app.service import APP_KEY, Service

routes = web.RouteTableDef()


def _service(request: web.Request) -> Service:
    return request.app[APP_KEY]


def _authorised(request: web.Request) -> None:
    service = _service(request)
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(token.encode(), service.secrets.console_secret.encode()):
        raise web.HTTPUnauthorized(
            text='{"error": "login required: send Authorization: Bearer <console_secret> (ivr112 secrets show)"}',
            content_type="application/json",
        )


@routes.get("/health")
async def health(request: web.Request) -> web.Response:
    service = _service(request)
    ok = service.ari_connected
    body = {
        "status": "ok" if ok else "degraded",
        "ari_connected": ok,
        "calls_in_app": len(service.dispatcher.active_channels()),
        "plans": service.plans.ids,
        "fallback": "calls go to the operators' queue through the Asterisk dialplan" if not ok else "",
    }
    return web.json_response(body, status=200 if ok else 503)


@routes.get("/api/incidents")
async def incidents(request: web.Request) -> web.Response:
    _authorised(request)
    try:
        limit = min(500, max(1, int(request.query.get("limit", "50"))))
    except ValueError:
        raise web.HTTPBadRequest(text='{"error": "limit must be a whole number"}', content_type="application/json") from None
    rows = await _service(request).store.recent(limit)
    return web.json_response([dataclasses.asdict(r) for r in rows])


@routes.get("/api/incidents/{id}")
async def incident(request: web.Request) -> web.Response:
    _authorised(request)
    try:
        incident_id = int(request.match_info["id"])
    except ValueError:
        raise web.HTTPBadRequest(text='{"error": "incident id must be a number"}', content_type="application/json") from None
    store = _service(request).store
    row = await store.get(incident_id)
    if row is None:
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
    _authorised(request)
    service = _service(request)
    try:
        incident_id, rec_id = int(request.match_info["id"]), int(request.match_info["rec"])
    except ValueError:
        raise web.HTTPBadRequest(text='{"error": "ids are numbers"}', content_type="application/json") from None
    recordings = await service.store.run(lambda s: s.recordings(incident_id))
    found = next((r for r in recordings if r.id == rec_id), None)
    if found is None:
        raise web.HTTPNotFound(text='{"error": "no such recording"}', content_type="application/json")
    path = service.layout.host(found.path)
    if not path.exists():
        raise web.HTTPGone(text='{"error": "the recording file is gone (retention, or not written yet)"}', content_type="application/json")
    return web.FileResponse(path, headers={"Content-Type": "audio/wav"})


@routes.post("/api/reload")
async def reload(request: web.Request) -> web.Response:
    _authorised(request)
    result = await _service(request).reload()
    body = {"ok": result.ok, "problems": list(result.problems), "plans": list(result.plans)}
    return web.json_response(body, status=200 if result.ok else 422)
