"""The store of every call's record, on SQLite (embedded, the default) or PostgreSQL (one
store for several app nodes), chosen by the `store_url` setting. Each query is written
once in SQLAlchemy Core and runs on both engines.

One module per table group, combined here into `IncidentStore` (synchronous; under
asyncio the app reaches it through `AsyncStore`, one writer thread that keeps and spools
writes while the store is down). `schema.py` holds the tables, `migrations.py` their
numbered, idempotent migrations, `engine.py` the URL and which errors are faults.
"""

from __future__ import annotations

from pathlib import Path

from ari_app.store.agency_outbox import AgencyOutboxTables
from ari_app.store.aml import AmlTables
from ari_app.store.callbacks import CallbackTables
from ari_app.store.cells import CellTables
from ari_app.store.console import ConsoleTables
from ari_app.store.engine import make_engine, safe_url
from ari_app.store.incidents import IncidentTables
from ari_app.store.locations import LocationTables
from ari_app.store.migrations import StoreTooNew, migrate
from ari_app.store.operators import OperatorTables
from ari_app.store.texts import TextTables

__all__ = ["IncidentStore", "StoreTooNew", "open_store"]


class IncidentStore(IncidentTables, LocationTables, CallbackTables, OperatorTables, ConsoleTables, CellTables, AmlTables,
                    TextTables, AgencyOutboxTables):
    """Every table group over one engine. Not thread-safe by design: one writer thread uses it."""

    @property
    def engine_name(self) -> str:
        """"sqlite" or "postgresql"."""
        return self.engine.dialect.name

    @property
    def where(self) -> str:
        """The store's URL without its password, for logs."""
        return safe_url(self.engine.url.render_as_string(hide_password=False))


def open_store(data_dir: Path, url: str = "") -> IncidentStore:
    """Open (and migrate) the store of `url`; empty is the SQLite file in `data_dir`.

    Raises StoreTooNew for a store migrated by a newer ivr112; engine errors for a store that
    cannot be reached (see engine.is_store_fault)."""
    engine = make_engine(url, data_dir)
    try:
        migrate(engine)
    except BaseException:
        engine.dispose()
        raise
    return IncidentStore(engine)
