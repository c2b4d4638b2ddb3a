"""The incident store: one incident per call and the steps it went through, in SQLite.

Created at answer, before anything else can fail. WAL mode and synchronous=FULL so a
row written survives a kill of the app; schema changes go through sqlite-utils' own
migrations. This class is synchronous and not thread-safe: the app calls it from one
writer thread (`ari_app.storage.AsyncStore`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlite_utils
from sqlite_utils import Migrations

STORE_FILE = "ivr112.sqlite"

migrations = Migrations("ivr112")


@migrations()
def m001_incidents(db: sqlite_utils.Database) -> None:
    db["incidents"].create(  # type: ignore[union-attr]
        {
            "id": int,
            "channel_id": str,
            "plan_id": str,
            "caller_number": str,
            "called_number": str,
            "carrier": str,
            "language": str,
            "arrived_at": str,
            "answered_at": str,
            "queued_at": str,
            "queue": str,
            "operator": str,
            "operator_answered_at": str,
            "ended_at": str,
            "route": str,
            "route_result": str,
            "end_reason": str,
            "fallback": int,
        },
        pk="id",
        not_null={"channel_id", "arrived_at"},
        defaults={"fallback": 0},
    )
    db["incidents"].create_index(["channel_id"], unique=True)  # type: ignore[union-attr]
    db["incidents"].create_index(["caller_number", "arrived_at"])  # type: ignore[union-attr]
    db["incident_events"].create(  # type: ignore[union-attr]
        {"id": int, "incident_id": int, "at": str, "kind": str, "detail": str},
        pk="id",
        foreign_keys=[("incident_id", "incidents", "id")],
        not_null={"incident_id", "at", "kind"},
    )
    db["incident_events"].create_index(["incident_id"])  # type: ignore[union-attr]


def now() -> str:
    """UTC time as ISO text with milliseconds: sortable and unambiguous across time zones."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")


@dataclass(frozen=True)
class Incident:
    id: int
    channel_id: str
    plan_id: str
    caller_number: str
    called_number: str
    carrier: str
    language: str
    arrived_at: str
    answered_at: str | None = None
    queued_at: str | None = None
    queue: str | None = None
    operator: str | None = None
    operator_answered_at: str | None = None
    ended_at: str | None = None
    route: str | None = None
    route_result: str | None = None
    end_reason: str | None = None
    fallback: int = 0


@dataclass(frozen=True)
class IncidentEvent:
    incident_id: int
    at: str
    kind: str
    detail: dict[str, Any]


INCIDENT_FIELDS = tuple(Incident.__dataclass_fields__)


class IncidentStore:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.db = sqlite_utils.Database(str(path))
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.execute("PRAGMA foreign_keys=ON")
        migrations.apply(self.db)

    def close(self) -> None:
        self.db.close()

    def open_incident(
        self,
        *,
        channel_id: str,
        plan_id: str,
        caller_number: str,
        called_number: str,
        carrier: str = "",
        language: str = "id",
        arrived_at: str | None = None,
    ) -> Incident:
        """Create the incident of a call (or return the existing one for this channel)."""
        existing = self.by_channel(channel_id)
        if existing is not None:
            return existing
        row = {
            "channel_id": channel_id,
            "plan_id": plan_id,
            "caller_number": caller_number,
            "called_number": called_number,
            "carrier": carrier,
            "language": language,
            "arrived_at": arrived_at or now(),
        }
        with self.db.conn:
            table = self.db["incidents"]
            table.insert(row)  # type: ignore[union-attr]
            incident_id = table.last_pk  # type: ignore[union-attr]
        found = self.get(int(str(incident_id)))
        assert found is not None
        return found

    def update(self, incident_id: int, **fields: Any) -> None:
        """Set fields of an incident; unknown field names are a programming error."""
        unknown = set(fields) - set(INCIDENT_FIELDS)
        if unknown:
            raise ValueError(f"unknown incident fields: {sorted(unknown)}")
        with self.db.conn:
            self.db["incidents"].update(incident_id, fields)  # type: ignore[union-attr]

    def add_event(self, incident_id: int, kind: str, detail: dict[str, Any] | None = None, *, at: str | None = None) -> None:
        """Record one step of the call (digit, prompt, route, trunk result...)."""
        with self.db.conn:
            self.db["incident_events"].insert(  # type: ignore[union-attr]
                {"incident_id": incident_id, "at": at or now(), "kind": kind, "detail": json.dumps(detail or {}, ensure_ascii=False)}
            )

    def get(self, incident_id: int) -> Incident | None:
        rows = list(self.db["incidents"].rows_where("id = ?", [incident_id]))
        return _incident(rows[0]) if rows else None

    def by_channel(self, channel_id: str) -> Incident | None:
        rows = list(self.db["incidents"].rows_where("channel_id = ?", [channel_id]))
        return _incident(rows[0]) if rows else None

    def events(self, incident_id: int) -> list[IncidentEvent]:
        return [
            IncidentEvent(r["incident_id"], r["at"], r["kind"], json.loads(r["detail"] or "{}"))
            for r in self.db["incident_events"].rows_where("incident_id = ?", [incident_id], order_by="id")
        ]

    def recent(self, limit: int = 50) -> list[Incident]:
        return [_incident(r) for r in self.db["incidents"].rows_where(order_by="id desc", limit=limit)]

    def open_incidents(self) -> list[Incident]:
        """Incidents whose call has not ended (used to take calls over after a restart)."""
        return [_incident(r) for r in self.db["incidents"].rows_where("ended_at is null", order_by="id")]


def _incident(row: dict[str, Any]) -> Incident:
    return Incident(**{k: row.get(k) for k in INCIDENT_FIELDS})  # type: ignore[arg-type]


def open_store(data_dir: Path) -> IncidentStore:
    return IncidentStore(data_dir / STORE_FILE)
