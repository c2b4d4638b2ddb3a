"""What `ivr112 run --with-asterisk` (and so `make run`) starts, it stops.

The run holds the instance's run lock for its whole life (ownership.py), so a second run
is refused at once. It starts Asterisk (or adopts the one a run killed hard left behind,
or reuses one started by hand with `ivr112 asterisk up`, which it then leaves running) and
one guard that knows the run's pid. However the run ends (the app returns, raises, gets
SIGINT or SIGTERM, even mid-start) `stop()` stops the guard and the Asterisk it owns, by
pid. A run killed with SIGKILL cannot do that: its guard sees it gone and does it instead
(`after_owner`).
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import FrameType

from ari_app.asterisk import ownership, process
from ari_app.asterisk.layout import Layout
from ari_app.asterisk.ownership import Holder, Lock
from ivr.errors import AsteriskError

log = logging.getLogger(__name__)

# How long a new guard gets to take its lock, and a stopping one to exit before SIGKILL.
GUARD_START_TIMEOUT = 20.0
GUARD_STOP_TIMEOUT = 10.0
# How long a dead run's lock may outlive its pid (see _take_from).
OWNER_EXIT_TIMEOUT = 10.0


def _exit_on_signal(signum: int, _frame: FrameType | None) -> None:
    # Unwinds through the run's try/finally, which stops what it started.
    raise SystemExit(128 + signum)


@dataclass
class OwnedRun:
    layout: Layout
    up: Callable[[], int]  # configures and starts (or reloads) Asterisk; returns its pid
    guard_cmd: list[str]  # `ivr112 guard --asterisk` with this run's --config; --owner is added
    lock: Lock | None = None
    owns_asterisk: bool | None = None  # None until decided: a refused run leaves the record as it found it
    guard: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def start(self) -> None:
        """Take the instance, then Asterisk, then the guard; raises AsteriskError if refused."""
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, _exit_on_signal)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)  # a reload before the app runs means nothing
        self.lock = ownership.claim_run(self.layout)
        previous = self.lock.previous or Holder(0, "run")
        # Until this run decides, it holds whatever the dead one owned.
        self.lock.write(Holder(os.getpid(), "run", owns_asterisk=previous.owns_asterisk, asterisk=previous.asterisk))
        ownership.clear_stale_guard(self.layout)
        running = process.read_pid(self.layout)
        if running is None:
            self._record(owns=True, asterisk=0)
        elif previous.owns_asterisk and previous.asterisk in (0, running):
            print(f"adopting Asterisk instance '{self.layout.instance}' (pid {running}) left by a run that died "
                  f"(pid {previous.pid}); it stops when this run stops")
            self._record(owns=True, asterisk=running)
        else:
            print(f"Asterisk instance '{self.layout.instance}' was started outside `ivr112 run` (pid {running}); "
                  "this run uses it and leaves it running (`ivr112 asterisk down` stops it)")
            self._record(owns=False, asterisk=0)
        pid = self.up()
        if self.owns_asterisk:
            self._record(owns=True, asterisk=pid)
        self._start_guard()

    def _record(self, *, owns: bool, asterisk: int) -> None:
        assert self.lock is not None
        self.owns_asterisk = owns
        self.lock.write(Holder(os.getpid(), "run", owns_asterisk=owns, asterisk=asterisk))

    def _start_guard(self) -> None:
        # Its own session: a Ctrl-C in the terminal reaches the run, which stops the guard first.
        self.guard = subprocess.Popen([*self.guard_cmd, "--owner", str(os.getpid())], start_new_session=True)
        path = ownership.guard_lock(self.layout)
        deadline = time.monotonic() + GUARD_START_TIMEOUT
        while (holder := ownership.read(path)) is None or holder.pid != self.guard.pid:
            if self.guard.poll() is not None:
                raise AsteriskError(f"the guard exited at start (code {self.guard.returncode}); see its message above")
            if time.monotonic() > deadline:
                raise AsteriskError(f"the guard did not start watching in {GUARD_START_TIMEOUT:.0f} s")
            time.sleep(process.POLL / 4)

    def stop(self) -> None:
        """Stop the guard, then the Asterisk this run owns; safe after a partial or refused start."""
        # A second Ctrl-C must not cut this short and leave Asterisk without its owner.
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_IGN)
        if self.guard is not None and self.guard.poll() is None:  # first: it would start again an Asterisk it saw die
            self.guard.terminate()
            try:
                self.guard.wait(timeout=GUARD_STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.guard.kill()
                self.guard.wait()
        if self.lock is None:
            return
        if self.owns_asterisk and process.stop(self.layout):
            print(f"Asterisk instance '{self.layout.instance}' stopped")
        if self.owns_asterisk is not None:
            self.lock.write(Holder(os.getpid(), "run"))
        self.lock.release()


def _take_from(layout: Layout, owner: int) -> Lock | Holder | None:
    """The run lock, once the dead run `owner` has let it go. A run is multi-threaded: SIGKILLed,
    its main thread is a zombie (so `alive` says gone) while its other threads still exit, and
    its open files, the lock among them, close only with the last of them (under load, over a
    second later: the guard then left the dead run's Asterisk running, with no app). So while
    the lock's holder is that run itself, take it again, until OWNER_EXIT_TIMEOUT."""
    path = ownership.run_lock(layout)
    deadline = time.monotonic() + OWNER_EXIT_TIMEOUT
    while True:
        taken = ownership.take(path)
        if isinstance(taken, Lock) or taken is None or taken.pid != owner or time.monotonic() > deadline:
            return taken
        time.sleep(process.POLL / 4)  # the kernel's release of the flock, polled against a deadline


def after_owner(layout: Layout, owner: int, *, restarted: int | None = None) -> None:
    """The guard's last act when the run that started it died without stopping: stop the
    Asterisk that run owned (by its pid file), unless a new run has already taken over.
    `restarted`: the Asterisk this guard started again after the run's own crashed; the run
    owned that one too (without it, it was left running with no app and no owner)."""
    taken = _take_from(layout, owner)
    if not isinstance(taken, Lock):
        log.warning("guard: ivr112 run (pid %d) is gone and another run (%s) holds instance '%s'; leaving Asterisk to it",
                    owner, f"pid {taken.pid}" if taken else "pid unknown", layout.instance)
        return
    try:
        left = taken.previous
        if left is None or left.pid != owner or not left.owns_asterisk:
            log.warning("guard: ivr112 run (pid %d) is gone; it did not own Asterisk instance '%s', which keeps running",
                        owner, layout.instance)
            return
        taken.write(Holder(os.getpid(), f"guard stopping what run {owner} left", owns_asterisk=True, asterisk=left.asterisk))
        log.error("guard: ivr112 run (pid %d) died without stopping; stopping its Asterisk instance '%s'", owner, layout.instance)
        if left.asterisk == 0 or process.read_pid(layout) in (left.asterisk, restarted):
            process.stop(layout)
        taken.write(Holder(os.getpid(), "guard"))
    finally:
        taken.release()
