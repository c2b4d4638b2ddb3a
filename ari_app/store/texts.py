"""Text conversations: each text in or out is a row on its incident, and each reply waits in
the outbox until a door took it (a reply is never lost when the SMS gateway is down).

A conversation is an incident flagged `text`, keyed by a channel id of its own
(`text-<door>-<number>-<time>`); a text from a number whose silent call (or open text
conversation) is recent joins that incident instead of opening another.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, or_, select

from ari_app.store.base import Tables, insert_once
from ari_app.store.incidents import incident_row
from ari_app.store.schema import incidents, text_messages, text_outbox
from ivr.store import Incident, now
from ivr.texts import TEXT_CHANNEL_PREFIX, TEXT_FLAG


@dataclass(frozen=True)
class TextMessage:
    id: int
    incident_id: int
    at: str
    door: str
    direction: str
    number: str
    address: str
    body: str
    author: str
    notes: str


@dataclass(frozen=True)
class OutboxItem:
    id: int
    message_id: int
    incident_id: int
    door: str
    address: str
    body: str
    attempts: int


@dataclass(frozen=True)
class Received:
    """A text kept: its incident, its row, and whether the conversation is new (it gets the automatic answer)."""

    incident: Incident
    message_id: int
    new_conversation: bool


class TextTables(Tables):
    def receive_text(self, *, door: str, number: str, address: str, body: str, notes: str, join_since: str,
                     language: str = "id", plan_id: str = "", called: str = "112", at: str = "",
                     source_key: str | None = None) -> Received | None:
        """Keep a received text on its conversation's incident (opened when there is none); one
        transaction. `at`: when it arrived (now if empty). None when a text with the same
        `source_key` is kept already (read twice from the journal)."""
        at = at or now()
        with self.begin() as conn:
            if source_key is not None and conn.execute(
                    select(text_messages.c.id).where(text_messages.c.source_key == source_key)).first() is not None:
                return None
            found = self._conversation(conn, number, join_since)
            new = found is None or TEXT_FLAG not in (found.flags or "").split(",")
            if found is None:
                channel = f"{TEXT_CHANNEL_PREFIX}{door}-{number}-{at}"
                row = {"channel_id": channel, "plan_id": plan_id, "caller_number": number, "called_number": called,
                       "carrier": door, "language": language, "arrived_at": at, "queued_at": at, "flags": TEXT_FLAG,
                       "priority": "normal"}
                insert_once(conn, incidents, row, keys=["channel_id"])
                found = incident_row(conn.execute(select(incidents).where(incidents.c.channel_id == channel)).one()._mapping)
            elif new:
                # A text after a silent call: the same incident, now a conversation too, and urgent
                # (the caller could not speak).
                flags = ",".join([f for f in (found.flags or "").split(",") if f] + [TEXT_FLAG])
                conn.execute(incidents.update().where(incidents.c.id == found.id).values(flags=flags, priority="urgent"))
                found = incident_row(conn.execute(select(incidents).where(incidents.c.id == found.id)).one()._mapping)
            message_id = int(conn.execute(text_messages.insert().values(
                incident_id=found.id, at=at, door=door, direction="in", number=number, address=address, body=body,
                author=None, notes=notes or None, source_key=source_key).returning(text_messages.c.id)).scalar_one())
        return Received(found, message_id, new)

    def source_keys(self, prefix: str) -> set[str]:
        """The source keys of the received texts kept whose key starts with `prefix` (one journal file's)."""
        query = select(text_messages.c.source_key).where(text_messages.c.source_key.startswith(prefix, autoescape=True))
        with self.connect() as conn:
            return {r[0] for r in conn.execute(query)}

    def _conversation(self, conn: Any, number: str, since: str) -> Incident | None:
        """The open incident this number's text belongs to: its open text conversation, or its
        recent call (a silent caller texting next)."""
        query = (select(incidents)
                 .where(incidents.c.caller_number == number, incidents.c.closed_at.is_(None),
                        or_(incidents.c.flags.like(f"%{TEXT_FLAG}%"), incidents.c.arrived_at >= since))
                 .order_by(incidents.c.id.desc()).limit(1))
        row = conn.execute(query).first()
        return incident_row(row._mapping) if row is not None else None

    def send_text(self, incident_id: int, *, door: str, number: str, address: str, body: str, author: str,
                  starts: bool = False) -> int:
        """Keep a reply and put it in the outbox, in one transaction; returns the message's id.
        The first reply by a person is the operator answer time of a conversation a text
        opened (not of a call). `starts`: an operator opens the conversation (a silent
        caller's incident): the incident gets the `text` flag and is open again, so the
        caller's answer joins it."""
        at = now()
        with self.begin() as conn:
            message_id = int(conn.execute(text_messages.insert().values(
                incident_id=incident_id, at=at, door=door, direction="out", number=number, address=address, body=body,
                author=author).returning(text_messages.c.id)).scalar_one())
            conn.execute(text_outbox.insert().values(message_id=message_id, door=door, address=address, body=body, attempts=0,
                                                     next_at=at))
            if starts:
                flags: str | None = conn.execute(select(incidents.c.flags).where(incidents.c.id == incident_id)).scalar_one()
                if TEXT_FLAG not in (flags or "").split(","):
                    flags = ",".join([f for f in (flags or "").split(",") if f] + [TEXT_FLAG])
                conn.execute(incidents.update().where(incidents.c.id == incident_id).values(flags=flags, closed_at=None))
            elif author != "auto":
                # A conversation a text opened is answered by its first human reply; a call's
                # answer times stay the call's (a text does not answer a call nobody took).
                conn.execute(incidents.update().where(incidents.c.id == incident_id, incidents.c.operator_answered_at.is_(None),
                                                      incidents.c.channel_id.startswith(TEXT_CHANNEL_PREFIX, autoescape=True))
                             .values(operator_answered_at=at, operator=author, answered_at=at))
        return message_id

    def due_replies(self, *, limit: int = 50) -> list[OutboxItem]:
        """Replies not yet delivered whose time to try has come, oldest first."""
        query = (select(text_outbox, text_messages.c.incident_id)
                 .join(text_messages, text_messages.c.id == text_outbox.c.message_id)
                 .where(and_(text_outbox.c.sent_at.is_(None), text_outbox.c.next_at <= now()))
                 .order_by(text_outbox.c.id).limit(limit))
        with self.connect() as conn:
            rows = list(conn.execute(query))
        return [OutboxItem(r.id, r.message_id, r.incident_id, r.door, r.address, r.body, r.attempts) for r in rows]

    def reply_sent(self, outbox_id: int) -> None:
        with self.begin() as conn:
            conn.execute(text_outbox.update().where(text_outbox.c.id == outbox_id).values(sent_at=now(), last_error=None))

    def reply_failed(self, outbox_id: int, *, error: str, next_at: str) -> None:
        with self.begin() as conn:
            conn.execute(text_outbox.update().where(text_outbox.c.id == outbox_id)
                         .values(attempts=text_outbox.c.attempts + 1, next_at=next_at, last_error=error[:300]))

    def texts(self, incident_id: int) -> list[TextMessage]:
        """The conversation of an incident, oldest first; a reply's delivery shows in `notes` as "sent"/"waiting"."""
        query = (select(text_messages, text_outbox.c.sent_at, text_outbox.c.last_error)
                 .outerjoin(text_outbox, text_outbox.c.message_id == text_messages.c.id)
                 .where(text_messages.c.incident_id == incident_id).order_by(text_messages.c.id))
        with self.connect() as conn:
            rows = list(conn.execute(query))
        out = []
        for r in rows:
            notes = r.notes or ""
            if r.direction == "out":
                notes = "sent" if r.sent_at else f"waiting ({r.last_error})" if r.last_error else "waiting"
            out.append(TextMessage(r.id, r.incident_id, r.at, r.door, r.direction, r.number, r.address or "", r.body,
                                   r.author or "", notes))
        return out

    def conversations(self, *, limit: int = 50) -> list[Incident]:
        """Text conversations not closed, newest first."""
        query = (select(incidents).where(incidents.c.flags.like(f"%{TEXT_FLAG}%"), incidents.c.closed_at.is_(None))
                 .order_by(incidents.c.id.desc()).limit(limit))
        with self.connect() as conn:
            return [incident_row(r._mapping) for r in conn.execute(query)]
