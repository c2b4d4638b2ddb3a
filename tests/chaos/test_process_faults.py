"""Process and storage faults (issue 7): the app killed, Asterisk restarted, AMI and the ARI
WebSocket cut, the store's disk full and read-only, each under real SIPp calls.

A stalled app (SIGSTOP, as under a CPU starved by a flood) must still close and list every
call that ended meanwhile. Every caller has its own number; two SIPp operators (logged in to the queue) and the
backup centre's trunk log the number of each call they answer. A caller whose number none
of them logged was lost. Every call the app saw must have a complete incident (arrival and
end written). Each test prints what it broke and what was lost; the answer must be zero.
"""

from __future__ import annotations

import errno
import os
import random
import re
import signal
import sqlite3
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from ari_app.calls.controller import AGENCY_DROP_S
from ivr.store import STORE_FILE, Incident
from tests.chaos.conftest import rounds
from tests.integration.stack import Sipp, Stack
from tests.support.poll import holds_within, wait_for

pytestmark = pytest.mark.asterisk

OPERATORS = ("operator1", "operator2")
# Caller numbers: one block per test, so no test can count another's calls.
_BLOCKS = {"kill": 1, "restart": 2, "drops": 3, "store": 4, "stall": 5, "pg_stopped": 6, "pg_killed": 7}
# Asterisk must be taking new calls through the app this soon after it is up (the figure).
RECONNECT_S = 5.0
# A caller gives up 150 s after the answer (tests/sipp/caller_until_bye.xml): longer than the
# queue keeps a caller before its overflow to the backup centre (120 s in Kotim's plan), so a
# caller who gave up was left somewhere no person could answer.
CALLER_WAIT_S = 150


def numbers(test: str, count: int, start: int = 0) -> list[str]:
    return [f"0812{_BLOCKS[test]}{os.getpid() % 1000:03d}{i:04d}" for i in range(start, start + count)]


@dataclass
class People:
    """The SIPp softphones of the operators on shift, and the backup centre's trunk."""

    phones: list[Sipp]

    def hang_up(self) -> None:
        """Stop the softphones (by their pids) and collect what they wrote."""
        for phone in self.phones:
            if phone.proc.poll() is None:
                phone.proc.terminate()
            phone.wait()

    def reached(self) -> set[str]:
        """The caller numbers a person answered, from the From of each INVITE they got."""
        return {u for p in self.phones for u in re.findall(r"INVITE-FROM-USER=(\S*)", p.logs())}


def on_shift(stack: Stack, calls: int, *, login: bool = True, hold_ms: int = 1500) -> People:
    """Both operators registered (and logged in to the queue unless they still are), each
    answering and hanging up `hold_ms` later; the backup centre (queue overflow) answers too."""
    phones = []
    for name in OPERATORS:
        port = stack.sipp_port()
        stack.register_operator(name, port, login=login)
        phones.append(stack.sipp("answer_bye", "-d", str(hold_ms), port=port, background=True, timeout=600, calls=calls))
    # The backup centre talks past AGENCY_DROP_S: one that hangs up sooner has not taken the call.
    backup_ms = str(int((AGENCY_DROP_S + 1) * 1000))
    phones.append(stack.sipp("answer_bye", "-d", backup_ms, port=stack.trunk_ports[5079], background=True, timeout=600, calls=calls))
    return People(phones)


def callers(stack: Stack, who: Sequence[str], *, every_ms: int) -> Sipp:
    """One SIPp placing a call for each number, one every `every_ms` (in the background)."""
    inf = stack.tmp / f"callers-{who[0]}.csv"
    inf.write_text("SEQUENTIAL\n" + "".join(f"{n};\n" for n in who))
    timeout = len(who) * every_ms / 1000 + CALLER_WAIT_S + 30
    return stack.sipp("caller_until_bye", "-inf", str(inf), "-s", "112", "-r", "1", "-rp", str(every_ms), "-l", "200",
                      background=True, timeout=timeout, calls=len(who))


def finish(stack: Stack, people: People, calls: Sipp, who: Sequence[str]) -> set[str]:
    """Wait for every caller to be done; return the numbers no person answered."""
    calls.wait()
    # Each person's SIPp has answered (and logged) every call it got by now.
    people.hang_up()
    return set(who) - people.reached()


def incidents_of(stack: Stack, who: Sequence[str]) -> list[Incident]:
    wanted = set(who)
    return [i for i in stack.incidents() if i.caller_number in wanted]


