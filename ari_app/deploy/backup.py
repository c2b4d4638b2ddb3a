"""`ivr112 backup` and `ivr112 restore`: one dated archive holding what a server cannot
make again (the store, taken while the app runs: SQLite's online backup, or pg_dump for a
PostgreSQL store (ari_app/store/backup.py); the generated secrets; the TLS folder with its
local CAs; the plans; optionally the recordings), and its return into a fresh data folder
(and an empty store of the same engine), where the store's migrations then bring it to
this release's shape.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ari_app.asterisk.layout import Layout
from ari_app.store.backup import PG_SUFFIX, SQLITE_SUFFIX, BackupError, dump_store, restore_store, suffix_for
from ivr.settings import Settings

SECRETS, TLS, PLANS, RECORDINGS, MANIFEST = "secrets.yaml", "tls", "plans", "recordings", "manifest.json"
# The store's name in the archive: the SQLite file, or pg_dump's custom-format file.
STORES = {SQLITE_SUFFIX: "ivr112.sqlite", PG_SUFFIX: "ivr112.pgdump"}

__all__ = ["BackupError", "Restored", "backup", "restore"]


@dataclass(frozen=True)
class Restored:
    incidents: int
    plans: Path


def backup(settings: Settings, out_dir: Path, *, recordings: bool = False) -> Path:
    """Write `ivr112-backup-<UTC time>.tar.gz` into `out_dir`; returns its path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M%S")
    archive = out_dir / f"ivr112-backup-{stamp}.tar.gz"
    with tempfile.TemporaryDirectory(prefix="ivr112-backup-") as tmp:
        store_name = STORES[suffix_for(settings.store_url, settings.data_path)]
        copy = Path(tmp) / store_name
        count = dump_store(settings.store_url, settings.data_path, copy)
        manifest = {"made_at": stamp, "incidents": count, "recordings": recordings, "store": store_name,
                    "plans": [p.name for p in settings.plan_paths]}
        (Path(tmp) / MANIFEST).write_text(json.dumps(manifest, indent=2))
        partial = archive.with_name(archive.name + ".part")
        with tarfile.open(partial, "w:gz") as tar:
            tar.add(Path(tmp) / MANIFEST, MANIFEST)
            tar.add(copy, store_name)
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
    """Put `archive` into this data folder and store (recordings into the instance's folder);
    refuses a store that already holds incidents unless `force` (ari_app/store/backup.py)."""
    data = settings.data_path
    data.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        tar = tarfile.open(archive, "r:gz")
    except (OSError, tarfile.TarError) as exc:
        raise BackupError(f"file {archive}: not an ivr112 backup ({exc})") from None
    with tar, tempfile.TemporaryDirectory(prefix="ivr112-restore-", dir=data) as tmp:
        tar.extractall(tmp, filter="data")
        unpacked = Path(tmp)
        store_name = next((name for name in STORES.values() if (unpacked / name).exists()), None)
        if not (unpacked / MANIFEST).exists() or store_name is None:
            raise BackupError(f"file {archive}: no {MANIFEST} or store ({' or '.join(STORES.values())}) in it; "
                              "is it made by `ivr112 backup`?")
        # The store first: when it is refused, nothing of the data folder has changed.
        incidents = restore_store(unpacked / store_name, settings.store_url, data, force=force)
        for name in (SECRETS, TLS, PLANS):
            if (unpacked / name).exists():
                shutil.rmtree(data / name, ignore_errors=True) if (data / name).is_dir() else (data / name).unlink(missing_ok=True)
                shutil.move(unpacked / name, data / name)
        if (unpacked / RECORDINGS).exists():
            layout = Layout(settings.root_path, settings.instance)
            shutil.copytree(unpacked / RECORDINGS, layout.host(layout.recordings), dirs_exist_ok=True)
    return Restored(incidents, data / PLANS)
