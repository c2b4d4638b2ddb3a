"""The EIDO pushed to each agency that has a `webhook` in the plan (docs/agencies.md).

Every change of an incident (a step of its call, a position, the operator's notes, its
close) marks it; one task turns each marked incident into a new EIDO version for every
agency with a webhook the incident was sent to, in the store's outbox (a change that tells
the agency nothing new adds none), then delivers: per agency, its oldest undelivered
version first, by an HTTP POST signed with the agency's secret (ivr/agency_push.py), never
following a redirect. A version is marked sent only on a 2xx; a failure (refused, timeout,
3xx, 4xx, 5xx) is logged and that agency's line waits, doubling up to
`agency_push_retry_max_s`, while other agencies go on. The outbox is in the store, so an
app restart loses nothing; at start the recent incidents are looked at again, in case a
change was marked and the app stopped before it was queued.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import aiohttp

from ari_app.plan_reload import PlanRegistry
from ari_app.storage import AsyncStore, StoreUnavailable
from ari_app.store import IncidentStore
from ari_app.store.agency_outbox import PushItem
from ivr import agency_push as push
from ivr.agency_data import Centre
from ivr.eido import agency_eido, sent_to
from ivr.plan import Agency, Plan
from ivr.secrets import Secrets
from ivr.settings import Settings
from ivr.texts import retry_after

log = logging.getLogger(__name__)

# Incidents looked at again when the app starts (changes marked before a stop).
CATCH_UP = 200


class PushFailed(Exception):
    """The agency's webhook did not take the update; the text says why."""


def _at(seconds_from_now: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds_from_now)).isoformat(timespec="milliseconds")


def _seconds_until(at: str) -> float:
    try:
        return (datetime.fromisoformat(at) - datetime.now(UTC)).total_seconds()
    except ValueError:
        return 0.0


