"""The cell table: where each serving cell of the regency's carriers is (radio, MCC, MNC,
area, cell id), loaded whole from a carrier's or OpenCelliD's file."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, func, select

from ari_app.store.base import Tables
from ari_app.store.schema import cells


class CellTables(Tables):
    def put_cells(self, rows: list[dict[str, Any]]) -> int:
        """Replace the cell table with `rows` (key, radio, mcc, mnc, area, cell, latitude, longitude, radius_m, name)."""
        unique = list({r["key"]: r for r in rows}.values())  # the last row of a key wins, as a replace did
        with self.begin() as conn:
            conn.execute(delete(cells))
            if unique:
                conn.execute(cells.insert(), unique)
        return len(rows)

    def cell(self, key: str) -> dict[str, Any] | None:
        """The cell's row (as a dict: locating reads its columns), or None."""
        with self.connect() as conn:
            row = conn.execute(select(cells).where(cells.c.key == key)).first()
        return dict(row._mapping) if row else None

    def cell_count(self) -> int:
        """How many cells the table holds."""
        with self.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(cells)).scalar_one())
