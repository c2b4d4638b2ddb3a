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
from ari_app.texts import http as texts_http
from ari_app.web import agency_http, agency_page, aml_door, aml_http, console_login, phone
from ari_app.web import api as http
from ari_app.web.aml_door import AmlDoor
from ari_app.web.console_auth import Sessions
from ari_app.web.console_door import ConsoleDoor
from ari_app.web.keys import APP_KEY, CHECKS_KEY, CONSOLE_URL_KEY, LIMITS_KEY, SESSIONS_KEY
from ari_app.web.login_limits import Limits, LoginLimits
from ari_app.web.password_checks import PasswordChecks
from ivr.errors import ConfigError

log = logging.getLogger(__name__)


def service_ctx(service: Service) -> Callable[[web.Application], AsyncIterator[None]]:
    """The console's sessions, restored from the store once the service's resources are up,
    and the service published to the handlers."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        app[APP_KEY] = service
        try:
            app[SESSIONS_KEY].restore(await service.store.run(lambda s: s.sessions(now_epoch=time.time())))
        except StoreUnavailable as exc:  # calls first: the console logs in again later
            log.error("console sessions not restored: %s", exc)
        yield
        app[CHECKS_KEY].close()

    return ctx


def _resource_ctx(life: Callable[[], AsyncIterator[None]]) -> Callable[[web.Application], AsyncIterator[None]]:
    def ctx(_app: web.Application) -> AsyncIterator[None]:
        return life()

    return ctx


# Password checks that may wait for the one hashing thread; more are answered 503 at once.
PASSWORD_CHECKS_WAITING = 4


def build_apps(service: Service, console_url: str = "") -> tuple[web.Application, web.Application]:
    """The console's application (it starts and stops the service; served on loopback and,
    when `console_url` is given, over HTTPS there) and the AML door's."""
    settings = service.settings
    limiter = aml_http.rate_limiter(settings.aml_rate_per_minute)
    app = web.Application(middlewares=[console_login.audit_and_hsts])
    # One cleanup_ctx entry per resource of the service, in its start order; aiohttp stops
    # them in reverse, each one even when a later one failed to start.
    for _name, life in service.resources():
        app.cleanup_ctx.append(_resource_ctx(life))
    app.cleanup_ctx.append(service_ctx(service))
    app[aml_http.LIMITER_KEY] = limiter
    app[SESSIONS_KEY] = sessions = Sessions(service.secrets.console_secret)
    feed = service.node_feed
    if feed is not None:  # other nodes share the store: logins and logouts are told to them
        sessions.share = lambda change: feed.send("session", change)
        feed.subscribe("session", sessions.apply)
    app[LIMITS_KEY] = LoginLimits(Limits(settings.login_failures_account, settings.login_failures_address,
                                         settings.login_lockout_minutes * 60))
    app[CHECKS_KEY] = PasswordChecks(waiting=PASSWORD_CHECKS_WAITING)
    app[CONSOLE_URL_KEY] = console_url
    app.add_routes(console_login.routes)
    app.add_routes(http.routes)
    app.add_routes(phone.routes)
    app.add_routes(aml_http.routes)
    app.add_routes(texts_http.routes)
    app.add_routes(texts_http.console_routes)
    app.add_routes(agency_http.routes)
    app.add_routes(agency_page.routes)
    door = aml_door.build_door_app(service, limiter)
    door.add_routes(texts_http.routes)  # the carriers' SMS gateways post texts to the same HTTPS door
    return app, door


async def serve(service: Service, *, door: AmlDoor, console: ConsoleDoor | None = None, stop: asyncio.Event,
                reload: asyncio.Event | None = None) -> None:
    """Run the app until `stop` is set; `reload` set (SIGHUP) reloads the plans."""
    settings = service.settings
    app, door_app = build_apps(service, console.url if console else "")
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    door_runner = web.AppRunner(door_app, access_log=None)
    reloader: asyncio.Task[None] | None = None
    try:
        await door_runner.setup()
        await _listen(web.TCPSite(runner, settings.http_host, settings.http_port), "http")
        await _listen(web.TCPSite(door_runner, settings.aml_host, settings.aml_port, ssl_context=door.context), "aml")
        if console is not None:
            await _listen(web.TCPSite(runner, settings.console_host, settings.console_port, ssl_context=console.context), "console")
        if reload is not None:
            reloader = asyncio.create_task(_reload_on(reload, service), name="ivr112-sighup")
        try:
            await service.ari.wait_connected(settings.asterisk_boot_timeout)
            log.info(
                "ivr112 ready: ARI app %r connected, HTTP on http://%s:%d, %sAML door on %s, plans %s",
                settings.app_name, settings.http_host, settings.http_port,
                f"console on {console.url}, " if console else "", door.url, ", ".join(service.plans.ids),
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
