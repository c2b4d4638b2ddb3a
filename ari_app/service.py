"""The running app: one place that starts the store, the ARI client, the channel
dispatcher and the web side, and stops them in reverse order (aiohttp cleanup_ctx).

It also takes over calls found in Stasis after every (re)connect: a call left in
silence while the app was away goes straight to the operators.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from ari_app.ari import events as ev
from ari_app.ari.client import AriClient
from ari_app.ari.dispatch import ChannelDispatcher
from ari_app.ari.errors import AriError
from ari_app.asterisk.layout import Layout
from ari_app.asterisk.render import ARI_USER
from ari_app.controller import CallController
from ari_app.storage import AsyncStore
from ivr.plan import Plan
from ivr.secrets import Secrets
from ivr.settings import Settings

log = logging.getLogger(__name__)

APP_KEY: web.AppKey[Service] = web.AppKey("ivr112_service")


@dataclass
class PlanRegistry:
    """The plans being served, by id; the first is the default."""

    plans: dict[str, Plan] = field(default_factory=dict)

    def plan_for(self, plan_id: str) -> Plan:
        plan = self.plans.get(plan_id)
        if plan is None:
            plan = next(iter(self.plans.values()))
            log.warning("no plan with id %r; serving the call with plan %r", plan_id, plan.id)
        return plan


class Service:
    def __init__(self, settings: Settings, secrets: Secrets, plan: Plan) -> None:
        self.settings = settings
        self.secrets = secrets
        self.plans = PlanRegistry({plan.id: plan})
        self.layout = Layout(settings.root_path, settings.instance)
        self.store = AsyncStore(settings.data_path)
        self.ari = AriClient(
            base_url=f"http://{settings.ari_host}:{settings.ari_port}",
            username=ARI_USER,
            password=secrets.ari_password,
            app=settings.app_name,
            request_timeout=settings.ari_request_timeout,
            reconnect_min=settings.ari_reconnect_min,
            reconnect_max=settings.ari_reconnect_max,
        )
        self.controllers: dict[str, CallController] = {}
        self.dispatcher = ChannelDispatcher(self._controller, on_error=self._on_error, on_other=self._on_other)
        self._events_task: asyncio.Task[None] | None = None

    # Channel consumers ------------------------------------------------------------------

    def _controller(self, channel_id: str) -> CallController:
        controller = CallController(
            channel_id, ari=self.ari, store=self.store, plans=self.plans, layout=self.layout, post=self._post
        )
        self.controllers[channel_id] = controller
        return controller

    def _observer(self, channel_id: str) -> CallController:
        """A controller for a call already past the app (found after a restart)."""
        controller = CallController(
            channel_id, ari=self.ari, store=self.store, plans=self.plans, layout=self.layout, post=self._post
        )
        controller.observe_only()
        return controller

    def _post(self, event: Any) -> None:
        task = asyncio.get_running_loop().create_task(self.dispatcher.dispatch(event))
        task.add_done_callback(lambda t: t.exception() if not t.cancelled() else None)

    async def _on_error(self, channel_id: str, exc: Exception) -> None:
        controller = self.controllers.get(channel_id)
        if controller is not None:
            await controller.fail(exc)

    async def _on_other(self, event: Any) -> None:
        """Events outside a channel worker; after StasisEnd only a call's end matters."""
        if isinstance(event, ev.ChannelDestroyed) and event.channel_id:
            controller = self.controllers.pop(event.channel_id, None)
            if controller is not None:
                await controller.handle(event)
        elif isinstance(event, ev.ApplicationReplaced):
            log.error("another program connected as ARI application %r; this app no longer receives calls", self.ari.app)

    async def _on_event(self, event: Any) -> None:
        await self.dispatcher.dispatch(event)

    async def _on_connect(self) -> None:
        """Take over what happened while the WebSocket was down."""
        try:
            info = await self.ari.application()
        except AriError as exc:
            log.error("could not list the channels in Stasis after connecting: %s", exc)
            return
        plan = next(iter(self.plans.plans.values()))
        for channel_id in info.get("channel_ids", []):
            controller = self.controllers.get(channel_id)
            if controller is not None:
                await controller.resync()
                continue
            try:
                raw = await self.ari.request("GET", f"/channels/{channel_id}", channel_id=channel_id)
            except AriError:
                continue
            if not isinstance(raw, dict) or raw.get("dialplan", {}).get("app_name") != "Stasis":
                # Subscribed but already in the dialplan (queue): only its end is news.
                self.controllers[channel_id] = self._observer(channel_id)
                continue
            channel = ev.parse_channel(raw)
            controller = self._controller(channel_id)
            try:
                await controller.take_over(channel, plan)
            except Exception as exc:
                await controller.fail(exc)

    # Life cycle -------------------------------------------------------------------------

    @property
    def ari_connected(self) -> bool:
        return self.ari.is_connected

    async def start(self) -> None:
        await self.store.open()
        self._events_task = asyncio.create_task(self.ari.run(self._on_event, self._on_connect), name="ivr112-ari-events")

    async def stop(self) -> None:
        await self.ari.close()
        if self._events_task is not None:
            await asyncio.gather(self._events_task, return_exceptions=True)
        await self.dispatcher.close()
        for controller in self.controllers.values():
            await controller.close()
        await self.store.close()

    async def cleanup_ctx(self, app: web.Application) -> AsyncIterator[None]:
        await self.start()
        app[APP_KEY] = self
        yield
        await self.stop()


def build_app(service: Service) -> web.Application:
    from ari_app.web import routes

    app = web.Application()
    app.cleanup_ctx.append(service.cleanup_ctx)
    app.add_routes(routes)
    return app


async def serve(service: Service, *, stop: asyncio.Event) -> None:
    """Run the app until `stop` is set; waits for ARI to connect before saying it is ready."""
    app = build_app(service)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, service.settings.http_host, service.settings.http_port)
    try:
        await site.start()
        try:
            await service.ari.wait_connected(service.settings.asterisk_boot_timeout)
            log.info(
                "ivr112 ready: ARI app %r connected, HTTP on http://%s:%d, plan %r",
                service.settings.app_name, service.settings.http_host, service.settings.http_port,
                next(iter(service.plans.plans)),
            )
        except AriError as exc:
            log.error("%s; calls go to the fallback dialplan until it connects", exc)
        await stop.wait()
    finally:
        await runner.cleanup()
