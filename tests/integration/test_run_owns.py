"""`ivr112 run --with-asterisk` (what `make run` runs) owns what it starts, on the real stack:
an app killed hard or stopped mid-start takes its Asterisk and its guard with it, a second run
on the same instance is refused while the first lives, what a run killed with its guard left
behind is adopted and stopped by the next one, and there is never a second guard.

These tests start their own instance (not the session's stack): they kill the run on purpose.
Every process is found by its pid (Asterisk's pid file, the guard's command line) and every
wait polls against a deadline.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from ari_app.asterisk import process
from ivr.settings import PROJECT_DIR
from tests.integration.stack import Stack, stop_process, wait_for
from tests.support.stacks import running_stack

pytestmark = pytest.mark.asterisk

# A run's Asterisk boots and its app connects in a few seconds here; this leaves room for a
# machine shared with other test runs.
UP_S = 60.0
# What a run started must be gone this soon after the run is gone (the guard looks once a second).
GONE_S = 20.0


class Runs:
    """The `ivr112 run --with-asterisk` processes a test starts, on one instance of its own."""

    def __init__(self, stack: Stack, name: str) -> None:
        self.s = stack
        self.name = name
        self.procs: list[subprocess.Popen[bytes]] = []

    def cmd(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "ari_app.cli", "--config", str(self.s.config), *args]

    def log(self, n: int) -> Path:
        return self.s.tmp / f"{self.name}-run{n}.log"

    def start(self) -> subprocess.Popen[bytes]:
        with self.log(len(self.procs)).open("ab") as out:
            proc = subprocess.Popen(self.cmd("run", "--with-asterisk"), stdout=out, stderr=subprocess.STDOUT,
                                    env=self.s.env, cwd=PROJECT_DIR, start_new_session=True)
        self.procs.append(proc)
        return proc

    def up(self) -> subprocess.Popen[bytes]:
        """A run started and serving: its app connected to its Asterisk."""
        proc = self.start()
        wait_for("the run's app to connect to Asterisk", lambda: proc.poll() is not None or self.s.health().get("ari_connected"),
                 timeout=UP_S)
        assert proc.poll() is None, self.read_log(len(self.procs) - 1)
        return proc

    def read_log(self, n: int) -> str:
        """The end of run n's output (for an assertion's message)."""
        return self.log(n).read_text(errors="replace")[-3000:]

    def said(self, n: int, words: str) -> bool:
        """Whether run n printed `words` at any time (its start lines scroll out of the end)."""
        return words in self.log(n).read_text(errors="replace")

    def guards(self) -> list[int]:
        """Pids of every guard process watching this instance (by their command line)."""
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                argv = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"guard" in argv and str(self.s.config).encode() in argv and process.alive(int(entry.name)):
                found.append(int(entry.name))
        return found

    def asterisk(self) -> int | None:
        return process.read_pid(self.s.layout)

    def wait_all_gone(self, asterisk: int) -> None:
        wait_for(f"Asterisk (pid {asterisk}) to be stopped", lambda: not process.alive(asterisk), timeout=GONE_S)
        wait_for("no guard left", lambda: not self.guards(), timeout=GONE_S)
        status = self.s.ivr112("asterisk", "status", check=False)
        assert status.returncode == 3, status.stdout  # "not running": no pid file left for a guard to act on

    def clean_up(self) -> None:
        """Stop whatever the test's runs left, by pid, so no test and no other stack inherits it."""
        for proc in self.procs:
            stop_process(proc, grace=20)
        for pid in self.guards():
            os.kill(pid, signal.SIGKILL)
        self.s.asterisk_down()


@pytest.fixture(scope="module")
def own_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack(tmp_path_factory, "runowns", asterisk=False, app=False) as s:
        yield s


@pytest.fixture
def runs(own_stack: Stack, request: pytest.FixtureRequest) -> Iterator[Runs]:
    r = Runs(own_stack, request.node.name)
    try:
        yield r
    finally:
        rep = getattr(request.node, "rep_call", None)
        if rep is not None and rep.failed:
            for n in range(len(r.procs)):
                print(f"----- run {n} -----\n{r.read_log(n)}")
        r.clean_up()


