"""Positions of a call (every report, hints apart) and the index of its recordings; and the
retention purge that deletes both for old calls (personal data, UU 27/2022)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import bindparam, delete, select

from ari_app.store.base import Tables, dumps, loads, row, run
from ari_app.store.schema import agency_outbox, aml_inbox, applied_writes, incidents, locations, recordings
from ivr.location import Location
from ivr.store import Recording, StoredLocation, now

# The call path's statements, built once (base.run).
_LAST = (select(locations).join(incidents, incidents.c.id == locations.c.incident_id)
         .where(incidents.c.caller_number == bindparam("number"), incidents.c.arrived_at >= bindparam("since"),
                incidents.c.id < bindparam("before"), locations.c.hint == 0, locations.c.latitude.is_not(None))
         .order_by(locations.c.id.desc()).limit(1))
_ADD_RECORDING = recordings.insert()


class LocationTables(Tables):
    def add_location(self, incident_id: int, location: Location, *, kecamatan: str | None, description: str, hint: bool = False,
                     received_at: str | None = None) -> int:
        """Keep one position report on an incident; returns its row id."""
        row = {
            "incident_id": incident_id, "source": location.source, "latitude": location.latitude,
            "longitude": location.longitude, "radius_m": location.radius_m, "shape": location.shape,
            "method": location.method, "confidence": location.confidence, "measured_at": location.measured_at,
            "received_at": received_at or now(), "kecamatan": kecamatan, "description": description, "civic": dumps(location.civic),
            "uri": location.uri, "detail": dumps(location.detail), "hint": 1 if hint else 0,
        }
        with self.begin() as conn:
            return int(conn.execute(locations.insert().values(**row).returning(locations.c.id)).scalar_one())

    def locations(self, incident_id: int) -> list[StoredLocation]:
        """Every position report of the incident, oldest first."""
        query = select(locations).where(locations.c.incident_id == incident_id).order_by(locations.c.id)
        with self.connect() as conn:
            return [location_row(r._mapping) for r in conn.execute(query)]

    def last_location(self, caller_number: str, *, since: str, before_incident: int) -> StoredLocation | None:
        """The newest real (not hint) position of an earlier call from this number since `since`."""
        with self.connect() as conn:
            found = row(conn, _LAST, {"number": caller_number, "since": since, "before": before_incident})
        return location_row(found) if found else None

    def add_recording(self, incident_id: int, *, kind: str, name: str, path: str, duration_s: float | None = None,
                      created_at: str | None = None) -> None:
        """Index a recording (the file lives in Asterisk's folder)."""
        with self.begin() as conn:
            run(conn, _ADD_RECORDING, {"incident_id": incident_id, "kind": kind, "name": name, "path": path,
                                       "duration_s": duration_s, "created_at": created_at or now()})

    def recordings(self, incident_id: int) -> list[Recording]:
        """The incident's recordings, oldest first."""
        query = select(recordings).where(recordings.c.incident_id == incident_id).order_by(recordings.c.id)
        with self.connect() as conn:
            return [Recording(**r._mapping) for r in conn.execute(query)]

    def purge(self, *, before: str) -> tuple[int, list[str]]:
        """Delete positions, recordings, AML messages and EIDOs for agencies' webhooks (they
        hold the positions) of calls that arrived before `before` (and the keys of named
        writes applied before it: no spool is that old).

        Returns how many positions went and the recording files to delete (the caller
        deletes the files: they live in Asterisk's folder). Incidents stay, without them.
        """
        old = select(incidents.c.id).where(incidents.c.arrived_at < before).scalar_subquery()
        with self.begin() as conn:
            found: list[Any] = list(conn.execute(select(recordings.c.path).where(recordings.c.incident_id.in_(old))).scalars())
            paths = [str(p) for p in found]
            gone = conn.execute(delete(locations).where(locations.c.incident_id.in_(old))).rowcount
            conn.execute(delete(recordings).where(recordings.c.incident_id.in_(old)))
            conn.execute(delete(agency_outbox).where(agency_outbox.c.incident_id.in_(old)))
            conn.execute(delete(aml_inbox).where(aml_inbox.c.received_at < before))
            conn.execute(delete(applied_writes).where(applied_writes.c.applied_at < before))
        return int(gone or 0), paths


def location_row(row: Mapping[Any, Any]) -> StoredLocation:
    return StoredLocation(
        id=row["id"], incident_id=row["incident_id"], source=row["source"], latitude=row["latitude"],
        longitude=row["longitude"], radius_m=row["radius_m"], shape=row["shape"] or "", method=row["method"] or "",
        confidence=row["confidence"], measured_at=row["measured_at"] or "", received_at=row["received_at"],
        kecamatan=row["kecamatan"], description=row["description"] or "", civic=loads(row["civic"]),
        uri=row["uri"] or "", detail=loads(row["detail"]), hint=bool(row["hint"]),
    )
