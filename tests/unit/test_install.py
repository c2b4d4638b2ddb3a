"""`ivr112 install` / `uninstall` into a temporary root: the dry run lists every file and
writes none, the install writes the settings, the three units and the logrotate rule,
systemd's own checker accepts the units, a second install keeps the operator's settings,
and uninstall keeps the data unless asked. (The steps that act on this machine, the user
and systemctl, are listed, never run, under --root; see docs/operations.md.)"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ivr.settings import PROJECT_DIR

FILES = ("etc/ivr112/ivr112.yaml", "etc/systemd/system/ivr112-asterisk.service", "etc/systemd/system/ivr112.service",
         "etc/systemd/system/ivr112-guard.service", "etc/logrotate.d/ivr112")


def ivr112(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ari_app.cli", *args], capture_output=True, text=True, cwd=PROJECT_DIR,
                          check=False, timeout=60)


def verify(*units: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["systemd-analyze", "verify", *map(str, units)], capture_output=True, text=True, check=False, timeout=60)


def test_the_dry_run_lists_every_file_and_step_and_writes_nothing(tmp_path: Path) -> None:
    done = ivr112("install", "--dry-run", "--root", str(tmp_path))
    assert done.returncode == 0, done.stderr
    for name in FILES:
        assert f"write {tmp_path}/{name} (mode 0644" in done.stdout, done.stdout
    assert f"folder {tmp_path}/var/lib/ivr112 (mode 0750, owner ivr112)" in done.stdout
    assert "run systemctl enable --now ivr112-asterisk.service ivr112.service ivr112-guard.service" in done.stdout
    assert list(tmp_path.iterdir()) == []


def test_the_install_writes_units_systemd_accepts_and_keeps_the_operators_settings(tmp_path: Path) -> None:
    done = ivr112("install", "--root", str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert "skipped (--root): run systemctl daemon-reload" in done.stdout
    for name in FILES:
        assert (tmp_path / name).is_file(), name
    app = (tmp_path / FILES[2]).read_text()
    assert "User=ivr112" in app and "Restart=always" in app and "After=network-online.target ivr112-asterisk.service" in app
    assert "NoNewPrivileges=yes" in app and "ProtectSystem=strict" in app and "PrivateTmp=yes" in app
    assert "data_dir: /var/lib/ivr112" in (tmp_path / FILES[0]).read_text()
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed; the units were written but not verified")
    units = [tmp_path / name for name in FILES[1:4]]
    checked = verify(*units)
    assert checked.returncode == 0, checked.stderr
    broken = tmp_path / "broken.service"  # the checker is not a formality: it refuses a bad unit
    broken.write_text("[Service]\nExecStart=relative/path\n")
    assert verify(broken).returncode != 0

    (tmp_path / FILES[0]).write_text("data_dir: /srv/kotim\n")
    assert ivr112("install", "--root", str(tmp_path)).returncode == 0
    assert (tmp_path / FILES[0]).read_text() == "data_dir: /srv/kotim\n"


def test_uninstall_keeps_the_data_unless_asked(tmp_path: Path) -> None:
    assert ivr112("install", "--root", str(tmp_path)).returncode == 0
    store = tmp_path / "var/lib/ivr112/ivr112.sqlite"
    store.write_bytes(b"the regency's calls")
    done = ivr112("uninstall", "--root", str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert not (tmp_path / FILES[2]).exists() and not (tmp_path / FILES[4]).exists()
    assert store.read_bytes() == b"the regency's calls" and (tmp_path / FILES[0]).exists()
    assert "kept: /etc/ivr112 and /var/lib/ivr112" in done.stdout
    assert ivr112("uninstall", "--purge", "--root", str(tmp_path)).returncode == 0
    assert not store.exists() and not (tmp_path / "etc/ivr112").exists()
