"""The callback list's rows (one per number) and the supervisors' prank clears; the rules
that move an entry between open, calling and closed are the core's (`ivr.callbacks`)."""

from __future__ import annotations

import dataclasses

from sqlalchemy import select

from ari_app.store.base import Tables, upsert
from ari_app.store.schema import callbacks, number_clears
from ivr.callbacks import CLOSED, Callback
from ivr.store import NumberClear, now


class CallbackTables(Tables):
    def callback(self, number: str) -> Callback | None:
        """The number's entry on the callback list, or None."""
        with self.engine.connect() as conn:
            row = conn.execute(select(callbacks).where(callbacks.c.number == number)).first()
        return Callback(**row._mapping) if row else None

    def save_callback(self, entry: Callback) -> None:
        """Write the number's entry whole (new, or replacing the one there)."""
        with self.engine.begin() as conn:
            upsert(conn, callbacks, dataclasses.asdict(entry), keys=["number"])

    def callbacks(self, *, include_closed: bool = False, limit: int = 200) -> list[Callback]:
        """Entries, newest call first; closed ones only with `include_closed`."""
        query = select(callbacks).order_by(callbacks.c.last_call_at.desc()).limit(limit)
        if not include_closed:
            query = query.where(callbacks.c.status != CLOSED)
        with self.engine.connect() as conn:
            return [Callback(**r._mapping) for r in conn.execute(query)]

    def number_clear(self, number: str) -> NumberClear | None:
        """When a supervisor last lifted the number's prank flag, or None."""
        with self.engine.connect() as conn:
            row = conn.execute(select(number_clears).where(number_clears.c.number == number)).first()
        return NumberClear(**row._mapping) if row else None

    def clear_number(self, number: str, *, by: str) -> None:
        """A supervisor lifts the number's prank flag now."""
        with self.engine.begin() as conn:
            upsert(conn, number_clears, {"number": number, "cleared_at": now(), "cleared_by": by}, keys=["number"])
