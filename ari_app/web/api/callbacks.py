"""The callback list, and calling a number back from an operator's softphone."""

from __future__ import annotations

import dataclasses

from aiohttp import web

from ari_app.operators.desk import DeskError
from ari_app.web.api.common import error, read_form, scoped, service_of
from ari_app.web.scope import Scope
from ivr import callbacks
from ivr.store import RecordStore

routes = web.RouteTableDef()


@routes.get("/api/callbacks")
async def callback_list(request: web.Request) -> web.Response:
    """The callback list: open entries (and closed ones with ?all=1), newest call first; of
    the plans the asker sees (an entry whose call is not known stays on every list: a
    callback is never hidden from everyone)."""
    _, scope = scoped(request)
    everything = request.query.get("all") == "1"
    rows = await service_of(request).store.run(
        lambda s: [r for r in callbacks.listing(s, include_closed=everything) if _seen(s, scope, r)])
    return web.json_response([dataclasses.asdict(r) for r in rows])


def _seen(store: RecordStore, scope: Scope, entry: callbacks.Callback) -> bool:
    if scope.provincial or entry.incident_id is None:
        return True
    incident = store.get(entry.incident_id)
    return incident is None or scope.sees(incident.plan_id)


@routes.post("/api/callbacks/{number}/call")
async def callback_call(request: web.Request) -> web.Response:
    """Call a number back (form: operator): the operator's softphone rings first."""
    me, scope = scoped(request, changes=True)
    number = request.match_info["number"]
    allowed = await service_of(request).store.run(lambda s: (e := callbacks.get(s, number)) is None or _seen(s, scope, e))
    if not allowed:
        raise error(web.HTTPNotFound, f"no callback for {number} in your regency")
    operator = (await read_form(request)).get("operator", "") if me.supervisor else me.name
    try:
        call = await service_of(request).place_callback(number, operator)
    except callbacks.CallbackRefused as exc:
        raise error(web.HTTPConflict, str(exc)) from None
    except DeskError as exc:
        raise error(web.HTTPConflict, str(exc)) from None
    return web.json_response({"ok": True, "number": number, "operator": operator, "channel": call.operator_channel})