def half_written(stack: Stack, who: Sequence[str]) -> list[Incident]:
    """Incidents of these callers with no arrival or no end, once every call has ended."""
    return [i for i in incidents_of(stack, who) if not i.arrived_at or not i.ended_at or not i.end_reason]


def all_closed(stack: Stack, who: Sequence[str], timeout: float = 30) -> list[Incident]:
    """Wait until each of these callers' incidents has its end written; return what stays open."""
    holds_within(lambda: not half_written(stack, who), timeout=timeout)
    return half_written(stack, who)


def kill_app(stack: Stack) -> None:
    proc = stack.app_proc
    assert proc is not None and proc.poll() is None, "the app is not running"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    stack.app_proc = None


def cut_tcp(port: int) -> str:
    """Reset every TCP connection to 127.0.0.1:`port` (both ends see the connection die)."""
    res = subprocess.run(["ss", "-K", "dst", "127.0.0.1", "dport", "=", f":{port}"], capture_output=True, text=True, check=False)
    return res.stdout


def metrics(stack: Stack) -> dict[str, float] | None:
    """The app's Prometheus figures by series name, or None where the app has no /metrics yet."""
    import urllib.error
    import urllib.request

    from ivr.secrets import load_or_create

    secret = load_or_create(stack.settings.data_path).console_secret
    req = urllib.request.Request(f"http://{stack.settings.http_host}:{stack.settings.http_port}/metrics",
                                 headers={"Authorization": f"Bearer {secret}"})
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            text = resp.read().decode()
    except (urllib.error.URLError, OSError):
        return None
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            out[name] = float(value)
    return out


def log_size(stack: Stack) -> tuple[int, int]:
    """Where the app's and Asterisk's logs end now (to count what a test adds to them)."""
    return tuple(p.stat().st_size if p.exists() else 0 for p in (stack.app_log, stack.layout.messages_log))  # type: ignore[return-value]


def log_since(path: Path, offset: int) -> str:
    with path.open("rb") as f:
        f.seek(offset)
        return f.read().decode(errors="replace")


def seed() -> int:
    """The fault moments' seed: IVR112_CHAOS_SEED to replay a run, else a new one (printed)."""
    return int(os.environ.get("IVR112_CHAOS_SEED") or random.randrange(10**6))


def report(record: Callable[[str, object], None], line: str) -> None:
    """A test's figures: printed, and repeated at the end of the run (tests/chaos/conftest.py)."""
    print(line)
    record("chaos", line)


# The app killed -------------------------------------------------------------------------


def test_the_app_killed_at_random_moments_under_steady_calls_loses_no_call_and_no_incident(broken: Stack, record_property: Callable[[str, object], None]) -> None:
    # Two operators with 5 s of wrap-up take a call every 3.5 s or so: the short form comes
    # about that fast for a while, the long one slower, so the queue does not grow for ever.
    kills, calls, every = rounds(2, 6), rounds(10, 40), rounds(3000, 4500)
    chosen = seed()
    rng = random.Random(chosen)
    who = numbers("kill", calls)
    app_at, ast_at = log_size(broken)
    people = on_shift(broken, calls)
    stream = callers(broken, who, every_ms=every)
    span = calls * every / 1000
    moments = sorted(rng.uniform(2, span - 3) for _ in range(kills))
    started = time.monotonic()
    downtime = []
    aimed = 0
    for n, moment in enumerate(moments):
        time.sleep(max(0.0, moment - (time.monotonic() - started)))
        # Every other kill waits for a call in the voice menu (in Stasis): the one the app
        # must take over when it is back. The others fall where they fall.
        if n % 2 == 0 and holds_within(lambda: (metrics(broken) or {}).get("ivr112_calls_in_ivr", 0) >= 1, timeout=10):
            aimed += 1
        kill_app(broken)
        down = time.monotonic()
        # Calls that come while it is down meet Stasis() FAILED: the dialplan's fallback.
        time.sleep(rng.uniform(0.5, 3.0))
        broken.app_start()
        downtime.append(time.monotonic() - down)
    lost = finish(broken, people, stream, who)
    open_left = all_closed(broken, who)
    seen = incidents_of(broken, who)
    taken_over = log_since(broken.app_log, app_at).count("taking over call left in Stasis")
    # Asterisk's dialplan says so once per call that Stasis() could not give to the app.
    fallback = len(re.findall(r"app_verbose\.c: ivr112: \S+ back from Stasis with STASISSTATUS=FAILED", log_since(broken.layout.messages_log, ast_at)))
    report(record_property, f"killed the app {kills} times (seed {chosen}; down {', '.join(f'{d:.1f}' for d in downtime)} s) under {calls} calls: "
                            f"{len(lost)} calls lost, {calls - fallback - len(seen)} incidents lost, {len(open_left)} of {len(seen)} half-written "
                            f"({aimed} kills with a call in the voice menu; {taken_over} calls taken over from Stasis after a restart, "
                            f"{fallback} through the dialplan fallback)")
    assert not lost, f"callers no person answered: {sorted(lost)}"
    assert not open_left, open_left
    if aimed:  # a kill that caught a call in the voice menu: the app took it over when back
        assert taken_over >= 1
    # Every call the dialplan did not keep for itself went through the app: one incident each.
    assert len({i.channel_id for i in seen}) == len(seen) == calls - fallback, (len(seen), calls, fallback)


