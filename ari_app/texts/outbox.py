"""The replies' outbox: every reply is a row in the store before anyone tries to send it;
one task delivers the due rows, by SIP MESSAGE through ARI or by SMS through the carrier's
gateway, and on a failure writes when to try again (doubling, capped). A reply is marked sent
only once the door took it, so an app restart or a gateway that is down loses none.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import aiohttp

from ari_app.ari.errors import AriError
from ari_app.storage import AsyncStore, StoreUnavailable
from ari_app.store.texts import OutboxItem
from ari_app.texts.rounds import Rounds
from ivr.settings import Settings
from ivr.texts import retry_after

log = logging.getLogger(__name__)

Sender = Callable[[OutboxItem], Awaitable[None]]


class DeliveryFailed(Exception):
    """The door did not take the reply; the text says why, for the log and the console."""


class Outbox(Rounds):
    task_name = "ivr112-text-outbox"

    def __init__(self, settings: Settings, store: AsyncStore, *, send_sip: Sender) -> None:
        super().__init__(settings.text_retry_s)
        self.settings = settings
        self.store = store
        self.send_sip = send_sip
        self._session: aiohttp.ClientSession | None = None

    async def stop(self) -> None:
        await super().stop()
        if self._session is not None:
            await self._session.close()

    async def round(self) -> object:
        return await self.deliver_due()

    def failed(self, exc: Exception) -> None:
        if isinstance(exc, StoreUnavailable):
            log.error("text outbox cannot read the store (%s); replies wait", exc)
        else:
            log.error("text outbox round failed: %r", exc)

    async def deliver_due(self) -> int:
        """Try every due reply once; returns how many were delivered."""
        due: list[OutboxItem] = await self.store.run(lambda s: s.due_replies())
        delivered = 0
        for item in due:
            try:
                await (self.send_sip(item) if item.door == "sip" else self._send_sms(item))
            except (DeliveryFailed, AriError, aiohttp.ClientError, TimeoutError) as exc:
                wait = retry_after(item.attempts + 1, first_s=self.settings.text_retry_s, longest_s=self.settings.text_retry_max_s)
                at = (datetime.now(UTC) + timedelta(seconds=wait)).isoformat(timespec="milliseconds")
                why = str(exc) or type(exc).__name__
                log.warning("reply %d to %s (incident %d) not delivered by %s, try %d: %s; again in %.0f s",
                            item.message_id, item.address, item.incident_id, item.door, item.attempts + 1, why, wait)
                await self._failed(item.id, why, at)
                continue
            await self._sent(item.id)
            delivered += 1
            log.info("reply %d delivered to %s by %s (incident %d)", item.message_id, item.address, item.door, item.incident_id)
        return delivered

    async def _failed(self, outbox_id: int, why: str, at: str) -> None:
        await self.store.run(lambda s: s.reply_failed(outbox_id, error=why, next_at=at))

    async def _sent(self, outbox_id: int) -> None:
        await self.store.run(lambda s: s.reply_sent(outbox_id))

    async def _send_sms(self, item: OutboxItem) -> None:
        """POST the reply to the carrier's SMS gateway: form fields to, from and text; 2xx is taken."""
        url = self.settings.sms_gateway_url
        if not url:
            raise DeliveryFailed("no SMS gateway configured (sms_gateway_url)")
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.settings.text_retry_s))
        headers = {"Authorization": f"Bearer {self.settings.sms_gateway_token}"} if self.settings.sms_gateway_token else {}
        form = {"to": item.address, "from": self.settings.text_from, "text": item.body, "id": str(item.message_id)}
        async with self._session.post(url, data=form, headers=headers) as response:
            if response.status >= 300:
                raise DeliveryFailed(f"gateway answered {response.status} {response.reason}")
