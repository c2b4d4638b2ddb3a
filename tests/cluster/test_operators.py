"""Operators across nodes (docs/cluster.md, "Operators across nodes"): SIPp softphones
register once, at the edge (digest auth with their generated passwords); the operators'
queues live on node1 (its home), node2 stands by with the same members; callers arriving
on either node press 0 and reach them.

Figures printed: calls answered by each operator, calls per node, offers of a second call to
an operator already on one (from each phone's own log of INVITEs and from queue_log), and
seconds a caller waited while an operator was free (from queue_log, defined in `idle_while_waiting`).
"""

from __future__ import annotations

import re
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from ari_app.asterisk import process
from ari_app.asterisk.layout import Layout
from ari_app.cluster.control import read_state, stop_pid
from ari_app.cluster.sweep import node_of
from ari_app.operators.desk import QUEUE_LOG_FILE
from tests.cluster.callers import SIPP
from tests.cluster.conftest import LONG, Running
from tests.cluster.faults import incidents_of
from tests.integration.stack import stop_process
from tests.support.poll import wait_for

SIPP_DIR = Path(__file__).resolve().parents[1] / "sipp"
QUEUE = "kotim-operators"
WRAPUP_S = 5  # the plan's queue's wrapup: an operator is not free for a caller during it
OPERATORS = {"operator1": 5071, "operator2": 5072}
MEDIA = {"operator1": 6100, "operator2": 6110, "callers": 6200}


def password(r: Running, name: str) -> str:
    shared = yaml.safe_load((r.paths.state_dir / "shared" / "secrets.yaml").read_text())  # read only
    return str(shared["operator_passwords"][name])


