"""The keys under which the web applications hold what their handlers need."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from ari_app.web.console_auth import Sessions
from ari_app.web.login_limits import LoginLimits
from ari_app.web.password_checks import PasswordChecks

if TYPE_CHECKING:
    from ari_app.service import Service

APP_KEY: web.AppKey[Service] = web.AppKey("ivr112_service")
SESSIONS_KEY: web.AppKey[Sessions] = web.AppKey("ivr112_console_sessions", Sessions)
LIMITS_KEY: web.AppKey[LoginLimits] = web.AppKey("ivr112_login_limits", LoginLimits)
CHECKS_KEY: web.AppKey[PasswordChecks] = web.AppKey("ivr112_password_checks", PasswordChecks)
CONSOLE_URL_KEY: web.AppKey[str] = web.AppKey("ivr112_console_url", str)
