"""`ivr112 backup` and `ivr112 restore`: one dated archive holding what a server cannot
make again (the SQLite store, taken with SQLite's online backup so the app may keep
running; the generated secrets; the TLS folder with its local CAs; the plans; optionally
the recordings), and its return into a fresh data folder, where the store's migrations
then bring it to this release's shape.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import sqlite3
import tarfile
import tempfile
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

from ari_app.asterisk.layout import Layout
from ari_app.store import open_store
from ari_app.store.engine import make_engine
from ivr.errors import Ivr112Error
from ivr.settings import Settings

STORE, SECRETS, TLS, PLANS, RECORDINGS, MANIFEST = "ivr112.sqlite", "secrets.yaml", "tls", "plans", "recordings", "manifest.json"


class BackupError(Ivr112Error):
    """A backup or restore that cannot be done; the message says why and what to do."""


@dataclass(frozen=True)
class Restored:
    incidents: int
    plans: Path


def _sqlite_file(settings: Settings) -> Path:
    engine = make_engine(settings.store_url, settings.data_path)
    try:
        if engine.dialect.name != "sqlite" or not engine.url.database:
            raise BackupError("the store is PostgreSQL: back it up with pg_dump (docs/store.md); "
                              "`ivr112 backup` takes the SQLite store only")
        return Path(engine.url.database)
    finally:
        engine.dispose()


def backup(settings: Settings, out_dir: Path, *, recordings: bool = False) -> Path:
    """Write `ivr112-backup-<UTC time>.tar.gz` into `out_dir`; returns its path."""
    source = _sqlite_file(settings)
    if not source.exists():
        raise BackupError(f"no store at {source}: nothing to back up (check data_dir / store_url)")
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M%S")
    archive = out_dir / f"ivr112-backup-{stamp}.tar.gz"
    with tempfile.TemporaryDirectory(prefix="ivr112-backup-") as tmp:
        copy = Path(tmp) / STORE
        with closing(sqlite3.connect(source)) as src, closing(sqlite3.connect(copy)) as dst:
            src.backup(dst)  # consistent even while the app writes (WAL included)
            count = int(dst.execute("select count(*) from incidents").fetchone()[0])
        manifest = {"made_at": stamp, "incidents": count, "recordings": recordings, "plans": [p.name for p in settings.plan_paths]}
        (Path(tmp) / MANIFEST).write_text(json.dumps(manifest, indent=2))
        partial = archive.with_name(archive.name + ".part")
        with tarfile.open(partial, "w:gz") as tar:
            tar.add(Path(tmp) / MANIFEST, MANIFEST)
            tar.add(copy, STORE)
            for name in (SECRETS, TLS):
                if (settings.data_path / name).exists():
                    tar.add(settings.data_path / name, name)
            for plan in settings.plan_paths:
                tar.add(plan, f"{PLANS}/{plan.name}")
            if recordings:
                layout = Layout(settings.root_path, settings.instance)
                folder = layout.host(layout.recordings)
                if folder.exists():
                    tar.add(folder, RECORDINGS)
        partial.chmod(0o600)  # it holds the secrets
        partial.rename(archive)
    return archive


def restore(settings: Settings, archive: Path, *, force: bool = False) -> Restored:
    """Put `archive` into this data folder (and recordings into the instance's folder);
    refuses a data folder that already holds a store unless `force`."""
    target = _sqlite_file(settings)
    if target.exists() and not force:
        raise BackupError(f"{target} exists: restore into a fresh data folder, or give --force to replace it "
                          "(stop the app first)")
    data = settings.data_path
    data.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        tar = tarfile.open(archive, "r:gz")
    except (OSError, tarfile.TarError) as exc:
        raise BackupError(f"file {archive}: not an ivr112 backup ({exc})") from None
    with tar, tempfile.TemporaryDirectory(prefix="ivr112-restore-", dir=data) as tmp:
        tar.extractall(tmp, filter="data")
        unpacked = Path(tmp)
        if not (unpacked / MANIFEST).exists() or not (unpacked / STORE).exists():
            raise BackupError(f"file {archive}: no {MANIFEST} or {STORE} in it; is it made by `ivr112 backup`?")
        for wal in (".sqlite-wal", ".sqlite-shm"):
            target.with_name(target.stem + wal).unlink(missing_ok=True)
        shutil.move(unpacked / STORE, target)
        for name in (SECRETS, TLS, PLANS):
            if (unpacked / name).exists():
                shutil.rmtree(data / name, ignore_errors=True) if (data / name).is_dir() else (data / name).unlink(missing_ok=True)
                shutil.move(unpacked / name, data / name)
        if (unpacked / RECORDINGS).exists():
            layout = Layout(settings.root_path, settings.instance)
            shutil.copytree(unpacked / RECORDINGS, layout.host(layout.recordings), dirs_exist_ok=True)
    store = open_store(data, settings.store_url)  # the migrations bring an older backup up to date
    try:
        return Restored(len(store.recent(limit=10**9)), data / PLANS)
    finally:
        store.close()