def phone(r: Running, name: str, scenario: str, *args: str, port: int, calls: int = 1, timeout: int = 30,
          media: int = 6300) -> subprocess.Popen[bytes]:
    """A SIPp in the callers' namespace talking to the edge only; its files in tmp/<name>."""
    workdir = r.tmp / name
    workdir.mkdir(exist_ok=True)
    cmd = ["ip", "netns", "exec", r.cluster.callers.netns(r.cluster.name), SIPP,
           f"{r.cluster.sip_address}:{r.cluster.edge_sip_port}", "-sf", str(SIPP_DIR / f"{scenario}.xml"),
           "-i", r.cluster.callers.address, "-p", str(port), "-mp", str(media), "-m", str(calls), "-nostdin", "-trace_counts",
           "-trace_err", "-trace_logs", "-trace_msg", "-timeout", f"{timeout}s", "-timeout_error", *args]
    return subprocess.Popen(cmd, cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def register(r: Running, name: str, *, secret: str | None = None) -> int:
    reg = phone(r, f"register-{name}", "operator_register", "-key", "operator", name, "-au", name,
                "-ap", secret if secret is not None else password(r, name), port=OPERATORS[name], timeout=15)
    return reg.wait(timeout=60)


def layout(r: Running, node: str) -> Layout:
    return Layout(r.settings.root_path, r.cluster.instance(r.cluster.node(node)))


def members(r: Running, node: str) -> list[str]:
    """The operators node's app_queue holds as members of the plan's queue (Asterisk's own word)."""
    text = process.cli(layout(r, node), f"queue show {QUEUE}").stdout
    return re.findall(r"^\s+(\S+) \(PJSIP/", text, flags=re.MULTILINE)


def all_in_queue(r: Running, node: str) -> Callable[[], bool]:
    return lambda: set(members(r, node)) >= set(OPERATORS)


def logged_in_at_the_edge_on_both_nodes(r: Running) -> None:
    """Both operators registered at the edge and logged in with *11 through it: on node1,
    and node2's watcher has made node2's queue the same."""
    for name, port in OPERATORS.items():
        assert register(r, name) == 0, f"{name} could not register at the edge"
        login = phone(r, f"login-{name}", "operator_dial", "-s", "*11", "-key", "operator", name, "-au", name,
                      "-ap", password(r, name), port=port)
        assert login.wait(timeout=60) == 0, f"{name}'s *11 through the edge failed"
    for node in ("node1", "node2"):
        wait_for(f"both operators in {node}'s queue", all_in_queue(r, node), timeout=30)


@dataclass
class Offer:
    at_ms: int
    end_ms: int | None
    caller: str


def offers(r: Running, name: str) -> list[Offer]:
    """The calls the phone was offered (OFFER/END lines of its log), in order."""
    found: dict[str, Offer] = {}
    for path in (r.tmp / name).glob("*_logs.log"):
        for line in path.read_text().splitlines():
            if m := re.match(r"(OFFER|END)=(\d+) CALL=(\S+) FROM=(\S+)", line):
                kind, at, call, caller = m.groups()
                if kind == "OFFER":
                    found.setdefault(call, Offer(int(at), None, caller))
                elif call in found:
                    found[call].end_ms = int(at)
    return sorted(found.values(), key=lambda o: o.at_ms)


def second_offers(calls: list[Offer]) -> list[tuple[Offer, Offer]]:
    """(earlier, later): offers that reached the phone while an earlier call of it was still up.
    A call the scenario lost track of (an unexpected message in a ringall race: SIPp aborts
    it, no END) is left out; queue_log's CONNECTs still show a second call to a busy operator."""
    return [(p, o) for i, o in enumerate(calls) for p in calls[:i] if p.end_ms is not None and p.end_ms > o.at_ms]


def queue_log(r: Running, node: str, since: float) -> list[list[str]]:
    path = layout(r, node).host(layout(r, node).log) / QUEUE_LOG_FILE
    rows = [line.split("|") for line in path.read_text().splitlines()]
    return [row for row in rows if len(row) > 4 and row[0].isdigit() and int(row[0]) >= since and row[2] == QUEUE]


def connects_while_on_a_call(rows: list[list[str]]) -> int:
    """queue_log CONNECTs of an operator who had not completed the call before."""
    on_call: set[str] = set()
    double = 0
    for row in rows:
        agent, event = row[3], row[4]
        if event == "CONNECT":
            double += agent in on_call
            on_call.add(agent)
        elif event in ("COMPLETEAGENT", "COMPLETECALLER"):
            on_call.discard(agent)
    return double


def idle_while_waiting(rows: list[list[str]], operators: set[str]) -> tuple[int, int]:
    """(seconds, longest): whole seconds of the queue_log's clock during which at least one
    caller waited in the queue (ENTERQUEUE up to CONNECT, ABANDON or EXIT...) while at least
    one operator was free: logged in (all are, the whole run), not on a call (CONNECT up to
    COMPLETE...), and not in the queue's wrap-up (WRAPUP_S after a call, and the whole second
    it ends in). `longest`: the most such seconds one caller saw.

    An operator counts as free up to the CONNECT, so the ring itself (app_queue rings a free
    operator within milliseconds, the phone answers at once) shows as one such second when
    it straddles a tick of queue_log's whole-second clock: one second per caller is the
    clock's grain, two or more is an operator left idle (Kotim's position announcement
    idles a freed operator 5-7 s before the ring)."""
    waiting: dict[str, tuple[int, int]] = {}
    busy: dict[str, list[tuple[int, int]]] = {op: [] for op in operators}
    started: dict[str, int] = {}
    for row in rows:
        t, call, agent, event = int(row[0]), row[1], row[3], row[4]
        if event == "ENTERQUEUE":
            waiting[call] = (t, t)
        elif call in waiting and (event == "CONNECT" or event in ("ABANDON", "EXITWITHTIMEOUT", "EXITEMPTY", "EXITWITHKEY")):
            waiting[call] = (waiting[call][0], t)
        if event == "CONNECT":
            started[agent] = t
        elif event in ("COMPLETEAGENT", "COMPLETECALLER") and agent in started:
            # queue_log's clock is whole seconds: free from the second after the wrap-up's end.
            busy.setdefault(agent, []).append((started.pop(agent), t + WRAPUP_S + 1))
    end = max((int(row[0]) for row in rows), default=0)
    for agent, t in started.items():
        busy.setdefault(agent, []).append((t, end + WRAPUP_S))

    def free(t: int) -> bool:
        return any(not any(a <= t < b for a, b in spans) for spans in busy.values())

    seconds: set[int] = set()
    longest = 0
    for a, b in waiting.values():
        idle = [t for t in range(a, b) if free(t)]
        seconds.update(idle)
        longest = max(longest, len(idle))
    return len(seconds), longest


@pytest.mark.timeout(1800 if LONG else 900)
def test_two_operators_at_the_edge_take_the_callers_of_both_nodes(cluster: Running) -> None:
    assert register(cluster, "operator1", secret="wrong-password") != 0, "the edge let a wrong password register"
    logged_in_at_the_edge_on_both_nodes(cluster)
    since = int(time.time())  # queue_log's clock
    calls = 100 if LONG else 20
    rate = 0.2 if LONG else 0.4  # the operators take about 2 / 7.5 s (2 s talk, 5 s wrap-up, the ring)
    phones = {name: phone(cluster, name, "cluster_operator", port=port, calls=10 * calls, timeout=1500,
                          media=MEDIA[name]) for name, port in OPERATORS.items()}
    callers = phone(cluster, "callers", "cluster_caller_operator", "-s", "112", "-key", "caller", "0841",
                    "-r", str(round(rate * 10)), "-rp", "10000", "-l", str(calls), port=5070, calls=calls, timeout=1500, media=MEDIA["callers"])
    assert callers.wait(timeout=1500) == 0, "a caller's call through the edge failed or nobody answered it"
    for p in phones.values():
        stop_process(p, grace=30)
    wait_for("every call's incident closed", lambda: all(i.ended_at for i in incidents_of(cluster, "0841")), timeout=60)
    found = incidents_of(cluster, "0841")
    per_node = Counter(node_of(i) for i in found)
    per_operator = Counter(i.operator or "nobody" for i in found)
    taken = {name: offers(cluster, name) for name in OPERATORS}
    doubles = {name: len(second_offers(o)) for name, o in taken.items()}
    unfollowed = [(name, o) for name, calls_of in taken.items() for o in calls_of if o.end_ms is None]
    rows = {node: queue_log(cluster, node, since) for node in ("node1", "node2")}
    double_connects = sum(connects_while_on_a_call(r) for r in rows.values())
    idle_s, idle_longest = idle_while_waiting(rows["node1"], set(OPERATORS))
    # This run's callers only: a caller an earlier test left in a menu may reach the queue now.
    joined = {node: sum(1 for row in r if row[4] == "ENTERQUEUE" and row[6:7] and row[6].startswith("0841"))
              for node, r in rows.items()}
    print(f"\n{calls} calls: per node {dict(per_node)}; answered per operator (incidents) {dict(per_operator)}; offers at each "
          f"phone {({n: len(o) for n, o in taken.items()})}; second call offered while on one: phones {doubles}, queue_log "
          f"{double_connects}; queue entries per node {joined}; seconds a caller waited while an operator was free: "
          f"{idle_s} (the most for one caller {idle_longest}); offers a phone's scenario lost track of (no END: left out of the "
          f"phones' check, queue_log's covers them) {[(n, o.caller) for n, o in unfollowed]}")
    assert len(found) == calls and len({i.channel_id for i in found}) == calls, "a call has no incident, or two"
    assert per_node["node1"] > 0 and per_node["node2"] > 0, per_node
    assert per_operator["nobody"] == 0, [(i.channel_id, i.route_result) for i in found if not i.operator]
    assert all(per_operator[name] > 0 for name in OPERATORS), per_operator
    assert sum(doubles.values()) == 0 and double_connects == 0, {n: second_offers(o) for n, o in taken.items()}
    assert joined["node2"] == 0 and joined["node1"] == calls, "the callers were not all in the one queue on node1"
    assert idle_longest <= 1, f"a caller waited {idle_longest} s while an operator was free"


def test_the_home_node_lost_new_queue_calls_reach_operators_through_the_standby(cluster: Running) -> None:
    if not all(set(members(cluster, n)) >= set(OPERATORS) for n in ("node1", "node2")):
        logged_in_at_the_edge_on_both_nodes(cluster)
    node1 = cluster.cluster.node("node1")
    stop_pid(read_state(cluster.paths)["node1"], timeout=10)  # the app: its guard stops node1's Asterisk
    try:
        wait_for("the edge to see node1 down", lambda: cluster.edge_states().get(node1.address) == "down", timeout=30)
        calls = 4
        phones = {name: phone(cluster, f"{name}-standby", "cluster_operator", port=port, calls=10 * calls,
                              timeout=300, media=MEDIA[name]) for name, port in OPERATORS.items()}
        callers = phone(cluster, "callers-standby", "cluster_caller_operator", "-s", "112", "-key", "caller", "0842",
                        "-r", "1", "-rp", "2000", port=5070, calls=calls, timeout=300, media=MEDIA["callers"])
        assert callers.wait(timeout=300) == 0, "with node1 lost, a caller's call failed or nobody answered it"
        for p in phones.values():
            stop_process(p, grace=30)
        wait_for("every call's incident closed", lambda: all(i.ended_at for i in incidents_of(cluster, "0842")), timeout=60)
        found = incidents_of(cluster, "0842")
        print(f"\nnode1 lost: {len(found)} calls on {sorted({node_of(i) or '?' for i in found})}, answered by "
              f"{dict(Counter(i.operator or 'nobody' for i in found))}")
        assert len(found) == calls and {node_of(i) for i in found} == {"node2"}
        assert all(i.operator in OPERATORS for i in found), [(i.channel_id, i.route_result) for i in found]
    finally:
        res = cluster.ivr112("up")  # node1 back for the tests after this one
        assert res.returncode == 0, res.stderr


def callers_waiting(r: Running, node: str) -> int:
    """Callers app_queue holds in the plan's queue on `node` now."""
    text = process.cli(layout(r, node), f"queue show {QUEUE}").stdout
    return len(re.findall(r"^\s+\d+\. \S+ \(wait:", text, flags=re.MULTILINE))


def test_a_caller_waiting_in_the_lost_homes_queue_goes_on_to_the_standbys(cluster: Running) -> None:
    if not all(set(members(cluster, n)) >= set(OPERATORS) for n in ("node1", "node2")):
        logged_in_at_the_edge_on_both_nodes(cluster)
    # The phones are registered but not answering: callers wait in node1's queue.
    callers = phone(cluster, "callers-waiting", "cluster_caller_operator", "-s", "112", "-key", "caller", "0843",
                    "-r", "2", "-rp", "1000", port=5070, calls=2, timeout=300, media=MEDIA["callers"])
    wait_for("both callers waiting in node1's queue", lambda: callers_waiting(cluster, "node1") >= 2, timeout=60)
    assert {node_of(i) for i in incidents_of(cluster, "0843")} == {"node1", "node2"}
    assert callers_waiting(cluster, "node2") == 0
    lost_at = time.monotonic()
    stop_pid(read_state(cluster.paths)["node1"], timeout=10)  # node1 lost as a whole (its app stopped: the guard stops Asterisk)
    try:
        wait_for("node2's caller back in node2's own queue", lambda: callers_waiting(cluster, "node2") >= 1, timeout=60)
        moved_after = time.monotonic() - lost_at
        phones = {name: phone(cluster, f"{name}-after", "cluster_operator", port=port, calls=10, timeout=120, media=MEDIA[name])
                  for name, port in OPERATORS.items()}
        assert callers.wait(timeout=300) == 0, "a caller's call failed"
        for p in phones.values():
            stop_process(p, grace=30)
        wait_for("both incidents closed", lambda: all(i.ended_at for i in incidents_of(cluster, "0843")), timeout=60)
        found = {node_of(i): i for i in incidents_of(cluster, "0843")}
        print(f"\nnode1 lost with a caller of each node in its queue: node2's caller in node2's queue "
              f"{moved_after:.1f} s after node1's app was told to stop (node_lost_after_s {cluster.cluster.node_lost_after_s} s), "
              f"answered by {found['node2'].operator}; node1's caller {found['node1'].end_reason}")
        assert found["node2"].operator in OPERATORS, found["node2"]
        assert found["node1"].end_reason == "node_lost"
    finally:
        res = cluster.ivr112("up")
        assert res.returncode == 0, res.stderr
