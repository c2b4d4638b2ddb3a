"""The console page, its static files, what it draws (plan, boundaries) and its live stream."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from ari_app.asterisk import webrtc
from ari_app.web.api.common import error, scoped, service_of
from ari_app.web.scope import stream_shape

routes = web.RouteTableDef()

STATIC = Path(__file__).parent.parent / "static"  # ari_app/web/static


@routes.get("/api/stream")
async def stream(request: web.Request) -> web.StreamResponse:
    """Server-sent events: operators' states and incident steps, as they happen (of the
    plans the console's user sees)."""
    _, scope = scoped(request)
    service = service_of(request)
    queues = {p.asterisk_queue(q): p.id for p in service.plans.current.plans for q in p.queues}
    return await service.hub.stream(request, stream_shape(scope, service.settings, queues))


def content_policy(request: web.Request) -> str:
    """Everything from the app itself; the browser phone's WebSocket (Asterisk) besides."""
    phone = webrtc.ws_url(service_of(request).settings) if webrtc.enabled(service_of(request).settings) else ""
    return f"default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self' {phone}; media-src 'self'"


@routes.get("/")
async def console_page(request: web.Request) -> web.FileResponse:
    """The operators' and supervisors' console: everything served from here, nothing from a CDN."""
    return web.FileResponse(STATIC / "index.html", headers={"Content-Security-Policy": content_policy(request), "Cache-Control": "no-cache"})


@routes.get("/static/{name:[a-z0-9_.-]+}")
async def console_static(request: web.Request) -> web.FileResponse:
    path = STATIC / request.match_info["name"]
    if not path.is_file():
        raise error(web.HTTPNotFound, "no such file")
    return web.FileResponse(path, headers={"Content-Security-Policy": content_policy(request), "Cache-Control": "no-cache"})


@routes.get("/api/plan")
async def plan_summary(request: web.Request) -> web.Response:
    """The asker's plan (their regency's; the default plan for a provincial one) as the
    console needs it: agencies (for transfer buttons) and numbers."""
    _, scope = scoped(request)
    plan = service_of(request).plans.plan_for(scope.plan)
    return web.json_response({
        "id": plan.id, "name": plan.name, "numbers": list(plan.numbers),
        "agencies": [{"name": a.name, "label": a.label} for a in plan.agencies.values()],
    })


@routes.get("/api/boundaries")
async def boundaries(request: web.Request) -> web.Response:
    """The asker's plan's kecamatan GeoJSON (the default plan's for a provincial one or an
    agency): the console's map, drawn locally (no tiles); agencies' pages draw it too."""
    _, scope = scoped(request, agency=None)
    service = service_of(request)
    plan = service.plans.plan_for(scope.plan)
    path = plan.location.boundaries_path(plan.source)
    if path is None or not path.exists():
        raise error(web.HTTPNotFound, "the plan names no kecamatan boundaries")
    return web.Response(body=path.read_bytes(), content_type="application/json")
