"""The instance's run and guard locks (ari_app/asterisk/ownership.py), with real processes
holding them: who is refused and with what words, what a holder killed hard leaves for the
next one, and that a child the holder starts does not keep its lock."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from ari_app.asterisk import ownership
from ari_app.asterisk.layout import Layout
from ari_app.asterisk.ownership import Holder, Lock
from ari_app.asterisk.process import alive
from ivr.errors import AsteriskError

HOLD = textwrap.dedent("""
    import os, signal, subprocess, sys
    from pathlib import Path
    from ari_app.asterisk.ownership import Holder, take
    if sys.argv[3] == "deaf":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    lock = take(Path(sys.argv[1]))
    lock.write(Holder(os.getpid(), "guard" if "guard" in sys.argv[1] else "run", owner=int(sys.argv[2]),
                      owns_asterisk=True, asterisk=4242))
    print("held", flush=True)
    sys.stdin.read()
""")


@pytest.fixture
def layout(tmp_path: Path) -> Layout:
    return Layout(tmp_path, "unit")


@pytest.fixture
def holders() -> Iterator[list[subprocess.Popen[str]]]:
    procs: list[subprocess.Popen[str]] = []
    yield procs
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()  # and closes its pipes


def hold(procs: list[subprocess.Popen[str]], path: Path, *, owner: int = 0, deaf: bool = False) -> subprocess.Popen[str]:
    """Another process taking the lock on `path` and keeping it until killed."""
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(path), str(owner), "deaf" if deaf else "-"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    procs.append(proc)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


def test_a_second_run_is_refused_with_the_pid_of_the_first_and_what_to_do(layout: Layout, holders: list[subprocess.Popen[str]]) -> None:
    first = hold(holders, ownership.run_lock(layout))
    with pytest.raises(AsteriskError) as refused:
        ownership.claim_run(layout)
    assert f"ivr112 run --with-asterisk already runs for instance 'unit' (pid {first.pid})" in str(refused.value)
    assert f"`kill {first.pid}`" in str(refused.value)


def test_a_run_is_told_to_wait_while_a_guard_stops_what_a_dead_run_left(layout: Layout) -> None:
    cleaning = ownership.take(ownership.run_lock(layout))
    assert isinstance(cleaning, Lock)
    cleaning.write(Holder(os.getpid(), "guard stopping what run 77 left", owns_asterisk=True, asterisk=4242))
    try:
        with pytest.raises(AsteriskError, match=rf"instance 'unit' is busy: guard stopping what run 77 left \(pid {os.getpid()}\); "
                                                "try again in a few seconds"):
            ownership.claim_run(layout)
    finally:
        cleaning.release()


def test_what_a_run_killed_hard_owned_is_there_for_the_next_run(layout: Layout, holders: list[subprocess.Popen[str]]) -> None:
    first = hold(holders, ownership.run_lock(layout))
    first.send_signal(signal.SIGKILL)
    first.wait()
    lock = ownership.claim_run(layout)
    try:
        assert lock.previous == Holder(first.pid, "run", owns_asterisk=True, asterisk=4242)
    finally:
        lock.release()


def test_a_lock_file_with_no_readable_record_is_taken_with_no_previous_owner(layout: Layout) -> None:
    path = ownership.run_lock(layout)
    path.parent.mkdir(parents=True)
    path.write_text("{not json")
    lock = ownership.take(path)
    assert isinstance(lock, Lock) and lock.previous is None
    lock.write(Holder(os.getpid(), "run"))
    assert ownership.take(path) == Holder(os.getpid(), "run")  # held: another descriptor is refused
    lock.release()
    again = ownership.take(path)
    assert isinstance(again, Lock) and again.previous == Holder(os.getpid(), "run")
    again.release()


def test_a_child_started_by_the_holder_does_not_keep_its_lock(layout: Layout) -> None:
    lock = ownership.claim_run(layout)
    child = subprocess.Popen(["sleep", "30"], close_fds=False)
    try:
        lock.release()
        taken = ownership.take(ownership.run_lock(layout))
        assert isinstance(taken, Lock), taken
        taken.release()
    finally:
        child.kill()
        child.wait()


def test_a_second_guard_is_refused_naming_the_first_and_who_started_it(layout: Layout, holders: list[subprocess.Popen[str]]) -> None:
    by_hand = hold(holders, ownership.guard_lock(layout))
    with pytest.raises(AsteriskError, match=rf"a guard already watches instance 'unit' \(pid {by_hand.pid}, started by hand\); "
                                            "there is never a second guard"):
        ownership.claim_guard(layout, owner=os.getpid())
    by_hand.kill()
    by_hand.communicate()
    by_run = hold(holders, ownership.guard_lock(layout), owner=777)
    with pytest.raises(AsteriskError, match=rf"\(pid {by_run.pid}, started by `ivr112 run` pid 777\)"):
        ownership.claim_guard(layout)


def test_a_run_refuses_to_start_beside_a_guard_started_by_hand(layout: Layout, holders: list[subprocess.Popen[str]]) -> None:
    guard = hold(holders, ownership.guard_lock(layout))
    with pytest.raises(AsteriskError, match=r"starts its own guard and there is never a second one"):
        ownership.clear_stale_guard(layout)
    assert guard.poll() is None  # not ours to stop


def test_a_guard_left_by_a_dead_run_is_stopped_even_if_it_ignores_sigterm(layout: Layout, holders: list[subprocess.Popen[str]],
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ownership, "STALE_GUARD_GRACE", 0.5)
    stale = hold(holders, ownership.guard_lock(layout), owner=777, deaf=True)
    ownership.clear_stale_guard(layout)
    assert not alive(stale.pid)
    lock = ownership.claim_guard(layout)
    lock.release()


def test_terminate_of_a_process_already_gone_is_quiet() -> None:
    proc = subprocess.Popen(["true"])
    proc.wait()
    ownership.terminate(proc.pid, grace=0.1)


# A run whose lock outlives its pid: a multi-threaded process SIGKILLed is a zombie (gone, to
# `alive`) while its other threads still exit, and its files close only with the last one.
# Here a forked child keeps the same open lock for a while (the slow thread).
SLOW_EXIT = textwrap.dedent("""
    import os, sys, time
    from pathlib import Path
    from ari_app.asterisk.ownership import Holder, take
    lock = take(Path(sys.argv[1]))
    lock.write(Holder(os.getpid(), "run", owns_asterisk=True, asterisk=4242))
    if os.fork() == 0:
        os.close(1)  # the parent's "held" line is the one the test reads
        time.sleep(0.5)  # the last thread, still exiting: the lock goes with it
        os._exit(0)
    print("held", flush=True)
    sys.stdin.read()
""")


def test_the_guard_waits_for_a_dead_runs_lock_to_go_and_then_stops_what_it_owned(layout: Layout) -> None:
    from ari_app.asterisk.owned_run import after_owner

    run = subprocess.Popen([sys.executable, "-c", SLOW_EXIT, str(ownership.run_lock(layout))],
                           stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert run.stdout is not None and run.stdout.readline().strip() == "held"
    run.kill()
    run.communicate()
    assert not alive(run.pid)
    after_owner(layout, run.pid)  # before: "another run (pid ...) holds instance": the dead run's Asterisk left running
    assert ownership.read(ownership.run_lock(layout)) == Holder(os.getpid(), "guard")
