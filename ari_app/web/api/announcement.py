"""The major-incident message: every new caller hears it after the greeting while it is on."""

from __future__ import annotations

import asyncio
import dataclasses

from aiohttp import web

from ari_app.web.api.common import error, read_form, service_of, who
from ari_app.web.console_auth import SUPERVISOR

routes = web.RouteTableDef()


@routes.get("/api/announcement")
async def announcement_get(request: web.Request) -> web.Response:
    who(request)
    current = service_of(request).announcements.current
    return web.json_response({"on": current is not None, **(dataclasses.asdict(current) if current else {})})


@routes.post("/api/announcement")
async def announcement_set(request: web.Request) -> web.Response:
    """Supervisors: form text_id (and text_en): every new caller hears it after the greeting."""
    me = who(request, role=SUPERVISOR, changes=True)
    form = await read_form(request)
    service = service_of(request)
    texts = {"id": form.get("text_id", ""), "en": form.get("text_en", "")}
    loop = asyncio.get_running_loop()
    try:
        current = await loop.run_in_executor(None, lambda: service.announcements.set(texts, by=me.name))
    except ValueError as exc:
        raise error(web.HTTPBadRequest, str(exc)) from None
    service.hub.publish("announcement", {"on": True, "texts": current.texts, "set_by": me.name})
    return web.json_response({"ok": True, "on": True, "texts": current.texts})


@routes.delete("/api/announcement")
async def announcement_clear(request: web.Request) -> web.Response:
    me = who(request, role=SUPERVISOR, changes=True)
    service = service_of(request)
    service.announcements.clear(by=me.name)
    service.hub.publish("announcement", {"on": False, "set_by": me.name})
    return web.json_response({"ok": True, "on": False})
