"""The PostgreSQL store down under steady 112 calls (issue 15): its server stopped for a
while, or killed (SIGKILL, by its pid) and started again, while SIPp callers keep calling
112 about once a second. Callers hang up at various points (in the greeting, in the menu,
in the queue) and some wait until a person answers them, so some calls go on the callback
list and some do not.

Counted afterwards: every SIPp call completed as its caller expects (no call lost), one
incident per caller number (none lost, none doubled), each ended; every caller no person
answered has one callback entry, listed once, and no answered caller has one; the backlog
drained (/health says the store is ok, the spool file is gone). The figures are printed.

A stack of its own on a PostgreSQL server of its own (tests/pg.py), since the tests stop
and kill that server. `make test` runs the short form (a 6 s outage, 15 calls); `make
chaos` (IVR112_CHAOS=long) the long one (a 20 s outage, 45 calls).
"""

from __future__ import annotations

import re
import signal
import time
from collections.abc import Callable, Iterator, Sequence

import pytest

from ari_app.store import IncidentStore
from ivr.callbacks import Callback
from ivr.store import Incident
from tests import pg
from tests.chaos.conftest import rounds
from tests.chaos.test_process_faults import all_closed, callers, finish, incidents_of, log_since, log_size, numbers, on_shift, report
from tests.integration.stack import Sipp, Stack
from tests.support.poll import wait_for
from tests.support.stacks import healed, running_stack

pytestmark = pytest.mark.asterisk

# Callers who give up this long after the answer: in the greeting, in the menu, in the queue.
GIVE_UP_MS = (1000, 4000, 9000)
# Operators hold each call longer than any of those callers stays: one who gives up always
# hangs up first, as the scenario expects, whether or not a person took the call.
HOLD_MS = 12000
SPOOL = "store-spool.jsonl"


@pytest.fixture(scope="module")
def pg_and_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[pg.PostgresServer, Stack]]:
    """The PostgreSQL server, and the stack that keeps its record there."""
    with pg.running() as server, running_stack(tmp_path_factory, "pgchaos", store_url=server.create_database("ivr112")) as stack:
        yield server, stack


@pytest.fixture
def server(pg_and_stack: tuple[pg.PostgresServer, Stack]) -> pg.PostgresServer:
    return pg_and_stack[0]


@pytest.fixture
def broken(pg_and_stack: tuple[pg.PostgresServer, Stack], request: pytest.FixtureRequest) -> Iterator[Stack]:
    with healed(pg_and_stack[1], request) as s:
        yield s


def givers_up(stack: Stack, who: Sequence[str], stay_ms: int, *, every_ms: int) -> Sipp:
    """One SIPp placing a call for each number, one every `every_ms`, each caller hanging up
    `stay_ms` after the answer (in the background)."""
    inf = stack.tmp / f"givers-up-{who[0]}.csv"
    inf.write_text("SEQUENTIAL\n" + "".join(f"{n};\n" for n in who))
    return stack.sipp("caller_gives_up", "-inf", str(inf), "-s", "112", "-d", str(stay_ms), "-r", "1", "-rp", str(every_ms),
                      "-l", "100", background=True, timeout=len(who) * every_ms / 1000 + 60, calls=len(who))


def person_answered(incident: Incident) -> bool:
    return bool(incident.operator_answered_at) or (incident.route_result or "").startswith("answered by")


def listed_once(s: IncidentStore, incidents: list[Incident]) -> dict[str, tuple[Callback | None, int]]:
    """Each caller's callback entry, and how many times its incident says it was listed."""
    return {i.caller_number: (s.callback(i.caller_number), [e.kind for e in s.events(i.id)].count("callback_listed"))
            for i in incidents}


