"""The app itself: health for supervisors and scripts, Prometheus metrics, plan reload.

`/health` tells whether the app can take calls (no caller data, no login).
"""

from __future__ import annotations

from aiohttp import web

from ari_app.metrics import CONTENT_TYPE
from ari_app.web.api.common import service_of, who
from ari_app.web.console_auth import SUPERVISOR

routes = web.RouteTableDef()


@routes.get("/health")
async def health(request: web.Request) -> web.Response:
    service = service_of(request)
    ok = service.ari_connected
    body = {
        "status": "ok" if ok and service.store.ok else "degraded",
        "ari_connected": ok,
        # "ok", or "failing: <why>; <n> writes waiting" (calls go on; writes are kept and retried)
        "store": service.store.health,
        "ami_connected": service.desk.connected,
        "ami_logins": service.desk.resyncs,
        "calls_in_app": len(service.dispatcher.active_channels()),
        "plans": service.plans.ids,
        # On a PostgreSQL store: the live feed to the other nodes, "ok" or what fails.
        "node_feed": service.node_feed.health if service.node_feed is not None else "",
        "fallback": "calls go to the operators' queue through the Asterisk dialplan" if not ok else "",
    }
    return web.json_response(body, status=200 if ok else 503)


@routes.get("/metrics")
async def metrics(request: web.Request) -> web.Response:
    """Prometheus text format; a supervisor's session or the bearer key (no caller data in it)."""
    who(request, role=SUPERVISOR)
    return web.Response(body=service_of(request).metrics.render(), headers={"Content-Type": CONTENT_TYPE})


@routes.post("/api/reload")
async def reload(request: web.Request) -> web.Response:
    who(request, role=SUPERVISOR, changes=True)
    result = await service_of(request).reload()
    body = {"ok": result.ok, "problems": list(result.problems), "plans": list(result.plans)}
    return web.json_response(body, status=200 if result.ok else 422)
