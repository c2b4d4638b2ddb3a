"""The app's HTTP API, one module per area; `routes` gathers them all for the app.

`/health` tells whether the app can take calls (no caller data, no login). Everything
under `/api/` needs a logged-in console session or `Authorization: Bearer <console_secret>`
from the generated secrets.
"""

from __future__ import annotations

from aiohttp import web

from ari_app.web.api import announcement, callbacks, console, incidents, operators, supervision, system

routes: list[web.AbstractRouteDef] = [
    *system.routes,
    *incidents.routes,
    *operators.routes,
    *callbacks.routes,
    *console.routes,
    *supervision.routes,
    *announcement.routes,
]
