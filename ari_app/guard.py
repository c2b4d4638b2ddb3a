"""The guard: a small process beside the app that keeps 112 answered when the app cannot.

The dialplan already sends a new call to the operators when no app is connected
(`Stasis()` fails). What it cannot do is free a caller who was in the voice menu when the
app died, hung or was stopped: that channel sits in `Stasis()` in silence until an app
takes it over. The guard watches from outside, through Asterisk's own CLI (no ARI, no
HTTP of the app's, no Python state shared with it):

- every `guard_interval` it asks Asterisk which ARI applications are connected, and the
  app's /health whether its event loop answers;
- once the app has been absent or mute for `guard_grace` seconds, every channel still in
  `Stasis(<app_name>, ...)` is redirected to its plan's operators' queue, the same place
  the app itself sends calls it finds left in silence after a reconnect;
- with `--asterisk`, an Asterisk instance of this machine that died without
  `ivr112 asterisk down` (its pid file is still there) is started again.

Everything it does is logged at ERROR: each rescue means the app failed a caller.
"""

from __future__ import annotations

import logging
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field

from ari_app.asterisk import process
from ari_app.asterisk.layout import Layout
from ari_app.asterisk.render import QUEUE_CONTEXT
from ivr.errors import AsteriskError, Ivr112Error
from ivr.plan import PlanSet, load_plans
from ivr.settings import Settings

log = logging.getLogger(__name__)

HEALTH_TIMEOUT_S = 2.0


@dataclass(frozen=True)
class StasisChannel:
    name: str
    plan_id: str


def stasis_channels(concise: str, app_name: str) -> list[StasisChannel]:
    """Channels in Stasis(app_name, plan, exten) from `core show channels concise`."""
    found = []
    for line in concise.splitlines():
        fields = line.split("!")
        if len(fields) < 7 or fields[5] != "Stasis":
            continue
        args = fields[6].split(",")
        if args[0] != app_name:
            continue
        found.append(StasisChannel(fields[0], args[1] if len(args) > 1 else ""))
    return found


def app_connected(apps: str, app_name: str) -> bool:
    """Whether `ari show apps` lists the application."""
    return any(line.strip() == app_name for line in apps.splitlines())


@dataclass
class Guard:
    settings: Settings
    restart_asterisk: bool = False
    cli: Callable[[str], str] | None = None
    health_ok: Callable[[], bool] | None = None
    absent_since: float | None = None
    rescued: int = 0
    asterisk_restarts: int = 0
    restarted_pid: int | None = None  # the Asterisk this guard started again (its run's, as the one it replaced)
    _plans: PlanSet | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.layout = Layout(self.settings.root_path, self.settings.instance)
        if self.cli is None:
            self.cli = lambda command: process.cli(self.layout, command).stdout
        if self.health_ok is None:
            self.health_ok = self._health

    def _health(self) -> bool:
        url = f"http://{self.settings.http_host}:{self.settings.http_port}/health"
        try:
            with urllib.request.urlopen(url, timeout=HEALTH_TIMEOUT_S):
                return True
        except urllib.error.HTTPError:
            return True  # it answered (503 while ARI is down is still an answer)
        except (OSError, ValueError):
            return False

    def queue_exten(self, plan_id: str) -> str:
        """Where a rescued caller goes: their plan's default queue (the default plan's if unknown)."""
        try:
            self._plans = load_plans(self.settings.plan_paths)
        except Ivr112Error as exc:
            if self._plans is None:
                raise
            log.error("guard: the plans do not load (%s); using the last good ones", exc)
        assert self._plans is not None
        plan = self._plans.by_id(plan_id) or self._plans.default
        return plan.asterisk_queue(plan.default_queue.name)

    def check(self, now: float | None = None) -> None:
        """One look; call it every `guard_interval` seconds."""
        now = time.monotonic() if now is None else now
        assert self.cli is not None and self.health_ok is not None
        if self.restart_asterisk and self._asterisk_died():
            return
        apps = self.cli("ari show apps")
        present = app_connected(apps, self.settings.app_name) and self.health_ok()
        if present:
            if self.absent_since is not None:
                log.warning("guard: the app is back after %.1f s", now - self.absent_since)
            self.absent_since = None
            return
        if self.absent_since is None:
            self.absent_since = now
            log.warning("guard: the app %r is not connected or does not answer; waiting %.0f s before taking its callers",
                        self.settings.app_name, self.settings.guard_grace)
        if now - self.absent_since < self.settings.guard_grace:
            return
        for channel in stasis_channels(self.cli("core show channels concise"), self.settings.app_name):
            target = f"{QUEUE_CONTEXT},{self.queue_exten(channel.plan_id)},1"
            out = self.cli(f"channel redirect {channel.name} {target}").strip()
            if "successfully redirected" not in out:
                log.error("guard: could not send caller %s to the operators (%s): %s", channel.name, target, out or "no answer")
                continue
            self.rescued += 1
            log.error("guard: the app has been away %.0f s; caller %s sent to the operators (%s)",
                      now - self.absent_since, channel.name, target)

    def _asterisk_died(self) -> bool:
        """Start again an instance that died under us (its pid file left behind); True if it was down."""
        if not self.layout.pidfile.exists() or process.read_pid(self.layout) is not None:
            return False
        log.error("guard: Asterisk instance '%s' died (pid file left, no process); starting it again", self.layout.instance)
        self.layout.pidfile.unlink(missing_ok=True)
        try:
            pid = process.start(self.layout, boot_timeout=self.settings.asterisk_boot_timeout)
        except AsteriskError as exc:
            log.error("guard: Asterisk did not start again: %s", exc)
            return True
        self.asterisk_restarts += 1
        self.restarted_pid = pid
        log.error("guard: Asterisk instance '%s' running again (pid %d)", self.layout.instance, pid)
        return True

    def run(self, stop: Callable[[], bool] = lambda: False) -> None:
        log.info("guard: watching app %r of instance '%s' every %.1f s (grace %.0f s)%s", self.settings.app_name,
                 self.layout.instance, self.settings.guard_interval, self.settings.guard_grace,
                 "; restarts a crashed Asterisk" if self.restart_asterisk else "")
        while not stop():
            try:
                self.check()
            except Exception as exc:  # the guard itself must never be the thing that stops
                log.error("guard: check failed: %r", exc)
            time.sleep(self.settings.guard_interval)
