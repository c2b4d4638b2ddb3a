"""A backup restored into a new data folder is a server that runs: the old server's incidents,
backed up with `ivr112 backup` and put back with `ivr112 restore` into a folder that never
held a store, are what the app started on that folder (with a real Asterisk, the restored
secrets' passwords) lists in `/api/incidents`. Under `make test-pg` the old and new stores are PostgreSQL databases (the
archive then holds a pg_dump, put back with pg_restore)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from ari_app.store import open_store
from ivr.settings import PROJECT_DIR
from tests import pg
from tests.support.stacks import running_stack

pytestmark = pytest.mark.asterisk

CALLERS = ("081200000001", "081200000002", "081200000003")


def ivr112(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([sys.executable, "-m", "ari_app.cli", "--config", str(config), *args], capture_output=True,
                          text=True, cwd=PROJECT_DIR, check=False, timeout=120)
    assert done.returncode == 0, f"ivr112 {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
    return done


def settings_file(folder: Path, data: Path, store_url: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "ivr112.yaml"
    config.write_text(yaml.safe_dump({"data_dir": str(data), "instance": f"restore{folder.name}", "asterisk_root": str(folder / "root"),
                                      "store_url": store_url}))
    return config


def test_the_app_starts_on_a_restored_data_folder_and_lists_the_old_incidents(tmp_path_factory: pytest.TempPathFactory) -> None:
    tmp = tmp_path_factory.mktemp("restore")
    old_data = tmp / "old" / "data"
    old_url, new_url = (pg.fresh_database("restoreold"), pg.fresh_database("restorenew")) if pg.on_postgresql() else ("", "")
    store = open_store(old_data, old_url)
    opened = [store.open_incident(channel_id=f"old{i}", plan_id="kotim", caller_number=n, called_number="112")
              for i, n in enumerate(CALLERS)]
    store.close()
    made = ivr112(settings_file(tmp / "old", old_data, old_url), "backup", "-o", str(tmp / "backups"))
    archive = Path(made.stdout.split("backup written: ")[1].split()[0])

    new_data = tmp / "new" / "data"
    restored = ivr112(settings_file(tmp / "new", new_data, new_url), "restore", str(archive))
    assert "3 incident(s)" in restored.stdout

    with running_stack(tmp_path_factory, "restored", data_dir=str(new_data), store_url=new_url) as s:
        assert s.health().get("ari_connected")
        listed = s.api("/api/incidents")
        assert sorted((i["id"], i["caller_number"]) for i in listed) == sorted((i.id, i.caller_number) for i in opened)
    assert s.settings.data_path == new_data  # the app ran on the restored folder, not a fresh one of the stack's
