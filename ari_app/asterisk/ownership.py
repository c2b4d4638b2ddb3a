"""Who owns a local Asterisk instance: at most one `ivr112 run --with-asterisk` and one guard.

Each holds an exclusive flock on its own file in the instance's run folder for its whole
life and writes into it who it is (one JSON line). The kernel drops a flock when its holder
dies, however it dies, so a lock that can be taken means the last holder is gone, and what
the file still says is what that holder left behind: a run killed with SIGKILL leaves
`"owns_asterisk": true` there, and the next run adopts that Asterisk instead of leaving it
running with nobody to stop it.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import signal
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from ari_app.asterisk.layout import Layout
from ari_app.asterisk.process import POLL, alive, reap
from ivr.errors import AsteriskError

log = logging.getLogger(__name__)

RUN_LOCK = "ivr112-run.lock"
GUARD_LOCK = "ivr112-guard.lock"
# How long a guard left by a dead run gets to exit on SIGTERM before SIGKILL.
STALE_GUARD_GRACE = 10.0


@dataclass(frozen=True)
class Holder:
    """What a lock file says about its holder (or, once the lock is free, its last holder)."""

    pid: int
    role: str
    owner: int = 0  # a guard: the run that started it (0: started by hand)
    owns_asterisk: bool = False  # a run: it stops the instance's Asterisk when it stops
    asterisk: int = 0  # that Asterisk's pid (0 while it is still being started)


class Lock:
    """A held lock file; `previous` is what its last holder wrote (None: nothing readable)."""

    def __init__(self, path: Path, fd: int, previous: Holder | None) -> None:
        self.path = path
        self.previous = previous
        self._fd = fd

    def write(self, holder: Holder) -> None:
        """Say who holds the lock now (and what it owns), for the next process that looks."""
        data = (json.dumps(asdict(holder)) + "\n").encode()
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, data, 0)

    def release(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)  # closing the only descriptor drops the flock
            self._fd = -1


def run_lock(layout: Layout) -> Path:
    return layout.host(f"{layout.run}/{RUN_LOCK}")


def guard_lock(layout: Layout) -> Path:
    return layout.host(f"{layout.run}/{GUARD_LOCK}")


def _parse(text: str) -> Holder | None:
    try:
        return Holder(**json.loads(text))
    except (ValueError, TypeError):
        return None


def read(path: Path) -> Holder | None:
    """What the lock file at `path` says, whether or not its holder still lives."""
    try:
        return _parse(path.read_text())
    except OSError:
        return None


def take(path: Path) -> Lock | Holder | None:
    """The lock on `path`; or, when a live process holds it, what that process wrote (None
    if it has not written yet)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return read(path)
    return Lock(path, fd, _parse(os.pread(fd, 4096, 0).decode(errors="replace")))


def terminate(pid: int, *, grace: float) -> None:
    """Stop one process by its pid: SIGTERM, then SIGKILL if it still lives after `grace` s."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, grace)):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while alive(pid):
            if time.monotonic() > deadline:
                break
            reap(pid)
            time.sleep(POLL / 4)
        else:
            return


def claim_run(layout: Layout) -> Lock:
    """This process as the instance's one `run --with-asterisk`; refused while another lives."""
    taken = take(run_lock(layout))
    if taken is not None and not isinstance(taken, Lock) and taken.role != "run":
        raise AsteriskError(f"instance '{layout.instance}' is busy: {taken.role} (pid {taken.pid}); try again in a few seconds")
    if not isinstance(taken, Lock):
        pid = f"pid {taken.pid}" if taken else "its pid not written yet"
        raise AsteriskError(
            f"ivr112 run --with-asterisk already runs for instance '{layout.instance}' ({pid}); it owns that "
            f"Asterisk and its guard. Use it, stop it (Ctrl-C where it runs, or `kill {taken.pid if taken else 'PID'}`) "
            "and start again, or give this run its own `instance` and ports in a --config file"
        )
    return taken


def claim_guard(layout: Layout, *, owner: int = 0) -> Lock:
    """This process as the instance's one guard; refused while another guard lives."""
    taken = take(guard_lock(layout))
    if not isinstance(taken, Lock):
        raise AsteriskError(f"{_guard_words(layout, taken)}; there is never a second guard: stop that one first"
                            f" (`kill {taken.pid if taken else 'PID'}`)")
    taken.write(Holder(os.getpid(), "guard", owner=owner))
    return taken


def _guard_words(layout: Layout, holder: Holder | None) -> str:
    if holder is None:
        return f"a guard already watches instance '{layout.instance}' (its pid not written yet)"
    by = f"started by `ivr112 run` pid {holder.owner}" if holder.owner else "started by hand"
    return f"a guard already watches instance '{layout.instance}' (pid {holder.pid}, {by})"


def clear_stale_guard(layout: Layout) -> None:
    """Before a run starts its guard: stop a guard that an earlier, dead run left (its owner is
    gone: the caller holds the run lock), refuse if one started by hand watches the instance."""
    path = guard_lock(layout)
    taken = take(path)
    if isinstance(taken, Lock):
        taken.release()
        return
    if taken is None or not taken.owner:
        raise AsteriskError(
            f"{_guard_words(layout, taken)}; `ivr112 run --with-asterisk` starts its own guard and there is never a "
            f"second one: stop that guard first (`kill {taken.pid if taken else 'PID'}`), or run the app alone with `ivr112 run`"
        )
    log.warning("a guard (pid %d) left by an earlier run (pid %d) still watches instance '%s'; stopping it",
                taken.pid, taken.owner, layout.instance)
    terminate(taken.pid, grace=STALE_GUARD_GRACE)
    again = take(path)
    if not isinstance(again, Lock):
        raise AsteriskError(f"the guard left by an earlier run (pid {taken.pid}) did not stop; stop it by hand and start again")
    again.release()
