"""`ivr112 install` and `ivr112 uninstall`: the steps that make this checkout a server's
service, as a list first (what `--dry-run` prints), then done in order.

With `--root DIR` the files go under DIR instead of / (a test, or a root being prepared
for another machine) and the steps that act on the running system (the system user,
ownership, systemctl) are only listed: they would act on this machine, not on DIR.
Uninstall removes the units and the logrotate rule; the settings and the data stay unless
`--purge` is given.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from ari_app.deploy.units import APP_UNIT, ASTERISK_UNIT, GUARD_UNIT, UNIT_DIR, USER, Paths, logrotate_rule, settings_file, unit_files
from ivr.errors import Ivr112Error

LOGROTATE = "/etc/logrotate.d/ivr112"
SERVICES = (ASTERISK_UNIT, APP_UNIT, GUARD_UNIT)


class InstallError(Ivr112Error):
    """A step failed; the message names it and what to do."""


@dataclass(frozen=True)
class Write:
    path: str
    text: str
    mode: int = 0o644
    keep: bool = False  # an existing file is left as it is (the operator's settings)

    def describe(self) -> str:
        return f"write {self.path} (mode {self.mode:04o}{', kept if present' if self.keep else ''})"


@dataclass(frozen=True)
class Folder:
    path: str
    mode: int
    owner: str = "root"

    def describe(self) -> str:
        return f"folder {self.path} (mode {self.mode:04o}, owner {self.owner})"


@dataclass(frozen=True)
class Remove:
    path: str
    tree: bool = False

    def describe(self) -> str:
        return f"remove {self.path}{' and everything in it' if self.tree else ''}"


@dataclass(frozen=True)
class Run:
    argv: tuple[str, ...]
    why: str

    def describe(self) -> str:
        return f"run {' '.join(self.argv)}  ({self.why})"


Step = Write | Folder | Remove | Run


def install_steps(paths: Paths, instance: str, *, user_exists: bool) -> list[Step]:
    """Everything `ivr112 install` does, in order."""
    ivr112 = (str(paths.project / ".venv/bin/ivr112"), "--config", str(paths.config))
    as_user = ("runuser", "-u", USER, "--")
    steps: list[Step] = []
    if not user_exists:
        steps.append(Run(("useradd", "--system", "--home-dir", str(paths.data_dir), "--no-create-home",
                          "--shell", "/usr/sbin/nologin", USER), "the app's system user"))
    steps += [
        Folder(str(paths.config_dir), 0o755),
        Folder(str(paths.data_dir), 0o750, USER),
        Write(str(paths.config), settings_file(paths), keep=True),
        *(Write(f"{UNIT_DIR}/{name}", text) for name, text in unit_files(paths, instance).items()),
        Write(LOGROTATE, logrotate_rule(paths, instance)),
        Run((*as_user, *ivr112, "secrets", "show"), "generate the secrets as the app's user (0600, readable by it)"),
        Run((*as_user, *ivr112, "prompts", "build"), "the prompts, as the app's user"),
        Run((*ivr112, "asterisk", "provision"), "the Debian sid root with Asterisk 22 (first time: about a minute)"),
        Run(("systemctl", "daemon-reload"), "read the new units"),
        Run(("systemctl", "enable", "--now", *SERVICES), "start at boot, and now"),
    ]
    return steps


def uninstall_steps(paths: Paths, *, purge: bool) -> list[Step]:
    """Everything `ivr112 uninstall` does; the data and settings only with `purge`."""
    steps: list[Step] = [
        Run(("systemctl", "disable", "--now", *SERVICES), "stop them and take them out of the boot"),
        *(Remove(f"{UNIT_DIR}/{name}") for name in SERVICES),
        Remove(LOGROTATE),
        Run(("systemctl", "daemon-reload"), "forget the units"),
    ]
    if purge:
        steps += [Remove(str(paths.data_dir), tree=True), Remove(str(paths.config_dir), tree=True),
                  Run(("userdel", USER), "the app's system user")]
    return steps


def user_exists() -> bool:
    try:
        pwd.getpwnam(USER)
    except KeyError:
        return False
    return True


def describe(steps: list[Step], root: Path) -> list[str]:
    """One line per step, as `--dry-run` prints them; under `root`, the system steps are marked."""
    lines = []
    for step in steps:
        line = step.describe()
        if root != Path("/") and isinstance(step, Run):
            line += "  [not run with --root]"
        elif root != Path("/") and not isinstance(step, Run):
            line = line.replace(" /", f" {root}/", 1)
        lines.append(line)
    return lines


def perform(steps: list[Step], root: Path) -> None:
    """Do the steps in order; with `root` other than /, files only. Raises InstallError."""
    system = root == Path("/")
    for step in steps:
        print(step.describe() if system or not isinstance(step, Run) else f"skipped (--root): {step.describe()}", flush=True)
        if isinstance(step, Run):
            if system:
                _run(step)
            continue
        target = root / step.path.lstrip("/")
        if isinstance(step, Folder):
            target.mkdir(parents=True, exist_ok=True)
            target.chmod(step.mode)
            if system and step.owner != "root":
                shutil.chown(target, step.owner, step.owner)
        elif isinstance(step, Write):
            if step.keep and target.exists():
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(target.name + ".new")
            tmp.write_text(step.text)
            tmp.chmod(step.mode)
            os.replace(tmp, target)
        elif step.tree:
            shutil.rmtree(target, ignore_errors=True)
        else:
            target.unlink(missing_ok=True)


def _run(step: Run) -> None:
    try:
        done = subprocess.run(step.argv, check=False)
    except FileNotFoundError:
        raise InstallError(f"{step.argv[0]} is not on this machine; it is needed to {step.why}") from None
    if done.returncode != 0:
        raise InstallError(f"`{' '.join(step.argv)}` failed (exit {done.returncode}) while trying to {step.why}; "
                           "see its message above, fix it and run the command again (every step can be repeated)")
