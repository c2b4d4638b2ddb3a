"""A backup restored at least once: the incidents of one data folder, backed up with the
command, come back in a fresh one with the secrets and the plans, and a restore never
overwrites a store by accident."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

from ari_app.store import open_store
from ivr.secrets import load_or_create
from ivr.settings import PROJECT_DIR


def ivr112(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ari_app.cli", "--config", str(config), *args], capture_output=True,
                          text=True, cwd=PROJECT_DIR, check=False, timeout=60)


def server(tmp: Path, name: str) -> tuple[Path, Path]:
    data = tmp / name / "data"
    config = tmp / name / "ivr112.yaml"
    config.parent.mkdir()
    config.write_text(yaml.safe_dump({"data_dir": str(data), "instance": f"backup{name}", "asterisk_root": str(tmp / "root")}))
    return config, data


def test_a_backup_restored_into_a_fresh_data_folder_has_the_same_incidents(tmp_path: Path) -> None:
    old_config, old_data = server(tmp_path, "old")
    store = open_store(old_data)
    for i in range(3):
        store.open_incident(channel_id=f"c{i}", plan_id="kotim", caller_number=f"08120000{i}", called_number="112")
    store.close()
    secret = load_or_create(old_data).console_secret
    made = ivr112(old_config, "backup", "-o", str(tmp_path / "backups"))
    assert made.returncode == 0, made.stderr
    archive = Path(made.stdout.split("backup written: ")[1].split()[0])
    assert archive.name.startswith("ivr112-backup-") and archive.stat().st_mode & 0o077 == 0

    new_config, new_data = server(tmp_path, "new")
    done = ivr112(new_config, "restore", str(archive))
    assert done.returncode == 0, done.stderr
    assert "3 incident(s)" in done.stdout
    listed = ivr112(new_config, "incidents").stdout
    assert all(f"08120000{i}" in listed for i in range(3)), listed
    assert load_or_create(new_data).console_secret == secret
    assert (new_data / "plans" / "kotim.yaml").is_file()

    again = ivr112(new_config, "restore", str(archive))
    assert again.returncode == 1 and "already holds 3 incident(s): restore into a fresh data folder" in again.stderr
