"""Retention: positions and recordings of a call are personal data (UU 27/2022) and are
deleted `retention_days` after the call; the incident row itself stays for the figures.
On a cluster node, Asterisk's own record of its calls (CEL, `ivr112_cel`) is pruned too:
each row the sweeper can never need again, a day after it was written
(ari_app/cluster/sweep.py prune_cel says which rows and why that is safe).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from ari_app.asterisk import cel
from ari_app.asterisk.layout import Layout
from ari_app.cluster.sweep import prune_cel
from ari_app.store import IncidentStore, open_store
from ivr.settings import Settings

log = logging.getLogger(__name__)
# How long every CEL row stays, needed or not: a day of Asterisk's record for a person looking
# into a recent call. The sweeper's need is not bounded by time (prune_cel keeps those rows).
CEL_KEPT = timedelta(days=1)


def purge_store(store: IncidentStore, settings: Settings) -> tuple[int, int]:
    """Delete what is past its time; returns positions and recording files deleted."""
    before = (datetime.now(UTC) - timedelta(days=settings.retention_days)).isoformat(timespec="milliseconds")
    gone, paths = store.purge(before=before)
    layout = Layout(settings.root_path, settings.instance)
    files = 0
    for path in paths:
        host = layout.host(path)
        try:
            host.unlink()
            files += 1
        except FileNotFoundError:
            pass
        except OSError as exc:
            log.error("recording %s past retention could not be deleted: %s", host, exc)
    if gone or files:
        log.info("retention: %d position(s) and %d recording file(s) older than %d days deleted", gone, files, settings.retention_days)
    if cel.enabled(settings):
        rows = prune_cel(store, before=datetime.now(UTC) - CEL_KEPT)
        if rows:
            log.info("retention: %d row(s) of Asterisk's call record (%s) older than a day deleted", rows, cel.TABLE)
    return gone, files


def purge(settings: Settings) -> tuple[int, int]:
    store = open_store(settings.data_path, settings.store_url)
    try:
        return purge_store(store, settings)
    finally:
        store.close()
