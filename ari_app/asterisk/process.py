"""Start, stop and ask the local Asterisk instance, by the pid it was started with.

`up()` prepares the instance folder (rendered config, prompts), starts `asterisk -f` inside
the root and returns only once `core waitfullybooted` answers; on a timeout it says where
the log is. `down()` stops exactly the process it started (pid file), never by name.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from ari_app.asterisk import provision, webrtc
from ari_app.asterisk.layout import Layout
from ari_app.asterisk.render import render, write_rendered
from ivr.errors import AsteriskError
from ivr.plan import PlanSet
from ivr.prompts import PromptFile
from ivr.secrets import Secrets
from ivr.settings import Settings

log = logging.getLogger(__name__)

CLI_TIMEOUT = 15.0
STOP_TIMEOUT = 10.0
POLL = 0.2


@dataclass(frozen=True)
class Status:
    running: bool
    pid: int | None
    version: str
    detail: str


def _asterisk_ids(root: Path) -> tuple[int, int]:
    """uid and gid of the `asterisk` user inside the root (Asterisk drops to it).

    (-1, -1), meaning "leave the owner", where the root holds no Asterisk (a container
    whose Asterisk lives in another image and takes ownership itself).
    """
    try:
        for line in (root / "etc/passwd").read_text().splitlines():
            parts = line.split(":")
            if parts[0] == "asterisk":
                return int(parts[2]), int(parts[3])
    except OSError:
        pass
    return -1, -1


def cli(layout: Layout, command: str, *, timeout: float = CLI_TIMEOUT) -> subprocess.CompletedProcess[str]:
    """Run one Asterisk CLI command against the instance (asterisk -rx)."""
    cmd = provision.privileged() + ["chroot", str(layout.root), "asterisk", "-C", layout.config_file, "-rx", command]
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return subprocess.CompletedProcess(cmd, 124, "", f"'{command}' got no answer in {timeout:.0f} s")


def read_pid(layout: Layout) -> int | None:
    try:
        pid = int(layout.pidfile.read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if alive(pid) else None


def alive(pid: int) -> bool:
    """Whether the process `pid` still runs (a zombie does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child of ours counts as gone.
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split()[2] != "Z"
    except OSError:
        return True


def prepare(settings: Settings, secrets: Secrets, plans: PlanSet, prompt_files: list[PromptFile], layout: Layout) -> None:
    """Write the instance folder: rendered config, prompt files, empty run/log/spool folders."""
    uid, gid = _asterisk_ids(layout.root)
    for inner in (layout.inner, layout.etc, layout.run, layout.log, layout.lib, layout.spool, layout.recordings,
                  layout.texts_journal, layout.sounds):
        path = layout.host(inner)
        path.mkdir(parents=True, exist_ok=True)
        os.chown(path, uid, gid)
    write_rendered(render(settings, secrets, plans, layout), layout.host(layout.etc))
    for f in layout.host(layout.etc).iterdir():
        os.chown(f, -1, gid)
    webrtc.install(settings, layout, gid)
    sounds = layout.host(layout.sounds)
    write_beep(layout.host(layout.beep + ".wav"))
    for pf in prompt_files:
        target = sounds / pf.plan_id / pf.language / f"{pf.name}.wav"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(pf.path, target)
        target.chmod(0o644)


BEEP_HZ = 1000
BEEP_SECONDS = 0.4


def write_beep(path: Path) -> None:
    """An 8 kHz mono 16-bit sine beep, the tone after which a caller speaks."""
    import math
    import struct
    import wave

    rate = 8000
    frames = b"".join(
        struct.pack("<h", int(12000 * math.sin(2 * math.pi * BEEP_HZ * i / rate))) for i in range(int(rate * BEEP_SECONDS))
    )
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(frames)


def start(layout: Layout, *, boot_timeout: float) -> int:
    """Start Asterisk in the background and wait until it is fully booted; return its pid."""
    running = read_pid(layout)
    if running:
        raise AsteriskError(
            f"Asterisk instance '{layout.instance}' already runs (pid {running}); `ivr112 asterisk down` stops it"
        )
    layout.console_log.parent.mkdir(parents=True, exist_ok=True)
    cmd = provision.privileged() + ["chroot", str(layout.root), "asterisk", "-f", "-C", layout.config_file]
    with layout.console_log.open("ab") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    layout.pidfile.write_text(f"{proc.pid}\n")
    deadline = time.monotonic() + boot_timeout
    while True:
        if proc.poll() is not None:
            raise AsteriskError(f"Asterisk exited at start (code {proc.returncode}); see {layout.console_log} and {layout.messages_log}")
        if layout.host(f"{layout.run}/asterisk.ctl").exists():
            res = cli(layout, "core waitfullybooted", timeout=max(1.0, deadline - time.monotonic()))
            if res.returncode == 0:
                log.info("Asterisk instance '%s' is fully booted (pid %d)", layout.instance, proc.pid)
                return proc.pid
        if time.monotonic() > deadline:
            stop(layout)
            raise AsteriskError(
                f"Asterisk did not finish booting in {boot_timeout:.0f} s; see {layout.console_log}; "
                "raise asterisk_boot_timeout if this machine is slow"
            )
        time.sleep(POLL)


def stop(layout: Layout) -> bool:
    """Stop the instance's Asterisk (the pid it was started with); return False if none ran."""
    pid = read_pid(layout)
    if pid is None:
        layout.pidfile.unlink(missing_ok=True)
        return False
    # An Asterisk still booting has no CLI yet: SIGTERM at once rather than wait for nothing.
    sent_term = cli(layout, "core stop now", timeout=5.0).returncode != 0
    if sent_term:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + (STOP_TIMEOUT / 2 if sent_term else STOP_TIMEOUT)
    while alive(pid):
        reap(pid)
        if time.monotonic() > deadline:
            if sent_term:
                os.kill(pid, signal.SIGKILL)
                break
            os.kill(pid, signal.SIGTERM)
            sent_term = True
            deadline = time.monotonic() + STOP_TIMEOUT / 2
        time.sleep(POLL / 2)
    reap(pid)
    layout.pidfile.unlink(missing_ok=True)
    log.info("Asterisk instance '%s' stopped (pid %d)", layout.instance, pid)
    return True


def reap(pid: int) -> None:
    """Collect `pid`'s exit status if it is a child of ours that ended (else nothing)."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def status(layout: Layout) -> Status:
    version = provision.asterisk_version(layout.root)
    if not provision.is_ready(layout.root):
        return Status(False, None, "", f"no Asterisk root at {layout.root}; `ivr112 asterisk up` makes it")
    pid = read_pid(layout)
    if pid is None:
        return Status(False, None, version, f"instance '{layout.instance}' is not running")
    res = cli(layout, "core show uptime seconds", timeout=5.0)
    up = res.stdout.strip().replace("\n", "; ") if res.returncode == 0 else "not answering the CLI"
    return Status(True, pid, version, f"instance '{layout.instance}' runs as pid {pid}: {up}")


RELOAD_COMMANDS = ("module reload res_pjsip.so", "dialplan reload", "module reload app_queue.so")


def reload(layout: Layout, settings: Settings, secrets: Secrets, plans: PlanSet, prompt_files: list[PromptFile]) -> None:
    """Re-render the config and have the running Asterisk reload what the plans change.

    Only SIP, the dialplan and the queues are reloaded: calls in progress keep going,
    and the app's ARI connection is not touched.
    """
    prepare(settings, secrets, plans, prompt_files, layout)
    reload_modules(layout)


def reload_modules(layout: Layout) -> None:
    """Have the running Asterisk reload SIP, the dialplan and the queues from its files."""
    for command in RELOAD_COMMANDS:
        res = cli(layout, command)
        if res.returncode != 0:
            raise AsteriskError(f"Asterisk did not run '{command}': {res.stderr.strip() or res.stdout.strip()}")
