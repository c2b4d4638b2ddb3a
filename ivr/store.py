"""The incident store: one incident per call and the steps it went through, in SQLite.

Created at answer, before anything else can fail. WAL mode and synchronous=FULL so a
row written survives a kill of the app; schema changes go through sqlite-utils' own
migrations. This class is synchronous and not thread-safe: the app calls it from one
writer thread (`ari_app.storage.AsyncStore`).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlite_utils
from sqlite_utils import Migrations

from ivr.location import Location

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


@migrations()
def m002_locations_recordings_cells(db: sqlite_utils.Database) -> None:
    db["locations"].create(  # type: ignore[union-attr]
        {
            "id": int,
            "incident_id": int,
            "source": str,
            "latitude": float,
            "longitude": float,
            "radius_m": float,
            "shape": str,
            "method": str,
            "confidence": float,
            "measured_at": str,
            "received_at": str,
            "kecamatan": str,
            "description": str,
            "civic": str,
            "uri": str,
            "detail": str,
            "hint": int,
        },
        pk="id",
        foreign_keys=[("incident_id", "incidents", "id")],
        not_null={"incident_id", "source", "received_at"},
        defaults={"hint": 0},
    )
    db["locations"].create_index(["incident_id"])  # type: ignore[union-attr]
    db["recordings"].create(  # type: ignore[union-attr]
        {"id": int, "incident_id": int, "kind": str, "name": str, "path": str, "duration_s": float, "created_at": str},
        pk="id",
        foreign_keys=[("incident_id", "incidents", "id")],
        not_null={"incident_id", "kind", "path", "created_at"},
    )
    db["recordings"].create_index(["incident_id"])  # type: ignore[union-attr]
    db["cells"].create(  # type: ignore[union-attr]
        {"key": str, "radio": str, "mcc": str, "mnc": str, "area": int, "cell": int,
         "latitude": float, "longitude": float, "radius_m": float, "name": str},
        pk="key",
    )
    db["aml_inbox"].create(  # type: ignore[union-attr]
        {"id": int, "received_at": str, "gateway": str, "number": str, "kind": str, "location": str,
         "incident_id": int, "raw": str},
        pk="id",
        not_null={"received_at", "number", "kind"},
    )
    db["aml_inbox"].create_index(["number", "received_at"])  # type: ignore[union-attr]


@migrations()
def m003_operators_callbacks_classification(db: sqlite_utils.Database) -> None:
    incidents = db["incidents"]
    for column in ("priority", "flags", "category", "classified_by", "classified_at", "notes", "closed_at"):
        incidents.add_column(column, str)  # type: ignore[union-attr]
    db["operator_log"].create(  # type: ignore[union-attr]
        {"id": int, "at": str, "operator": str, "action": str, "detail": str},
        pk="id",
        not_null={"at", "operator", "action"},
    )
    db["operator_log"].create_index(["operator", "at"])  # type: ignore[union-attr]
    # One entry per number: the latest unanswered call, how many, and the callback's state.
    db["callbacks"].create(  # type: ignore[union-attr]
        {"number": str, "incident_id": int, "first_at": str, "last_call_at": str, "calls": int, "attempts": int,
         "status": str, "operator": str, "started_at": str, "closed_at": str, "closed_reason": str},
        pk="number",
        not_null={"first_at", "last_call_at", "status"},
        defaults={"calls": 1, "attempts": 0},
    )
    db["callbacks"].create_index(["status", "last_call_at"])  # type: ignore[union-attr]
    db["number_clears"].create(  # type: ignore[union-attr]
        {"number": str, "cleared_at": str, "cleared_by": str}, pk="number", not_null={"cleared_at"},
    )


@migrations()
def m004_console_users(db: sqlite_utils.Database) -> None:
    db["console_users"].create(  # type: ignore[union-attr]
        {"name": str, "role": str, "password_hash": str, "changed_at": str}, pk="name", not_null={"role", "password_hash"},
    )


@migrations()
def m005_console_sessions(db: sqlite_utils.Database) -> None:
    # The SHA-256 of each session key, never the key: a copy of the file logs nobody in.
    db["console_sessions"].create(  # type: ignore[union-attr]
        {"key_hash": str, "name": str, "role": str, "csrf": str, "expires": float}, pk="key_hash",
    )


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
    priority: str | None = None  # urgent / normal / low, as the call went to the queue
    flags: str | None = None  # comma-separated facts: silent_needs_help, prank_flagged, redial, ...
    category: str | None = None  # emergency / information / prank / ghost, set by the operator
    classified_by: str | None = None
    classified_at: str | None = None
    notes: str | None = None
    closed_at: str | None = None


@dataclass(frozen=True)
class IncidentEvent:
    incident_id: int
    at: str
    kind: str
    detail: dict[str, Any]


INCIDENT_FIELDS = tuple(Incident.__dataclass_fields__)


@dataclass(frozen=True)
class StoredLocation:
    id: int
    incident_id: int
    source: str
    latitude: float | None
    longitude: float | None
    radius_m: float | None
    shape: str
    method: str
    confidence: float | None
    measured_at: str
    received_at: str
    kecamatan: str | None
    description: str
    civic: dict[str, str]
    uri: str
    detail: dict[str, str]
    hint: bool


@dataclass(frozen=True)
class Recording:
    id: int
    incident_id: int
    kind: str
    name: str
    path: str
    duration_s: float | None
    created_at: str


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

    # Locations, recordings, cells, AML ---------------------------------------------------

    def add_location(self, incident_id: int, location: Location, *, kecamatan: str | None, description: str, hint: bool = False) -> int:
        """Keep one position report on an incident; returns its row id."""
        row = {
            "incident_id": incident_id,
            "source": location.source,
            "latitude": location.latitude,
            "longitude": location.longitude,
            "radius_m": location.radius_m,
            "shape": location.shape,
            "method": location.method,
            "confidence": location.confidence,
            "measured_at": location.measured_at,
            "received_at": now(),
            "kecamatan": kecamatan,
            "description": description,
            "civic": json.dumps(location.civic, ensure_ascii=False),
            "uri": location.uri,
            "detail": json.dumps(location.detail, ensure_ascii=False),
            "hint": 1 if hint else 0,
        }
        with self.db.conn:
            table = self.db["locations"]
            table.insert(row)  # type: ignore[union-attr]
            return int(str(table.last_pk))  # type: ignore[union-attr]

    def locations(self, incident_id: int) -> list[StoredLocation]:
        return [_location(r) for r in self.db["locations"].rows_where("incident_id = ?", [incident_id], order_by="id")]

    def last_location(self, caller_number: str, *, since: str, before_incident: int) -> StoredLocation | None:
        """The newest real (not hint) position of an earlier call from this number since `since`."""
        rows = list(
            self.db.query(
                "select l.* from locations l join incidents i on i.id = l.incident_id "
                "where i.caller_number = ? and i.arrived_at >= ? and i.id < ? and l.hint = 0 and l.latitude is not null "
                "order by l.id desc limit 1",
                [caller_number, since, before_incident],
            )
        )
        return _location(rows[0]) if rows else None

    def add_recording(self, incident_id: int, *, kind: str, name: str, path: str, duration_s: float | None = None) -> None:
        with self.db.conn:
            self.db["recordings"].insert(  # type: ignore[union-attr]
                {"incident_id": incident_id, "kind": kind, "name": name, "path": path, "duration_s": duration_s, "created_at": now()}
            )

    def recordings(self, incident_id: int) -> list[Recording]:
        return [Recording(**r) for r in self.db["recordings"].rows_where("incident_id = ?", [incident_id], order_by="id")]

    def put_cells(self, rows: list[dict[str, Any]]) -> int:
        """Replace the cell table with `rows` (key, radio, mcc, mnc, area, cell, latitude, longitude, radius_m, name)."""
        with self.db.conn:
            self.db.execute("delete from cells")
            self.db["cells"].insert_all(rows, pk="key", replace=True)  # type: ignore[union-attr]
        return len(rows)

    def cell(self, key: str) -> dict[str, Any] | None:
        rows = list(self.db["cells"].rows_where("key = ?", [key]))
        return rows[0] if rows else None

    def cell_count(self) -> int:
        return int(self.db["cells"].count)

    def add_aml(self, *, gateway: str, number: str, kind: str, location: Location | None, raw: str, incident_id: int | None) -> int:
        with self.db.conn:
            table = self.db["aml_inbox"]
            table.insert(  # type: ignore[union-attr]
                {"received_at": now(), "gateway": gateway, "number": number, "kind": kind,
                 "location": json.dumps(dataclasses.asdict(location), ensure_ascii=False) if location else None,
                 "incident_id": incident_id, "raw": raw[:2000]}
            )
            return int(str(table.last_pk))  # type: ignore[union-attr]

    def unmatched_aml(self, number: str, *, since: str) -> list[tuple[int, Location]]:
        """AML messages from `number` since `since` not yet on an incident (they came first)."""
        out = []
        for r in self.db["aml_inbox"].rows_where("number = ? and received_at >= ? and incident_id is null", [number, since], order_by="id"):
            if r["location"]:
                data = json.loads(r["location"])
                data["polygon"] = tuple(tuple(p) for p in data.get("polygon", ()))
                out.append((r["id"], Location(**data)))
        return out

    def match_aml(self, aml_id: int, incident_id: int) -> None:
        with self.db.conn:
            self.db["aml_inbox"].update(aml_id, {"incident_id": incident_id})  # type: ignore[union-attr]

    def recent_incident_from(self, number: str, *, since: str) -> Incident | None:
        rows = list(self.db["incidents"].rows_where("caller_number = ? and arrived_at >= ?", [number, since], order_by="id desc", limit=1))
        return _incident(rows[0]) if rows else None

    def purge(self, *, before: str) -> tuple[int, list[str]]:
        """Delete positions, recordings and AML messages of calls that arrived before `before`.

        Returns how many positions went and the recording files to delete (the caller
        deletes the files: they live in Asterisk's folder). Incidents stay, without them.
        """
        ids = [r["id"] for r in self.db.query("select id from incidents where arrived_at < ?", [before])]
        if not ids:
            return 0, []
        marks = ",".join("?" * len(ids))
        paths = [r["path"] for r in self.db.query(f"select path from recordings where incident_id in ({marks})", ids)]
        with self.db.conn:
            gone = self.db.execute(f"delete from locations where incident_id in ({marks})", ids).rowcount
            self.db.execute(f"delete from recordings where incident_id in ({marks})", ids)
            self.db.execute("delete from aml_inbox where received_at < ?", [before])
        return gone, paths

    def log_operator(self, operator: str, action: str, detail: dict[str, Any] | None = None) -> None:
        """One line of the operators' log: log in/out, pause, answered, completed..."""
        with self.db.conn:
            self.db["operator_log"].insert(  # type: ignore[union-attr]
                {"at": now(), "operator": operator, "action": action, "detail": json.dumps(detail or {}, ensure_ascii=False)}
            )

    def operator_log(self, operator: str | None = None, *, limit: int = 200) -> list[dict[str, Any]]:
        where, args = ("operator = ?", [operator]) if operator else (None, [])
        rows = self.db["operator_log"].rows_where(where, args, order_by="id desc", limit=limit)
        return [{**r, "detail": json.loads(r["detail"] or "{}")} for r in rows]

    def set_console_password(self, name: str, role: str, password_hash: str) -> None:
        with self.db.conn:
            self.db["console_users"].insert(  # type: ignore[union-attr]
                {"name": name, "role": role, "password_hash": password_hash, "changed_at": now()}, replace=True
            )

    def console_user(self, name: str) -> dict[str, Any] | None:
        rows = list(self.db["console_users"].rows_where("name = ?", [name]))
        return rows[0] if rows else None

    def incidents_between(self, start: str, end: str) -> list[Incident]:
        """Incidents that arrived in [start, end) (ISO times, UTC)."""
        return [_incident(r) for r in self.db["incidents"].rows_where("arrived_at >= ? and arrived_at < ?", [start, end], order_by="id")]

    def agency_answers(self, start: str, end: str) -> dict[int, str]:
        """When an agency's trunk first answered, per incident that arrived in [start, end)."""
        rows = self.db.query(
            "select e.incident_id, min(e.at) as at from incident_events e join incidents i on i.id = e.incident_id "
            "where e.kind = 'trunk_answered' and i.arrived_at >= ? and i.arrived_at < ? group by e.incident_id",
            [start, end],
        )
        return {r["incident_id"]: r["at"] for r in rows}

    def save_session(self, key_hash: str, name: str, role: str, csrf: str, expires: float) -> None:
        with self.db.conn:
            self.db["console_sessions"].insert(  # type: ignore[union-attr]
                {"key_hash": key_hash, "name": name, "role": role, "csrf": csrf, "expires": expires}, replace=True
            )

    def drop_session(self, key_hash: str) -> None:
        with self.db.conn:
            self.db.execute("delete from console_sessions where key_hash = ?", [key_hash])

    def sessions(self, *, now_epoch: float) -> list[dict[str, Any]]:
        """Console sessions still valid; expired ones are deleted."""
        with self.db.conn:
            self.db.execute("delete from console_sessions where expires < ?", [now_epoch])
        return list(self.db["console_sessions"].rows)

    def trunk_results(self, plan_id: str, limit: int = 2000) -> dict[tuple[str, str], dict[str, str]]:
        """The latest result of each agency trunk the app dialled (answered or failed, when, why),
        by (agency, trunk number), from the newest incident events of the plan's calls."""
        rows = self.db.query(
            "select e.kind, e.at, e.detail from incident_events e join incidents i on i.id = e.incident_id "
            "where i.plan_id = ? and e.kind in ('trunk_answered', 'trunk_failed') order by e.id desc limit ?",
            [plan_id, limit],
        )
        out: dict[tuple[str, str], dict[str, str]] = {}
        for r in rows:
            d = json.loads(r["detail"] or "{}")
            key = (d.get("agency", ""), d.get("trunk", ""))
            if key not in out:
                out[key] = {"result": "answered" if r["kind"] == "trunk_answered" else "failed", "at": r["at"], "cause": d.get("cause", "")}
        return out

    def learned(self, incident_ids: list[int]) -> dict[int, tuple[list[IncidentEvent], list[StoredLocation]]]:
        """What the menu learned of each call so far, in two queries: its choices (menu keys,
        kecamatan, silent help, language) and its positions, by incident id."""
        found: dict[int, tuple[list[IncidentEvent], list[StoredLocation]]] = {i: ([], []) for i in incident_ids}
        if not incident_ids:
            return found
        marks = ",".join("?" * len(incident_ids))
        kinds = ("choice", "kecamatan", "silent_help", "language")
        for r in self.db.query(
            f"select * from incident_events where incident_id in ({marks}) and kind in ({','.join('?' * len(kinds))}) order by id",
            [*incident_ids, *kinds],
        ):
            found[r["incident_id"]][0].append(IncidentEvent(r["incident_id"], r["at"], r["kind"], json.loads(r["detail"] or "{}")))
        for r in self.db.query(f"select * from locations where incident_id in ({marks}) order by id", incident_ids):
            found[r["incident_id"]][1].append(_location(r))
        return found

    def open_incidents(self) -> list[Incident]:
        """Incidents whose call has not ended (used to take calls over after a restart)."""
        return [_incident(r) for r in self.db["incidents"].rows_where("ended_at is null", order_by="id")]


def _location(row: dict[str, Any]) -> StoredLocation:
    return StoredLocation(
        id=row["id"], incident_id=row["incident_id"], source=row["source"], latitude=row["latitude"],
        longitude=row["longitude"], radius_m=row["radius_m"], shape=row["shape"] or "", method=row["method"] or "",
        confidence=row["confidence"], measured_at=row["measured_at"] or "", received_at=row["received_at"],
        kecamatan=row["kecamatan"], description=row["description"] or "", civic=json.loads(row["civic"] or "{}"),
        uri=row["uri"] or "", detail=json.loads(row["detail"] or "{}"), hint=bool(row["hint"]),
    )


def _incident(row: dict[str, Any]) -> Incident:
    return Incident(**{k: row.get(k) for k in INCIDENT_FIELDS})  # type: ignore[arg-type]


def open_store(data_dir: Path) -> IncidentStore:
    return IncidentStore(data_dir / STORE_FILE)
