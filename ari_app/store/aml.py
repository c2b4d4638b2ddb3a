"""The AML inbox: every Advanced Mobile Location message the carriers' gateways sent,
kept until an incident of the same number takes it (it may come before the call is answered)."""

from __future__ import annotations

import dataclasses
from typing import Any

from sqlalchemy import bindparam, select

from ari_app.store.base import Tables, dumps, loads, run
from ari_app.store.schema import aml_inbox
from ivr.location import Location
from ivr.store import now

RAW_KEPT = 2000  # characters of a message's raw text kept beside what was read from it
# The call path's read, built once (base.run).
_UNMATCHED = (select(aml_inbox.c.id, aml_inbox.c.location)
              .where(aml_inbox.c.number == bindparam("number"), aml_inbox.c.received_at >= bindparam("since"),
                     aml_inbox.c.incident_id.is_(None))
              .order_by(aml_inbox.c.id))


class AmlTables(Tables):
    def add_aml(self, *, gateway: str, number: str, kind: str, location: Location | None, raw: str, incident_id: int | None) -> int:
        """Keep one AML message; returns its row id."""
        row = {"received_at": now(), "gateway": gateway, "number": number, "kind": kind,
               "location": dumps(dataclasses.asdict(location)) if location else None, "incident_id": incident_id, "raw": raw[:RAW_KEPT]}
        with self.begin() as conn:
            return int(conn.execute(aml_inbox.insert().values(**row).returning(aml_inbox.c.id)).scalar_one())

    def unmatched_aml(self, number: str, *, since: str) -> list[tuple[int, Location]]:
        """AML messages from `number` since `since` not yet on an incident (they came first)."""
        out = []
        with self.connect() as conn:
            rows: list[Any] = list(run(conn, _UNMATCHED, {"number": number, "since": since}).fetchall())
            for aml_id, location in rows:
                if location:
                    data = loads(location)
                    data["polygon"] = tuple(tuple(p) for p in data.get("polygon", ()))
                    out.append((int(aml_id), Location(**data)))
        return out

    def match_aml(self, aml_id: int, incident_id: int) -> None:
        """The AML message belongs to this incident."""
        with self.begin() as conn:
            conn.execute(aml_inbox.update().where(aml_inbox.c.id == aml_id).values(incident_id=incident_id))

    def aml_locations(self) -> list[dict[str, object]]:
        """Every position read from an AML message, oldest first (for audits and tests)."""
        query = select(aml_inbox.c.location).where(aml_inbox.c.location.is_not(None)).order_by(aml_inbox.c.id)
        with self.connect() as conn:
            texts: list[Any] = list(conn.execute(query).scalars())
        return [loads(t) for t in texts]
