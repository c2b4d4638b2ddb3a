"""The callback list's rows (one per number) and the supervisors' prank clears; the rules
that move an entry between open, calling and closed are the core's (`ivr.callbacks`).

Several app nodes may share the store: each change of an entry is one read-modify-write
under a lock (`change_callback`), so two nodes changing one entry at once (two missed
calls from one number, an operator starting a callback while another call is missed)
both land, one after the other.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from sqlalchemy import bindparam, select, update

from ari_app.store.base import Tables, insert_once, locked, row, run, upsert
from ari_app.store.schema import callbacks, number_clears
from ivr.callbacks import CLOSED, Callback
from ivr.store import NumberClear, now

# The call path's statements, built once (base.run).
_BY_NUMBER = select(callbacks).where(callbacks.c.number == bindparam("by_number"))
_LOCK_NUMBER = _BY_NUMBER.with_for_update()
_CHANGE = update(callbacks).where(callbacks.c.number == bindparam("by_number"))  # SET: the entry's fields
_CLEAR = select(number_clears).where(number_clears.c.number == bindparam("by_number"))


class CallbackTables(Tables):
    def callback(self, number: str) -> Callback | None:
        """The number's entry on the callback list, or None."""
        with self.connect() as conn:
            found = row(conn, _BY_NUMBER, {"by_number": number})
        return Callback(**found) if found else None

    def change_callback(self, number: str, change: Callable[[Callback | None], Callback | None]) -> Callback | None:
        """Read the number's entry locked against every other writer (a row lock on
        PostgreSQL, the write lock on SQLite), pass it (or None) to `change`, and write the
        entry it returns; returns that entry, or None when `change` returned None (nothing
        written). An error raised by `change` writes nothing."""
        with locked(self) as conn:
            for _attempt in range(3):
                found = row(conn, _LOCK_NUMBER, {"by_number": number})
                current = Callback(**found) if found else None
                entry = change(current)
                if entry is None:
                    return None
                values = dataclasses.asdict(entry)
                if current is not None:
                    run(conn, _CHANGE, {"by_number": number, **values})
                    return entry
                # No row to lock yet: the first insert wins; a node that lost the race reads
                # the winner's row (now committed and locked for it) and changes that.
                if insert_once(conn, callbacks, values, keys=["number"]):
                    return entry
        # Only if the row another node inserted was deleted again at once, twice: never in this app.
        raise RuntimeError(f"callback entry of {number} could not be locked: it kept appearing and vanishing")

    def callbacks(self, *, include_closed: bool = False, limit: int = 200) -> list[Callback]:
        """Entries, newest call first; closed ones only with `include_closed`."""
        query = select(callbacks).order_by(callbacks.c.last_call_at.desc()).limit(limit)
        if not include_closed:
            query = query.where(callbacks.c.status != CLOSED)
        with self.connect() as conn:
            return [Callback(**r._mapping) for r in conn.execute(query)]

    def number_clear(self, number: str) -> NumberClear | None:
        """When a supervisor last lifted the number's prank flag, or None."""
        with self.connect() as conn:
            found = row(conn, _CLEAR, {"by_number": number})
        return NumberClear(**found) if found else None

    def clear_number(self, number: str, *, by: str) -> None:
        """A supervisor lifts the number's prank flag now."""
        with self.begin() as conn:
            upsert(conn, number_clears, {"number": number, "cleared_at": now(), "cleared_by": by}, keys=["number"])