@pytest.mark.parametrize("fault", [signal.SIGINT, signal.SIGKILL], ids=["stopped", "killed"])
def test_postgresql_down_under_steady_calls_loses_no_call_no_incident_and_no_callback(
    broken: Stack, server: pg.PostgresServer, fault: signal.Signals, record_property: Callable[[str, object], None]
) -> None:
    name = "pg_stopped" if fault is signal.SIGINT else "pg_killed"
    # One new caller a second in all: each group of givers-up calls every len(GIVE_UP_MS) s.
    per_group, waiting, outage_s = rounds(4, 12), rounds(3, 9), rounds(6.0, 20.0)
    every_ms = 1000 * len(GIVE_UP_MS)
    groups = [numbers(name, per_group, start=g * per_group) for g in range(len(GIVE_UP_MS))]
    patient = numbers(name, waiting, start=len(GIVE_UP_MS) * per_group)  # press 0, wait for a person
    everyone = [n for g in groups for n in g] + patient
    app_at, _ = log_size(broken)
    people = on_shift(broken, len(everyone), hold_ms=HOLD_MS)
    streams = [givers_up(broken, who, stay, every_ms=every_ms) for who, stay in zip(groups, GIVE_UP_MS, strict=True)]
    persons = callers(broken, patient, every_ms=every_ms)
    # The fault comes once calls are flowing through a healthy store.
    wait_for("calls on the healthy store", lambda: len(incidents_of(broken, everyone)) >= 3, timeout=30)
    server.stop(fault)
    down = time.monotonic()
    try:
        waiting_writes = wait_for("writes kept while PostgreSQL is down",
                                  lambda: (m := re.search(r"(\d+) writes waiting", broken.health().get("store", ""))) and int(m.group(1)) > 0 and m,
                                  timeout=outage_s + 10)
        time.sleep(max(0.0, outage_s - (time.monotonic() - down)))  # the outage itself, not a wait for something
        at_restart = re.search(r"(\d+) writes waiting", broken.health().get("store", ""))
    finally:
        server.start()
    outage = time.monotonic() - down
    failed = [s.report() for s in streams if s.wait() != 0]
    lost = finish(broken, people, persons, patient)
    wait_for("the backlog to drain", lambda: broken.health().get("store", "") == "ok", timeout=60)
    open_left = all_closed(broken, everyone, timeout=60)
    seen = incidents_of(broken, everyone)
    per_number = {n: [i for i in seen if i.caller_number == n] for n in everyone}
    lists = broken.read(lambda s: listed_once(s, seen))
    unanswered = [i for i in seen if not person_answered(i)]
    wrong = {i.caller_number: lists[i.caller_number] for i in seen
             if (lists[i.caller_number][0] is None) != person_answered(i) or lists[i.caller_number][1] != (0 if person_answered(i) else 1)}
    wrong_entries = {i.caller_number: entry for i in unanswered if (entry := lists[i.caller_number][0]) is not None
                     and (entry.calls != 1 or entry.incident_id != i.id or entry.status != "open")}
    replayed = sum(int(n) for n in re.findall(r"writes again: (\d+) kept writes stored", log_since(broken.app_log, app_at)))
    report(record_property,
           f"PostgreSQL {'stopped' if fault is signal.SIGINT else 'killed'} for {outage:.1f} s under {len(everyone)} calls "
           f"(1 a second; {len(patient)} waiting for a person): {len(failed)} SIPp callers failed, {len(lost)} waiting callers no person took, "
           f"{len(everyone) - len({i.caller_number for i in seen})} incidents lost, {len(seen) - len({i.caller_number for i in seen})} doubled, "
           f"{len(open_left)} left open; {len(unanswered)} unanswered, {sum(1 for i in unanswered if lists[i.caller_number][0])} on the callback list, "
           f"{len(wrong)} listed wrongly; {sum(1 for i in seen if i.fallback)} calls sent to a person by the store fault; "
           f"writes waiting {waiting_writes.group(1)} at first, {at_restart.group(1) if at_restart else '?'} at restart, {replayed} replayed")
    assert not failed, "\n".join(failed)
    assert not lost, f"waiting callers no person answered: {sorted(lost)}"
    assert {n: len(found) for n, found in per_number.items() if len(found) != 1} == {}
    assert not open_left, [(i.id, i.caller_number) for i in open_left]
    assert not wrong, wrong
    assert not wrong_entries, wrong_entries
    assert replayed > 0  # the fault was real: writes were kept and replayed
    assert not (broken.settings.data_path / SPOOL).exists()