# The app stalled ------------------------------------------------------------------------


def test_callers_who_hang_up_while_the_app_is_stalled_are_each_closed_and_on_the_callback_list(broken: Stack, record_property: Callable[[str, object], None]) -> None:
    """The app stopped (SIGSTOP) while callers arrive in Stasis and give up a second later:
    when it runs again, the start, the end and the channel's destruction of each call reach
    it all at once. Every one of those calls must get a closed incident and a callback entry
    (the caller gave up before a person answered)."""
    stalls, per_stall = rounds(2, 5), rounds(4, 8)
    proc = broken.app_proc
    assert proc is not None and proc.poll() is None, "the app is not running"
    everyone: list[str] = []
    for r in range(stalls):
        who = numbers("stall", per_stall, start=r * per_stall)
        everyone += who
        inf = broken.tmp / f"stall-{r}.csv"
        inf.write_text("SEQUENTIAL\n" + "".join(f"{n};\n" for n in who))
        proc.send_signal(signal.SIGSTOP)
        try:
            gave_up = broken.sipp("caller_gives_up", "-inf", str(inf), "-s", "112", "-d", "1000", "-r", "10", "-l", str(per_stall),
                                  timeout=30, calls=per_stall)
        finally:
            proc.send_signal(signal.SIGCONT)
        assert gave_up.returncode == 0, gave_up.report()
        # Running again, the app reads what it missed; the next stall waits until it has.
        holds_within(lambda who=who: len(incidents_of(broken, who)) == len(who), timeout=20)
    open_left = all_closed(broken, everyone)
    seen = incidents_of(broken, everyone)

    def unlisted_numbers() -> list[str]:
        return sorted(set(everyone) - {c["number"] for c in broken.api("/api/callbacks")})

    holds_within(lambda: not unlisted_numbers(), timeout=10)
    unlisted = unlisted_numbers()
    # An early hang-up is not a fault of the app: no incident is marked as sent to the fallback.
    marked = [i for i in seen if i.fallback]
    report(record_property, f"stalled the app {stalls} times while {per_stall} callers each came and gave up after 1 s: "
                            f"{len(seen)} of {len(everyone)} incidents written, {len(open_left)} left open, {len(unlisted)} not on the callback list, "
                            f"{len(marked)} counted as app errors")
    assert len(seen) == len(everyone), sorted(set(everyone) - {i.caller_number for i in seen})
    assert not open_left, [(i.id, i.caller_number) for i in open_left]
    assert not unlisted, unlisted
    assert not marked, [(i.id, i.caller_number) for i in marked]


# Asterisk restarted ---------------------------------------------------------------------


