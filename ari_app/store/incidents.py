"""Incidents and their events: one incident per call, opened at answer, and the steps it
went through; plus the reads the console, the figures and the wall make of them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Row, and_, bindparam, func, select

from ari_app.store.base import Tables, dumps, insert_ignoring, insert_returning, loads, row, run
from ari_app.store.locations import location_row
from ari_app.store.schema import incident_events, incidents, locations
from ivr.store import INCIDENT_FIELDS, Incident, IncidentEvent, StoredLocation, now

END_FIELDS = ("ended_at", "end_reason")  # a call's end, written once (IncidentStore.update)
LEARNED_KINDS = ("choice", "kecamatan", "silent_help", "language")

# The call path's statements, built once; their values come as parameters (see base.upsert).
_BY_CHANNEL = select(incidents).where(incidents.c.channel_id == bindparam("channel"))
_BY_ID = select(incidents).where(incidents.c.id == bindparam("incident"))
_UPDATE = incidents.update().where(incidents.c.id == bindparam("incident"))  # SET: the fields given
_END = incidents.update().where(incidents.c.id == bindparam("incident"), incidents.c.ended_at.is_(None))  # the first end stands
_ADD_EVENT = incident_events.insert()
_PRANK_TIMES = (select(incidents.c.classified_at)
                .where(incidents.c.caller_number == bindparam("number"), incidents.c.category == "prank",
                       incidents.c.classified_at > bindparam("after"))
                .order_by(incidents.c.classified_at.desc()))


class IncidentTables(Tables):
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
        answered_at: str | None = None,
    ) -> Incident:
        """Create the incident of a call, or return the one this channel already has (a replayed
        open, or another node's): the channel id is unique. `answered_at`: the call was
        answered already (by the plan's dialplan), so the open says when in the same write."""
        values = {"channel_id": channel_id, "plan_id": plan_id, "caller_number": caller_number, "called_number": called_number,
                  "carrier": carrier, "language": language, "arrived_at": arrived_at or now(), "answered_at": answered_at}
        with self.statement() as conn:  # a second statement only when the row was there: a read
            found = insert_returning(conn, incidents, values, keys=["channel_id"]) or row(conn, _BY_CHANNEL, {"channel": channel_id})
        if found is None:
            raise RuntimeError(f"the incident of channel {channel_id} was written and cannot be read back")
        return incident_row(found)

    def update(self, incident_id: int, **fields: Any) -> bool:
        """Set fields of an incident; unknown field names are a programming error.

        A call's end (`ended_at`, `end_reason`) is written once: the first writer's stands.
        In a cluster two writers may end the same call (the sweeper of a lost node as
        `node_lost`, then the node's own app, back, as "ended while away"); the later one
        must not relabel it. Returns whether the end was written (True without one)."""
        check_fields(fields)
        end = {k: fields.pop(k) for k in END_FIELDS if k in fields} if "ended_at" in fields else {}
        written = True
        with self.transaction() if fields and end else self.statement() as conn:
            if fields:
                run(conn, _UPDATE, {"incident": incident_id, **fields})
            if end:
                written = run(conn, _END, {"incident": incident_id, **end}).rowcount > 0
        return written

    def add_event(self, incident_id: int, kind: str, detail: dict[str, Any] | None = None, *, at: str | None = None,
                  key: str | None = None) -> None:
        """Record one step of the call (digit, prompt, route, trunk result...); `key` makes a replay land once."""
        values = {"incident_id": incident_id, "at": at or now(), "kind": kind, "detail": dumps(detail or {}), "write_key": key}
        with self.statement() as conn:
            if key is None:
                run(conn, _ADD_EVENT, values)
            else:
                insert_ignoring(conn, incident_events, values, keys=["write_key"])

    def get(self, incident_id: int) -> Incident | None:
        """The incident with this id, or None."""
        return self._incident(_BY_ID, {"incident": incident_id})

    def by_channel(self, channel_id: str) -> Incident | None:
        """The incident of this Asterisk channel, or None."""
        return self._incident(_BY_CHANNEL, {"channel": channel_id})

    def _incident(self, query: Any, params: dict[str, Any]) -> Incident | None:
        with self.connect() as conn:
            found = row(conn, query, params)
        return incident_row(found) if found else None

    def _incidents(self, query: Any) -> list[Incident]:
        with self.connect() as conn:
            return [incident_row(r._mapping) for r in conn.execute(query)]

    def events(self, incident_id: int) -> list[IncidentEvent]:
        """The incident's steps, in the order they were written."""
        query = select(incident_events).where(incident_events.c.incident_id == incident_id).order_by(incident_events.c.id)
        with self.connect() as conn:
            return [event_row(r) for r in conn.execute(query)]

    def recent(self, limit: int = 50) -> list[Incident]:
        """The newest incidents, newest first."""
        return self._incidents(select(incidents).order_by(incidents.c.id.desc()).limit(limit))

    def recent_with_events(self, limit: int, kinds: tuple[str, ...]) -> list[tuple[Incident, list[IncidentEvent]]]:
        """The newest incidents, newest first, each with its events of these kinds (two queries)."""
        rows = self.recent(limit)
        found: dict[int, list[IncidentEvent]] = {inc.id: [] for inc in rows}
        if rows:
            query = (select(incident_events)
                     .where(incident_events.c.incident_id.in_(list(found)), incident_events.c.kind.in_(kinds))
                     .order_by(incident_events.c.id))
            with self.connect() as conn:
                for r in conn.execute(query):
                    found[r.incident_id].append(event_row(r))
        return [(inc, found[inc.id]) for inc in rows]

    def open_incidents(self) -> list[Incident]:
        """Incidents whose call has not ended (used to take calls over after a restart)."""
        return self._incidents(select(incidents).where(incidents.c.ended_at.is_(None)).order_by(incidents.c.id))

    def recent_incident_from(self, number: str, *, since: str) -> Incident | None:
        """The newest incident of a call from `number` that arrived since `since`."""
        query = (select(incidents).where(incidents.c.caller_number == number, incidents.c.arrived_at >= since)
                 .order_by(incidents.c.id.desc()).limit(1))
        found = self._incidents(query)
        return found[0] if found else None

    def incidents_between(self, start: str, end: str) -> list[Incident]:
        """Incidents that arrived in [start, end) (ISO times, UTC)."""
        return self._incidents(
            select(incidents).where(incidents.c.arrived_at >= start, incidents.c.arrived_at < end).order_by(incidents.c.id)
        )

    def prank_times(self, number: str, *, after: str) -> list[str]:
        """When calls from `number` were classified prank after `after`, newest first."""
        with self.connect() as conn:
            found = run(conn, _PRANK_TIMES, {"number": number, "after": after}).fetchall()
        return [str(r[0]) for r in found]

    def agency_answers(self, start: str, end: str) -> dict[int, str]:
        """When an agency's trunk first answered, per incident that arrived in [start, end)."""
        e, i = incident_events, incidents
        query = (select(e.c.incident_id, func.min(e.c.at)).join(i, i.c.id == e.c.incident_id)
                 .where(e.c.kind == "trunk_answered", i.c.arrived_at >= start, i.c.arrived_at < end)
                 .group_by(e.c.incident_id))
        with self.connect() as conn:
            return {int(r[0]): str(r[1]) for r in conn.execute(query)}

    def trunk_results(self, plan_id: str, limit: int = 2000) -> dict[tuple[str, str], dict[str, str]]:
        """The latest result of each agency trunk the app dialled (answered or failed, when, why),
        by (agency, trunk number), from the newest incident events of the plan's calls."""
        e, i = incident_events, incidents
        query = (select(e.c.kind, e.c.at, e.c.detail).join(i, i.c.id == e.c.incident_id)
                 .where(i.c.plan_id == plan_id, e.c.kind.in_(("trunk_answered", "trunk_failed")))
                 .order_by(e.c.id.desc()).limit(limit))
        out: dict[tuple[str, str], dict[str, str]] = {}
        with self.connect() as conn:
            rows: list[Any] = list(conn.execute(query))
            for kind, at, detail in rows:
                d = loads(str(detail))
                key = (d.get("agency", ""), d.get("trunk", ""))
                if key not in out:
                    out[key] = {"result": "answered" if kind == "trunk_answered" else "failed", "at": str(at), "cause": d.get("cause", "")}
        return out

    def learned(self, incident_ids: list[int]) -> dict[int, tuple[list[IncidentEvent], list[StoredLocation]]]:
        """What the menu learned of each call so far, in two queries: its choices (menu keys,
        kecamatan, silent help, language) and its positions, by incident id."""
        found: dict[int, tuple[list[IncidentEvent], list[StoredLocation]]] = {i: ([], []) for i in incident_ids}
        if not incident_ids:
            return found
        events = (select(incident_events)
                  .where(and_(incident_events.c.incident_id.in_(incident_ids), incident_events.c.kind.in_(LEARNED_KINDS)))
                  .order_by(incident_events.c.id))
        places = select(locations).where(locations.c.incident_id.in_(incident_ids)).order_by(locations.c.id)
        with self.connect() as conn:
            for r in conn.execute(events):
                found[r.incident_id][0].append(event_row(r))
            for r in conn.execute(places):
                found[r.incident_id][1].append(location_row(r._mapping))
        return found


def check_fields(fields: Mapping[str, Any]) -> None:
    """Refuse field names an incident does not have (a programming error, never retried)."""
    unknown = set(fields) - set(INCIDENT_FIELDS)
    if unknown:
        raise ValueError(f"unknown incident fields: {sorted(unknown)}")


def incident_row(row: Mapping[Any, Any]) -> Incident:
    fields: dict[str, Any] = {k: row.get(k) for k in INCIDENT_FIELDS}
    return Incident(**fields)


def event_row(r: Row[Any]) -> IncidentEvent:
    return IncidentEvent(r.incident_id, r.at, r.kind, loads(r.detail))
