"""The browser phone's account for the page: the WebSocket to register on and the operator's
generated credentials. Only the operator's own session gets them; the page keeps them in
memory and never shows them (an operator has nothing to type, nothing to write down).
"""

from __future__ import annotations

from aiohttp import web

from ari_app.asterisk import webrtc
from ari_app.web.console_auth import OPERATOR
from ari_app.web.keys import APP_KEY, SESSIONS_KEY
from ivr.operators import web_endpoint

routes = web.RouteTableDef()


@routes.get("/api/phone")
async def phone_account(request: web.Request) -> web.Response:
    """{enabled: false} for supervisors and with browser phones off; else the account."""
    me = request.app[SESSIONS_KEY].who(request)
    service = request.app[APP_KEY]
    settings = service.settings
    names = {op.name for op in settings.operators}
    if me.role != OPERATOR or me.name not in names or not webrtc.enabled(settings):
        return web.json_response({"enabled": False}, headers={"Cache-Control": "no-store"})
    user = web_endpoint(me.name)
    label = next((op.full_name for op in settings.operators if op.name == me.name), "") or me.name
    return web.json_response({
        "enabled": True, "ws_url": webrtc.ws_url(settings), "uri": f"sip:{user}@{webrtc.host(settings)}", "user": user,
        "password": service.secrets.webrtc_password(me.name), "display_name": label, "register_expires": webrtc.REGISTER_EXPIRY,
    }, headers={"Cache-Control": "no-store"})