def test_asterisk_restarted_under_calls_the_app_reconnects_and_new_calls_work_within_five_seconds(broken: Stack, record_property: Callable[[str, object], None]) -> None:
    restarts, before, after = rounds(1, 3), rounds(3, 6), rounds(3, 6)
    worst = 0.0
    cut: set[str] = set()
    lost: set[str] = set()
    everyone: list[str] = []
    for r in range(restarts):
        early = numbers("restart", before, start=r * 100)
        late = numbers("restart", after, start=r * 100 + 50)
        everyone += early + late
        # The operators' softphones stay on through the restart (Asterisk keeps their
        # registrations and queue membership in its database).
        people = on_shift(broken, before + after, login=r == 0)
        stream = callers(broken, early, every_ms=1000)
        wait_for("calls in the app", lambda: broken.health().get("calls_in_app"), timeout=30)
        logins = broken.health().get("ami_logins", 0)
        broken.asterisk_down()
        wait_for("the app to notice Asterisk gone", lambda: broken.health().get("ari_connected") is False, timeout=15)
        stream.proc.terminate()  # the calls died with Asterisk
        stream.wait()
        broken.asterisk_up()  # returns once Asterisk is fully booted
        up = time.monotonic()
        wait_for("the app to reconnect", lambda: broken.health().get("ari_connected"), timeout=RECONNECT_S + 10, interval=0.05)
        took = time.monotonic() - up
        worst = max(worst, took)
        # New calls at once: they must go through the app, and reach a person.
        fresh = callers(broken, late, every_ms=1000)
        reached_before = people.reached()
        lost |= finish(broken, people, fresh, late)
        wait_for("AMI back", lambda n=logins: (h := broken.health()).get("ami_connected") and h.get("ami_logins", 0) > n, timeout=30)
        # The calls Asterisk cut when it stopped are gone with it (not ours to lose), but their
        # incidents must still be closed.
        cut |= set(early) - reached_before
        for number in late:
            incident = broken.incident_for(number)
            assert incident is not None, f"{number}'s call after the restart did not go through the app"
    open_left = all_closed(broken, everyone)
    report(record_property, f"restarted Asterisk under calls ({restarts}x): app back {worst:.1f} s after Asterisk was up; "
                            f"{len(cut)} calls cut by Asterisk itself, {len(lost)} new calls lost, {len(open_left)} incidents half-written")
    assert worst <= RECONNECT_S, f"the app took {worst:.1f} s to reconnect"
    assert not lost, f"callers after the restart no person answered: {sorted(lost)}"
    assert not open_left, open_left


# AMI and the ARI WebSocket dropped ------------------------------------------------------


def test_ami_and_the_ari_websocket_dropped_under_calls_lose_no_call(broken: Stack, record_property: Callable[[str, object], None]) -> None:
    drops, calls, every = rounds(2, 6), rounds(8, 30), rounds(2500, 3500)
    who = numbers("drops", calls)
    before = broken.health()
    people = on_shift(broken, calls)
    stream = callers(broken, who, every_ms=every)
    rng = random.Random(seed())
    figures_before = metrics(broken) or {}
    ari_cuts = ami_cuts = 0
    for _ in range(drops):
        time.sleep(rng.uniform(1.5, 4.0))
        if cut_tcp(broken.settings.ari_port).count("ESTAB"):
            ari_cuts += 1
        wait_for("ARI back", lambda: broken.health().get("ari_connected"), timeout=20)
        time.sleep(rng.uniform(0.5, 2.0))
        if cut_tcp(broken.settings.ami_port).count("ESTAB"):
            ami_cuts += 1
        wait_for("AMI back", lambda: broken.health().get("ami_connected"), timeout=30)
    lost = finish(broken, people, stream, who)
    open_left = all_closed(broken, who)
    after = broken.health()
    report(record_property, f"cut the ARI WebSocket {ari_cuts} times and AMI {ami_cuts} times under {calls} calls: "
                            f"{len(lost)} calls lost, {len(open_left)} incidents half-written, AMI logins {before['ami_logins']} -> {after['ami_logins']}")
    assert ari_cuts == drops and ami_cuts == drops
    assert not lost, f"callers no person answered: {sorted(lost)}"
    assert not open_left, open_left
    assert after["ari_connected"] and after["ami_connected"] and after["ami_logins"] > before["ami_logins"]
    figures = metrics(broken)
    if figures is not None:  # the same seen by Prometheus: links up, each cut counted
        assert figures["ivr112_ari_connected"] == 1 and figures["ivr112_ami_connected"] == 1
        for kind, cuts in (("ari_disconnect", ari_cuts), ("ami_disconnect", ami_cuts)):
            series = f'ivr112_failures_total{{kind="{kind}"}}'
            assert figures[series] - figures_before.get(series, 0) >= cuts, (series, figures[series])
    log = broken.app_log.read_text(errors="replace")
    assert "ARI WebSocket" in log and "reconnecting" in log


# The store's disk full, then read-only ----------------------------------------------------


