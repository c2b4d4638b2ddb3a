"""Operators at the desk: their states, logging in and out, pausing, and their log."""

from __future__ import annotations

from aiohttp import web

from ari_app.operators.desk import SOFTPHONE, DeskError
from ari_app.web.api.common import error, operator_seen, read_form, scoped, service_of

routes = web.RouteTableDef()


@routes.get("/api/operators")
async def operators(request: web.Request) -> web.Response:
    """The operators of the plans the asker sees (provincial operators work them all)."""
    _, scope = scoped(request)
    service = service_of(request)
    rows = [row for row in service.desk.view() if operator_seen(request, scope, str(row["name"]))]
    return web.json_response({"ami_connected": service.desk.connected, "operators": rows})


@routes.post("/api/operators/{name}/{action:login|logout|pause|resume}")
async def operator_action(request: web.Request) -> web.Response:
    """Log an operator in to their plan's queues (every plan's for a provincial one), out, pause them (form: reason) or resume them.
    An operator acts for themselves; a supervisor for the operators of their regency."""
    me, scope = scoped(request, changes=True)
    desk = service_of(request).desk
    name, action = request.match_info["name"], request.match_info["action"]
    if not me.supervisor and me.name != name:
        raise error(web.HTTPForbidden, f"{me.name} may change only their own state, not {name}'s")
    if not operator_seen(request, scope, name):
        raise error(web.HTTPForbidden, f"{name} works another regency's calls; their supervisor (or a provincial one) may change their state")
    form = await read_form(request)
    try:
        if action == "login":
            await desk.login(name, form.get("phone", "") or SOFTPHONE)
        elif action == "logout":
            await desk.logout(name)
        elif action == "pause":
            await desk.pause(name, form.get("reason", "") or "pause")
        else:
            await desk.resume(name)
    except DeskError as exc:
        raise error(web.HTTPConflict, str(exc)) from None
    return web.json_response({"ok": True, "operator": name, "action": action})


@routes.get("/api/operators/{name}/log")
async def operator_log(request: web.Request) -> web.Response:
    _, scope = scoped(request)
    name = request.match_info["name"]
    if not operator_seen(request, scope, name):
        raise error(web.HTTPNotFound, f"no operator {name} in your regency")
    rows = await service_of(request).store.run(lambda s: s.operator_log(name))
    return web.json_response(rows)