def test_a_run_killed_hard_takes_its_asterisk_and_guard_along_and_a_second_run_or_guard_is_refused(runs: Runs) -> None:
    first = runs.up()
    asterisk = runs.asterisk()
    assert asterisk is not None
    guards = wait_for("the run's guard", runs.guards, timeout=UP_S)
    assert len(guards) == 1, guards

    second = subprocess.run(runs.cmd("run", "--with-asterisk"), capture_output=True, text=True, env=runs.s.env,
                            cwd=PROJECT_DIR, timeout=UP_S, check=False)
    assert second.returncode != 0, second.stdout + second.stderr
    assert f"already runs for instance '{runs.s.settings.instance}' (pid {first.pid})" in second.stderr, second.stderr
    another_guard = subprocess.run(runs.cmd("guard", "--asterisk"), capture_output=True, text=True, env=runs.s.env,
                                   cwd=PROJECT_DIR, timeout=UP_S, check=False)
    assert another_guard.returncode != 0
    assert f"a guard already watches instance '{runs.s.settings.instance}' (pid {guards[0]}" in another_guard.stderr, \
        another_guard.stderr
    assert runs.guards() == guards and runs.asterisk() == asterisk and runs.s.health().get("ari_connected")

    first.kill()  # as the OOM killer or a crash would: no finally, no signal handler
    first.wait(timeout=10)
    runs.wait_all_gone(asterisk)


def test_ctrl_c_while_asterisk_is_still_booting_stops_it(runs: Runs) -> None:
    run = runs.start()
    asterisk = wait_for("the run to start Asterisk", runs.asterisk, timeout=UP_S, interval=0.02)
    assert not runs.s.health().get("ari_connected")  # still starting
    run.send_signal(signal.SIGINT)
    assert run.wait(timeout=GONE_S) != 0
    runs.wait_all_gone(asterisk)


def test_an_app_that_fails_takes_its_asterisk_and_guard_along(runs: Runs) -> None:
    with socket.socket() as squatter:  # the app's HTTP port taken: it raises once Asterisk and the guard run
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # the earlier tests' app left TIME_WAITs
        squatter.bind((runs.s.settings.http_host, runs.s.settings.http_port))
        squatter.listen()
        run = runs.start()
        asterisk = wait_for("the run to start Asterisk", runs.asterisk, timeout=UP_S, interval=0.05)
        assert run.wait(timeout=UP_S) != 0
    assert runs.said(0, "address already in use"), runs.read_log(0)
    runs.wait_all_gone(asterisk)


def test_what_a_run_killed_with_its_guard_left_is_adopted_and_stopped_by_the_next_run(runs: Runs) -> None:
    first = runs.up()
    asterisk = runs.asterisk()
    assert asterisk is not None
    guard = wait_for("the run's guard", runs.guards, timeout=UP_S)[0]
    os.kill(guard, signal.SIGKILL)
    first.kill()
    first.wait(timeout=10)
    wait_for("the guard to be gone", lambda: not runs.guards(), timeout=GONE_S)
    assert runs.asterisk() == asterisk  # left behind, with nobody to stop it

    second = runs.up()
    assert runs.asterisk() == asterisk  # the calls it holds go on: adopted, not restarted
    assert len(wait_for("the second run's guard", runs.guards, timeout=UP_S)) == 1

    second.send_signal(signal.SIGTERM)
    assert second.wait(timeout=GONE_S + 10) == 0, runs.read_log(1)
    runs.wait_all_gone(asterisk)
    assert runs.said(1, f"adopting Asterisk instance '{runs.s.settings.instance}' (pid {asterisk})"), runs.read_log(1)


def test_an_asterisk_started_by_hand_is_used_by_a_run_and_left_running_after_it(runs: Runs) -> None:
    runs.s.asterisk_up()
    asterisk = runs.asterisk()
    assert asterisk is not None
    run = runs.up()
    assert runs.asterisk() == asterisk
    run.send_signal(signal.SIGINT)  # Ctrl-C
    assert run.wait(timeout=GONE_S + 10) == 0, runs.read_log(0)
    wait_for("no guard left", lambda: not runs.guards(), timeout=GONE_S)
    assert runs.asterisk() == asterisk and runs.s.ivr112("asterisk", "status", check=False).returncode == 0
    assert runs.said(0, "this run uses it and leaves it running"), runs.read_log(0)
    runs.s.asterisk_down()
    assert runs.asterisk() is None
