"""The web side's two applications, their life tied to the service's, and serving them.

The console's application starts and stops the service (aiohttp's cleanup_ctx), so every
task and connection the service starts has its stop; the AML door is a second listener
(HTTPS) sharing the service and the rate limit. Neither the service nor the call code
imports this package: it depends on them, not the other way round.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable

from aiohttp import web

from ari_app.ari.errors import AriError
from ari_app.service import Service
from ari_app.storage import StoreUnavailable
from ari_app.web import agency_http, aml_door, aml_http
from ari_app.web import api as http
from ari_app.web.aml_door import AmlDoor
from ari_app.web.console_auth import Sessions
from ari_app.web.keys import APP_KEY, SESSIONS_KEY
from ivr.errors import ConfigError

log = logging.getLogger(__name__)


def service_ctx(service: Service) -> Callable[[web.Application], AsyncIterator[None]]:
    """The service's start and stop as a cleanup_ctx entry of the console's application."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        await service.start()
        app[APP_KEY] = service
        sessions = app[SESSIONS_KEY] = Sessions(service.secrets.console_secret)
        try:
            sessions.restore(await service.store.run(lambda s: s.sessions(now_epoch=time.time())))
        except StoreUnavailable as exc:  # calls first: the console logs in again later
            log.error("console sessions not restored: %s", exc)
        yield
        await service.stop()

    return ctx


def build_apps(service: Service) -> tuple[web.Application, web.Application]:
    """The console's application (it starts and stops the service) and the AML door's."""
    limiter = aml_http.RateLimiter(service.settings.aml_rate_per_minute)
    app = web.Application()
    app.cleanup_ctx.append(service_ctx(service))
    app[aml_http.LIMITER_KEY] = limiter
    app.add_routes(http.routes)
    app.add_routes(aml_http.routes)
    app.add_routes(agency_http.routes)
    return app, aml_door.build_door_app(service, limiter)


async def serve(service: Service, *, door: AmlDoor, stop: asyncio.Event, reload: asyncio.Event | None = None) -> None:
    """Run the app until `stop` is set; `reload` set (SIGHUP) reloads the plans."""
    settings = service.settings
    app, door_app = build_apps(service)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    door_runner = web.AppRunner(door_app, access_log=None)
    reloader: asyncio.Task[None] | None = None
    try:
        await door_runner.setup()
        await _listen(web.TCPSite(runner, settings.http_host, settings.http_port), "http")
        await _listen(web.TCPSite(door_runner, settings.aml_host, settings.aml_port, ssl_context=door.context), "aml")
        if reload is not None:
            reloader = asyncio.create_task(_reload_on(reload, service), name="ivr112-sighup")
        try:
            await service.ari.wait_connected(settings.asterisk_boot_timeout)
            log.info(
                "ivr112 ready: ARI app %r connected, HTTP on http://%s:%d, AML door on %s, plans %s",
                settings.app_name, settings.http_host, settings.http_port, door.url, ", ".join(service.plans.ids),
            )
        except AriError as exc:
            log.error("%s; calls go to the fallback dialplan until it connects", exc)
        await stop.wait()
    finally:
        if reloader is not None:
            reloader.cancel()
            await asyncio.gather(reloader, return_exceptions=True)
        await door_runner.cleanup()
        await runner.cleanup()


async def _listen(site: web.TCPSite, setting: str) -> None:
    """Start a listener; a port already taken or an address not on this machine is a setting to change."""
    try:
        await site.start()
    except OSError as exc:
        raise ConfigError(f"cannot listen on {site.name} ({exc.strerror}); change {setting}_host / {setting}_port") from None


async def _reload_on(flag: asyncio.Event, service: Service) -> None:
    while True:
        await flag.wait()
        flag.clear()
        await service.reload()
