"""The keys under which the web applications hold what their handlers need."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from ari_app.web.console_auth import Sessions

if TYPE_CHECKING:
    from ari_app.service import Service

APP_KEY: web.AppKey[Service] = web.AppKey("ivr112_service")
SESSIONS_KEY: web.AppKey[Sessions] = web.AppKey("ivr112_console_sessions", Sessions)
