"""The agencies' outbox: each version of an incident's EIDO for an agency with a webhook is a
row before anyone tries to send it; an agency's rows go out in id order, each marked sent
only once the agency's system took it, so a receiver that is down, or an app restart, loses
none. Versions count per incident and agency from 1; a change that tells the agency nothing
new (same content digest as the last version) makes no row.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from ari_app.store.base import Tables
from ari_app.store.incidents import event_row, incident_row
from ari_app.store.locations import location_row
from ari_app.store.schema import agency_outbox, incident_events, incidents, locations, recordings
from ivr.eido import EidoSource
from ivr.store import Recording, now


@dataclass(frozen=True)
class PushItem:
    """One EIDO version waiting for (or delivered to) an agency's webhook."""

    id: int
    agency: str
    plan_id: str
    incident_id: int
    version: int
    eido_id: str
    body: str
    attempts: int
    next_at: str
    sent_at: str | None = None
    last_error: str | None = None


def _item(r: object) -> PushItem:
    m = r._mapping  # type: ignore[attr-defined]
    return PushItem(m["id"], m["agency"], m["plan_id"] or "", m["incident_id"], m["version"], m["eido_id"], m["body"],
                    m["attempts"], m["next_at"], m["sent_at"], m["last_error"])


class AgencyOutboxTables(Tables):
    def eido_source(self, incident_id: int) -> EidoSource | None:
        """Everything an EIDO of the incident is made of, read in one connection; None when there is no such incident."""
        with self.connect() as conn:
            row = conn.execute(select(incidents).where(incidents.c.id == incident_id)).first()
            if row is None:
                return None
            events = [event_row(r) for r in conn.execute(
                select(incident_events).where(incident_events.c.incident_id == incident_id).order_by(incident_events.c.id))]
            places = [location_row(r._mapping) for r in conn.execute(
                select(locations).where(locations.c.incident_id == incident_id).order_by(locations.c.id))]
            recs = [Recording(**r._mapping) for r in conn.execute(
                select(recordings).where(recordings.c.incident_id == incident_id).order_by(recordings.c.id))]
        return EidoSource(incident_row(row._mapping), events, places, recs)

    def enqueue_push(self, *, agency: str, plan_id: str, incident_id: int, eido_id: str, digest: str,
                     render: Callable[[int], str]) -> int | None:
        """Put the next version of the incident's EIDO for `agency` in the outbox, unless its
        content is the last version's; returns the version, or None when nothing was added."""
        t = agency_outbox
        try:
            with self.begin() as conn:
                last = conn.execute(select(t.c.version, t.c.digest).where(t.c.agency == agency, t.c.incident_id == incident_id)
                                    .order_by(t.c.version.desc()).limit(1)).first()
                if last is not None and last.digest == digest:
                    return None
                version = 1 if last is None else int(last.version) + 1
                at = now()
                conn.execute(t.insert().values(agency=agency, plan_id=plan_id, incident_id=incident_id, version=version,
                                               eido_id=eido_id, body=render(version), digest=digest, created_at=at,
                                               attempts=0, next_at=at))
        except IntegrityError:  # another node added this version first: it holds the same change
            return None
        return version

    def push_heads(self, agency: str | None = None) -> list[PushItem]:
        """For each agency (or only `agency`), its oldest update not yet delivered: the only one it may be sent now."""
        t = agency_outbox
        waiting = t.c.sent_at.is_(None) & t.c.dropped_at.is_(None)
        if agency is not None:
            waiting = waiting & (t.c.agency == agency)
        heads = select(func.min(t.c.id)).where(waiting).group_by(t.c.agency)
        with self.connect() as conn:
            return [_item(r) for r in conn.execute(select(t).where(t.c.id.in_(heads)).order_by(t.c.id))]

    def take_push(self, item: PushItem, *, until: str) -> bool:
        """Claim `item` for one try (its next_at moves to `until`); False when another sender
        (another node) took it meanwhile."""
        t = agency_outbox
        with self.begin() as conn:
            done = conn.execute(t.update().where(t.c.id == item.id, t.c.next_at == item.next_at, t.c.sent_at.is_(None))
                                .values(next_at=until))
        return done.rowcount == 1

    def push_sent(self, item_id: int) -> None:
        with self.begin() as conn:
            conn.execute(agency_outbox.update().where(agency_outbox.c.id == item_id).values(sent_at=now(), last_error=None))

    def push_failed(self, item_id: int, *, error: str, next_at: str) -> None:
        t = agency_outbox
        with self.begin() as conn:
            conn.execute(t.update().where(t.c.id == item_id)
                         .values(attempts=t.c.attempts + 1, next_at=next_at, last_error=error[:300]))

    def push_dropped(self, item_id: int, *, why: str) -> None:
        """Kept but never sent (the agency's webhook was taken out of the plan)."""
        with self.begin() as conn:
            conn.execute(agency_outbox.update().where(agency_outbox.c.id == item_id).values(dropped_at=now(), last_error=why[:300]))

    def pushes(self, agency: str) -> list[PushItem]:
        """Every update for `agency`, oldest first (for status and tests)."""
        query = select(agency_outbox).where(agency_outbox.c.agency == agency).order_by(agency_outbox.c.id)
        with self.connect() as conn:
            return [_item(r) for r in conn.execute(query)]
