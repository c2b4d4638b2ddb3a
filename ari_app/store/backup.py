"""A copy of the store taken while the app runs, and its return into an empty store.

SQLite: SQLite's online backup API into a new file (consistent while the app writes, WAL
included). PostgreSQL: Debian's `pg_dump` in its custom format (`-Fc`), put back with
`pg_restore` into an empty database. The password never goes on a command line (ps shows
those to every user): the tools get the URL without it and the password in PGPASSWORD.

`ivr112 store backup` writes one of these files; `ivr112 backup` puts one in its archive
beside the secrets and plans (ari_app/deploy/backup.py).
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import sqlite3
import subprocess
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

from psycopg.conninfo import make_conninfo
from sqlalchemy import exc, func, inspect, select
from sqlalchemy.engine import make_url

from ari_app.store import open_store, schema
from ari_app.store.engine import libpq_params, make_engine, resolve_url, safe_url
from ari_app.store.pg_server import BIN
from ivr.errors import Ivr112Error

# File endings of the two kinds of store backup.
SQLITE_SUFFIX, PG_SUFFIX = ".sqlite", ".pgdump"
TOOL_TIMEOUT_S = 3600.0


class BackupError(Ivr112Error):
    """A backup or restore that cannot be done; the message says why and what to do."""


@dataclass(frozen=True)
class StoreBackup:
    """A store backup written: its file, the engine it came from and the incidents in it."""

    path: Path
    engine: str
    incidents: int


def engine_of(url: str, data_dir: Path) -> str:
    """"sqlite" or "postgresql": the engine `store_url` names."""
    return "sqlite" if make_url(resolve_url(url, data_dir)).get_backend_name() == "sqlite" else "postgresql"


def where(url: str, data_dir: Path) -> str:
    """The store's URL as logs may show it (no password; the SQLite file when `url` is empty)."""
    return safe_url(url or resolve_url(url, data_dir))


def sqlite_path(url: str, data_dir: Path) -> Path:
    """The SQLite file of `store_url` (raises BackupError for a PostgreSQL store)."""
    parsed = make_url(resolve_url(url, data_dir))
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        raise BackupError(f"{where(url, data_dir)}: not a SQLite file")
    return Path(parsed.database)


def suffix_for(url: str, data_dir: Path) -> str:
    return SQLITE_SUFFIX if engine_of(url, data_dir) == "sqlite" else PG_SUFFIX


def backup_store(url: str, data_dir: Path, out_dir: Path) -> StoreBackup:
    """Write `ivr112-store-<UTC time>.sqlite` or `.pgdump` into `out_dir` (mode 0600); returns it."""
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M%S")
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"ivr112-store-{stamp}{suffix_for(url, data_dir)}"
    partial = path.with_name(path.name + ".part")
    try:
        incidents = dump_store(url, data_dir, partial)
        partial.chmod(0o600)  # the console's password hashes and every caller's number are in it
        partial.rename(path)
    finally:
        partial.unlink(missing_ok=True)
    return StoreBackup(path, engine_of(url, data_dir), incidents)


def dump_store(url: str, data_dir: Path, file: Path) -> int:
    """Write the store of `url` to `file` (SQLite online backup, or pg_dump -Fc); returns its incident count."""
    if engine_of(url, data_dir) == "sqlite":
        source = sqlite_path(url, data_dir)
        if not source.exists():
            raise BackupError(f"no store at {source}: nothing to back up (check data_dir / store_url)")
        with closing(sqlite3.connect(source)) as src, closing(sqlite3.connect(file)) as dst:
            src.backup(dst)  # consistent even while the app writes (WAL included)
            return int(dst.execute("select count(*) from incidents").fetchone()[0])
    count = incident_count(url, data_dir)
    if count is None:
        raise BackupError(f"{where(url, data_dir)} holds no ivr112 store: nothing to back up (check store_url)")
    _pg_tool("pg_dump", url, "--format=custom", "--no-owner", "--no-privileges", f"--file={file}")
    return count


def restore_store(file: Path, url: str, data_dir: Path, *, force: bool = False) -> int:
    """Put the backup `file` into the store of `url`, then migrate it to this release; returns
    its incident count. Refuses a store that already holds incidents unless `force`, and a
    backup of the other engine (`ivr112 store copy` moves a store between engines)."""
    kind = PG_SUFFIX if file.name.endswith(PG_SUFFIX) else SQLITE_SUFFIX
    if kind != suffix_for(url, data_dir):
        raise BackupError(
            f"file {file} is a {'PostgreSQL' if kind == PG_SUFFIX else 'SQLite'} backup and the store is "
            f"{where(url, data_dir)}: restore it into a store of its own engine, "
            "then `ivr112 store copy` it across")
    held = incident_count(url, data_dir)
    if held and not force:
        raise BackupError(f"{where(url, data_dir)} already holds {held} incident(s): restore into a fresh "
                          "data folder or an empty database, or give --force to replace it (stop the app first)")
    if kind == SQLITE_SUFFIX:
        target = sqlite_path(url, data_dir)
        target.parent.mkdir(parents=True, exist_ok=True)
        for wal in ("-wal", "-shm"):
            target.with_name(target.name + wal).unlink(missing_ok=True)
        shutil.copyfile(file, target)
    else:
        # --clean --if-exists: an empty store the app already made its tables in is replaced whole.
        _pg_tool("pg_restore", url, "--clean", "--if-exists", "--no-owner", "--no-privileges", "--single-transaction",
                 str(file))
    store = open_store(data_dir, url)  # the migrations bring an older backup up to date
    try:
        return len(store.recent(limit=10**9))
    finally:
        store.close()


def incident_count(url: str, data_dir: Path) -> int | None:
    """Incidents in the store of `url`; None when it has no store yet (no file, or no tables)."""
    if engine_of(url, data_dir) == "sqlite" and not sqlite_path(url, data_dir).exists():
        return None
    engine = make_engine(url, data_dir)
    try:
        with engine.connect() as conn:
            if not inspect(conn).has_table(schema.incidents.name):
                return None
            return int(conn.execute(select(func.count()).select_from(schema.incidents)).scalar_one())
    except exc.OperationalError as error:
        raise BackupError(f"{where(url, data_dir)} cannot be reached ({str(error.orig).strip()}): start the server, "
                          "or create the database first (`createdb --owner ivr112 ivr112`)") from None
    finally:
        engine.dispose()


def _pg_tool(name: str, url: str, *args: str) -> None:
    """Run pg_dump or pg_restore on the database of `url`, its password in the environment."""
    tool = BIN / name if (BIN / name).exists() else shutil.which(name)
    if tool is None:
        raise BackupError(f"{name} not found: install Debian's postgresql-client-15 (`apt-get install postgresql-client-15`)")
    # libpq's own keywords, as psycopg gets them: a store_url naming several hosts
    # (?host=A:5432&host=B:5432&target_session_attrs=read-write) reaches the same server.
    params = libpq_params(url)
    password = params.pop("password", None)
    env = dict(os.environ)
    if password is not None:
        env["PGPASSWORD"] = password
    cmd = [str(tool), *args, f"--dbname={make_conninfo('', **params)}"]
    try:
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=TOOL_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise BackupError(f"{name} on {safe_url(url)}: {exc}") from None
    if done.returncode != 0:
        raise BackupError(f"{name} on {safe_url(url)} failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