class AgencyPush:
    def __init__(self, settings: Settings, secrets: Secrets, store: AsyncStore, plans: PlanRegistry,
                 centre: Callable[[Plan], Centre]) -> None:
        self.settings = settings
        self.secrets = secrets
        self.store = store
        self.plans = plans
        self.centre = centre
        self._dirty: set[int] = set()
        self._wake = asyncio.Event()
        self._session: aiohttp.ClientSession | None = None
        self._lines: dict[str, asyncio.Task[None]] = {}  # the agencies being delivered to now
        self._webhooks_of: object = None
        self._webhooks = False

    def has_webhooks(self) -> bool:
        """Whether an agency of the plans in force has a webhook (worked out once per plan set:
        asked at every step of every call)."""
        current = self.plans.current
        if current is not self._webhooks_of:
            self._webhooks_of = current
            self._webhooks = any(a.webhook for plan in current.plans for a in plan.agencies.values())
        return self._webhooks

    def changed(self, incident_id: int) -> None:
        """The incident changed: its agencies with a webhook get a new version if they learn something."""
        if incident_id > 0 and self.has_webhooks():
            self._dirty.add(incident_id)
            self._wake.set()

    async def run(self) -> None:
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.settings.agency_push_timeout_s))
        try:
            if self.has_webhooks():
                await self._catch_up()
            while True:
                self._wake.clear()
                wait = self.settings.agency_push_retry_max_s
                try:
                    await self._queue_marked()
                    wait = await self.deliver_due()
                except StoreUnavailable as exc:
                    log.error("agency push cannot reach the store (%s); updates wait", exc)
                except Exception as exc:  # loud, but the push keeps going
                    log.error("agency push round failed: %r", exc)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=max(0.05, wait))
        finally:
            lines = list(self._lines.values())
            for task in lines:
                task.cancel()
            await asyncio.gather(*lines, return_exceptions=True)
            await self._session.close()

    async def _catch_up(self) -> None:
        try:
            ids = await self.store.run(lambda s: [i.id for i in s.recent(CATCH_UP)])
        except StoreUnavailable as exc:
            log.error("agency push: recent incidents not looked at again (%s)", exc)
            return
        self._dirty.update(ids)

    # Into the outbox ------------------------------------------------------------------------

    async def _queue_marked(self) -> None:
        marked, self._dirty = sorted(self._dirty), set()
        for n, incident_id in enumerate(marked):
            try:
                await self.store.run(functools.partial(self._queue, incident_id=incident_id))
            except StoreUnavailable:
                self._dirty.update(marked[n:])  # tried again on the next round
                raise

    def _queue(self, s: IncidentStore, *, incident_id: int) -> None:
        """On the store's thread: a new version for each agency with a webhook this incident was sent to."""
        source = s.eido_source(incident_id)
        if source is None:
            return
        plan = self.plans.plan_for(source.incident.plan_id or "")
        centre = self.centre(plan)
        for agency in plan.agencies.values():
            if not agency.webhook or not sent_to(agency.name, source.incident, source.events):
                continue
            eido = agency_eido(source, centre=centre, agency=agency.name, share_recordings=agency.share_recordings)
            version = s.enqueue_push(agency=agency.name, plan_id=plan.id, incident_id=incident_id, eido_id=eido["$id"],
                                     digest=push.content_digest(eido), render=functools.partial(push.versioned, eido))
            if version is not None:
                log.info("EIDO of incident %d version %d queued for %s", incident_id, version, agency.name)

    # Out to the webhooks ----------------------------------------------------------------

    async def deliver_due(self) -> float:
        """Start delivering each agency's line whose oldest update is due (one task per agency,
        so a receiver that hangs until its timeout delays no other agency, nor the queueing of
        new versions); returns seconds until the next update is due."""
        heads: list[PushItem] = await self.store.run(lambda s: s.push_heads())
        later = []
        for head in heads:
            if head.agency in self._lines:
                continue  # being delivered; its end wakes the loop
            wait = _seconds_until(head.next_at)
            if wait > 0:
                later.append(wait)
                continue
            task = asyncio.create_task(self._deliver_line(head), name=f"ivr112-push-{head.agency}")
            self._lines[head.agency] = task
            task.add_done_callback(functools.partial(self._line_done, head.agency))
        return min([self.settings.agency_push_retry_max_s, *later])

    def _line_done(self, agency: str, _task: asyncio.Task[None]) -> None:
        self._lines.pop(agency, None)
        self._wake.set()  # look again: its next try's time is written, or more came meanwhile

    async def _deliver_line(self, item: PushItem | None) -> None:
        """One agency's updates, oldest first, until one fails or none is left."""
        try:
            while item is not None and await self._deliver(item):
                item = await self._next(item.agency)
        except StoreUnavailable as exc:
            log.error("agency push: %s's updates wait for the store (%s)", item.agency if item else "?", exc)
        except Exception as exc:  # loud; the line is held a while (no loop of errors), then taken up again
            log.error("agency push: delivering %s's updates failed: %r", item.agency if item else "?", exc)
            await asyncio.sleep(self.settings.agency_push_retry_max_s)

    async def _next(self, agency: str) -> PushItem | None:
        heads = await self.store.run(lambda s: s.push_heads(agency))
        return heads[0] if heads else None

    def _webhook(self, item: PushItem) -> Agency | None:
        plan = self.plans.current.by_id(item.plan_id) or self.plans.current.default
        agency = plan.agencies.get(item.agency)
        return agency if agency is not None and agency.webhook else None

    async def _deliver(self, item: PushItem) -> bool:
        """One try of one update; True when it was delivered (or dropped), False when the line must wait."""
        agency = self._webhook(item)
        if agency is None:
            why = "the agency has no webhook in the plan any more"
            log.warning("EIDO of incident %d version %d for %s not sent: %s", item.incident_id, item.version, item.agency, why)
            await self.store.run(lambda s: s.push_dropped(item.id, why=why))
            return True
        until = _at(self.settings.agency_push_timeout_s + 5)
        if not await self.store.run(lambda s: s.take_push(item, until=until)):
            return False  # another node is sending it
        try:
            await self._post(agency, item)
        except (PushFailed, aiohttp.ClientError, TimeoutError) as exc:
            wait = retry_after(item.attempts + 1, first_s=self.settings.agency_push_retry_s,
                               longest_s=self.settings.agency_push_retry_max_s)
            why = str(exc) or type(exc).__name__
            log.warning("EIDO of incident %d version %d not delivered to %s at %s, try %d: %s; again in %.0f s",
                        item.incident_id, item.version, item.agency, urlsplit(agency.webhook).netloc, item.attempts + 1, why, wait)
            next_at = _at(wait)
            await self.store.run(lambda s: s.push_failed(item.id, error=why, next_at=next_at))
            return False
        await self.store.run(lambda s: s.push_sent(item.id))
        log.info("EIDO of incident %d version %d delivered to %s", item.incident_id, item.version, item.agency)
        return True

    async def _post(self, agency: Agency, item: PushItem) -> None:
        secret = self.secrets.agency_webhook_secrets.get(agency.name, "")
        if not secret:
            raise PushFailed(f"no signing secret for agency {agency.name!r}: restart the app (or run `ivr112 secrets`) to make one")
        if self._session is None:
            raise PushFailed("the push is not running")
        body = item.body.encode()
        headers = push.headers(secret, body, eido_id=item.eido_id, version=item.version, timestamp=int(time.time()))
        async with self._session.post(agency.webhook, data=body, headers=headers, allow_redirects=False) as response:
            if 300 <= response.status < 400:
                raise PushFailed(f"answered {response.status} redirecting to {response.headers.get('Location', '?')!r}; "
                                 "redirects are not followed: ask the agency for its final URL")
            if response.status >= 300:
                raise PushFailed(f"answered {response.status} {response.reason}")