@contextmanager
def store_on_small_disk(stack: Stack, size_kb: int) -> Iterator[Path]:
    """The app's SQLite file moved to a small tmpfs of its own (a symlink where it was), with
    the app restarted on it; put back and unmounted afterwards, whatever happens."""
    data = stack.settings.data_path
    disk = stack.tmp / "small-disk"
    disk.mkdir(exist_ok=True)
    stack.app_stop()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_kb}k,mode=0755", "ivr112-chaos", str(disk)], check=True)
    try:
        for suffix in ("", "-wal", "-shm"):
            src = data / (STORE_FILE + suffix)
            if src.exists() and not src.is_symlink():
                (disk / src.name).write_bytes(src.read_bytes())
                src.unlink()
        (data / STORE_FILE).symlink_to(disk / STORE_FILE)
        stack.app_start()
        yield disk
    finally:
        if stack.app_proc is not None and stack.app_proc.poll() is None:
            stack.app_stop()
        subprocess.run(["mount", "-o", "remount,rw", str(disk)], check=False)
        (data / STORE_FILE).unlink(missing_ok=True)
        for suffix in ("", "-wal", "-shm"):
            src = disk / (STORE_FILE + suffix)
            if src.exists():
                (data / src.name).write_bytes(src.read_bytes())
        subprocess.run(["umount", str(disk)], check=False)
        if os.path.ismount(disk):
            subprocess.run(["umount", "-l", str(disk)], check=False)


def fill(disk: Path) -> Path:
    """Write a file until the disk is full (after SQLite's WAL is cut back to nothing, so the
    app's next write needs new space)."""
    with sqlite3.connect(disk / STORE_FILE) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    filler = disk / "filler"
    with filler.open("wb", buffering=0) as f:
        try:
            while f.write(b"\0" * 4096):
                pass
        except OSError as exc:
            assert exc.errno == errno.ENOSPC, exc
    return filler


def store_state(stack: Stack) -> str:
    return str(stack.health().get("store", "?"))


def test_the_stores_disk_full_then_read_only_calls_go_on_the_failure_is_loud_and_writes_resume(broken: Stack, record_property: Callable[[str, object], None]) -> None:
    per_fault = rounds(3, 8)
    full_calls = numbers("store", per_fault)
    ro_calls = numbers("store", per_fault, start=100)
    # Room beyond the file for SQLite's WAL once the filler is gone: the writes kept meanwhile are
    # replayed one transaction each, and their pages fill the WAL (4 KB each) until a checkpoint.
    size_kb = (broken.settings.data_path / STORE_FILE).stat().st_size // 1024 + 8192
    with store_on_small_disk(broken, size_kb) as disk:
        assert store_state(broken) == "ok"
        # Disk full while the app runs (the operators log in before: their log is in the store too).
        people = on_shift(broken, per_fault)
        filler = fill(disk)
        stream = callers(broken, full_calls, every_ms=2000)
        failing = wait_for("/health to say the store fails", lambda: (s := store_state(broken)).startswith("failing") and s, timeout=30)
        figures = metrics(broken)
        lost_full = finish(broken, people, stream, full_calls)
        assert "FAILING" in broken.app_log.read_text(errors="replace")
        filler.unlink()
        wait_for("the store to take writes again", lambda: store_state(broken) == "ok", timeout=20)
        open_full = all_closed(broken, full_calls, timeout=20)
        # Read-only: the app restarts onto a file system it cannot write.
        broken.app_stop()
        subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
        broken.app_start()
        failing_ro = wait_for("/health to say the store fails", lambda: (s := store_state(broken)).startswith("failing") and s, timeout=30)
        people = on_shift(broken, per_fault, login=False)  # still in the queue (Asterisk keeps members)
        stream = callers(broken, ro_calls, every_ms=2000)
        lost_ro = finish(broken, people, stream, ro_calls)
        subprocess.run(["mount", "-o", "remount,rw", str(disk)], check=True)
        wait_for("the store to take writes again", lambda: store_state(broken) == "ok", timeout=20)
        open_ro = all_closed(broken, ro_calls, timeout=20)
        seen_ro = incidents_of(broken, ro_calls)
    report(record_property, f"store disk full under {per_fault} calls ({failing}): {len(lost_full)} calls lost, {len(open_full)} incidents half-written; "
                            f"read-only under {per_fault} calls ({failing_ro}): {len(lost_ro)} lost, {len(open_ro)} half-written, "
                            f"{len(seen_ro)} incidents written once the disk was back")
    assert not lost_full and not lost_ro, (sorted(lost_full), sorted(lost_ro))
    assert not open_full and not open_ro, (open_full, open_ro)
    assert len(incidents_of(broken, full_calls)) == per_fault and len(seen_ro) == per_fault
    if figures is not None:  # Prometheus saw it too, while it lasted
        assert figures["ivr112_store_ok"] == 0 and figures['ivr112_failures_total{kind="store"}'] > 0, figures
