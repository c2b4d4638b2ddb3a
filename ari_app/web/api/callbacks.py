"""The callback list, and calling a number back from an operator's softphone."""

from __future__ import annotations

import dataclasses

from aiohttp import web

from ari_app.operators.desk import DeskError
from ari_app.web.api.common import authorised, error, read_form, service_of, who
from ivr import callbacks

routes = web.RouteTableDef()


@routes.get("/api/callbacks")
async def callback_list(request: web.Request) -> web.Response:
    """The callback list: open entries (and closed ones with ?all=1), newest call first."""
    authorised(request)
    everything = request.query.get("all") == "1"
    rows = await service_of(request).store.run(lambda s: callbacks.listing(s, include_closed=everything))
    return web.json_response([dataclasses.asdict(r) for r in rows])


@routes.post("/api/callbacks/{number}/call")
async def callback_call(request: web.Request) -> web.Response:
    """Call a number back (form: operator): the operator's softphone rings first."""
    me = who(request, changes=True)
    number = request.match_info["number"]
    operator = (await read_form(request)).get("operator", "") if me.supervisor else me.name
    try:
        call = await service_of(request).place_callback(number, operator)
    except callbacks.CallbackRefused as exc:
        raise error(web.HTTPConflict, str(exc)) from None
    except DeskError as exc:
        raise error(web.HTTPConflict, str(exc)) from None
    return web.json_response({"ok": True, "number": number, "operator": operator, "channel": call.operator_channel})
