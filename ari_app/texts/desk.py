"""The text desk: a received text is cleaned, stored on its conversation's incident (before
the door acknowledges it), answered once automatically, and shown to the operators; an
operator's reply is stored with its outbox row and handed to the outbox to deliver.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from ari_app.storage import AsyncStore
from ari_app.store.texts import Received
from ari_app.texts.outbox import Outbox
from ivr.budget import SlidingBudget
from ivr.location import Location
from ivr.settings import Settings
from ivr.texts import auto_reply, clean_text

log = logging.getLogger(__name__)

@dataclass(frozen=True)
class Taken:
    """What the door tells the sender's side: the incident and whether this number is over its budget."""

    incident_id: int
    new_conversation: bool
    flooding: bool


class TextDesk:
    def __init__(self, settings: Settings, store: AsyncStore, outbox: Outbox, *, publish: Callable[[str, dict[str, Any]], None],
                 clock: Callable[[], float]) -> None:
        self.settings = settings
        self.store = store
        self.outbox = outbox
        self.publish = publish
        # Texts per number per window before the number counts as flooding (slowed, never blocked).
        self.budget = SlidingBudget(settings.text_rate_per_number, settings.text_rate_window_s, clock)
        self.received = 0

    def over_budget(self, number: str) -> bool:
        """True when this number sent more than its budget in the last minute (counted now)."""
        return not self.budget.allow(number)

    async def receive(self, *, door: str, number: str, address: str, raw: bytes | str, location: Location | None = None,
                      flooding: bool = False, at: str = "", key: str | None = None) -> Taken | None:
        """Keep one received text (raises TextRefused for what is no text, StoreUnavailable when
        it cannot be kept: the door then refuses it so the sender's side tries again). `at`: when
        it arrived, if not now; `key`: where it was read, so that a text read twice is kept once
        (None then: it was kept before)."""
        clean = clean_text(raw, max_chars=self.settings.text_max_chars)
        if clean.notes:
            log.warning("text from %s via %s cleaned: %s", number, door, "; ".join(clean.notes))
        arrived = datetime.fromisoformat(at) if at else datetime.now(UTC)
        since = (arrived - timedelta(minutes=self.settings.text_join_minutes)).isoformat(timespec="milliseconds")
        notes = "; ".join(clean.notes + (("flood",) if flooding else ()))

        def keep(s: Any) -> Received | None:
            got: Received | None = s.receive_text(door=door, number=number, address=address, body=clean.text, notes=notes,
                                                   join_since=since, at=at, source_key=key)
            if got is None:
                return None
            if location is not None:
                s.add_location(got.incident.id, location, kecamatan=None, description=f"text ({door})")
            s.add_event(got.incident.id, "text_in", {"door": door, "message": got.message_id})
            return got

        got = await self.store.run(keep)
        if got is None:
            log.info("text from %s via %s (%s) was kept before: not again", number, door, key)
            return None
        incident_id = got.incident.id
        self.received += 1
        log.info("text %d from %s via %s kept on incident %d%s", got.message_id, number, door, incident_id,
                 " (new conversation)" if got.new_conversation else "")
        if got.new_conversation:
            await self.reply(incident_id, door=door, number=number, address=address, body=auto_reply("id"), author="auto")
        self.publish("incident", {"id": incident_id, "kind": "text", "detail": {"door": door, "direction": "in"}})
        if location is not None:
            self.publish("incident", {"id": incident_id, "kind": "location", "detail": {"source": "text"}})
        return Taken(incident_id, got.new_conversation, flooding)

    async def reply(self, incident_id: int, *, door: str, number: str, address: str, body: str, author: str,
                    starts: bool = False) -> int:
        """Keep a reply with its outbox row, then wake the outbox; returns the message id.
        `starts`: the operator opens the conversation (see TextTables.send_text)."""
        message_id: int = await self.store.run(
            lambda s: s.send_text(incident_id, door=door, number=number, address=address, body=body, author=author,
                                  starts=starts))
        if starts:
            await self.store.add_event(incident_id, "text_started", {"door": door, "by": author})
        self.outbox.kick()
        self.publish("incident", {"id": incident_id, "kind": "text", "detail": {"door": door, "direction": "out"}})
        return message_id
