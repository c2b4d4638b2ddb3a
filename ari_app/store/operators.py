"""The operators' log: one line per log in or out, pause, answered or completed call."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from ari_app.store.base import Tables, dumps, loads
from ari_app.store.schema import operator_log
from ivr.store import now


class OperatorTables(Tables):
    def log_operator(self, operator: str, action: str, detail: dict[str, Any] | None = None, *, at: str | None = None) -> None:
        """One line of the operators' log: log in/out, pause, answered, completed..."""
        with self.begin() as conn:
            conn.execute(operator_log.insert().values(at=at or now(), operator=operator, action=action, detail=dumps(detail or {})))

    def operator_log(self, operator: str | None = None, *, limit: int = 200) -> list[dict[str, Any]]:
        """The newest lines (of one operator, or all), newest first, as the API sends them."""
        query = select(operator_log).order_by(operator_log.c.id.desc()).limit(limit)
        if operator:
            query = query.where(operator_log.c.operator == operator)
        with self.connect() as conn:
            return [{**r._mapping, "detail": loads(r.detail)} for r in conn.execute(query)]
