"""The fault suite (`make cluster-chaos`): with SIPp callers under steady load through the
edge, no new call is lost when a node's app is SIGKILLed, a node's link is cut and restored,
or PostgreSQL is restarted; the calls a lost node had are each closed as `node_lost` and
their callers listed for a callback (their media is gone: that cannot be saved).
"""

from __future__ import annotations

import os
import signal

from ari_app.cluster import control, netns
from ari_app.cluster.sweep import node_of
from tests.cluster.conftest import Running
from tests.cluster.faults import each_call_recorded_once, incidents_of, lost_calls_recorded, under_load, wall_nodes
from tests.support.poll import wait_for


def node1_takes_calls_again(r: Running, prefix: str) -> None:
    wait_for("the edge to see node1 up again", lambda: r.edge_states().get(r.cluster.node("node1").address) == "up", timeout=60)
    again = r.sipp(f"again{prefix}", calls=6, rate=6, seconds=0.5, caller=prefix)
    assert again.wait(timeout=60) == 0
    assert any(node_of(i) == "node1" for i in incidents_of(r, prefix)), "node1 took no call after it came back"


def test_a_nodes_app_killed_under_load_loses_no_new_call(cluster: Running) -> None:
    """The app is the node's `ivr112 run`: SIGKILLed, its guard stops the Asterisk it owned
    (docs/cluster.md), so the whole node is gone until it is started again."""
    pid = control.read_state(cluster.paths)["node1"]
    run = under_load(cluster, "appkill", "0814", lambda: os.kill(pid, signal.SIGKILL))
    assert run.lost_new == 0, f"{run.lost_new} new calls were not answered"
    # Calls node1 answered through its dialplan in the moment between the kill and its
    # Asterisk's stop reach the store from Asterisk's own record (cel_pgsql).
    each_call_recorded_once(cluster, "0814", run)
    lost_calls_recorded(cluster, "0814", run, exact=False)
    res = cluster.ivr112("up")  # what systemd's Restart= does on real hosts
    assert res.returncode == 0, res.stdout + res.stderr
    node1_takes_calls_again(cluster, "08141")


def test_a_nodes_link_cut_under_load_loses_no_new_call(cluster: Running) -> None:
    node1 = cluster.cluster.node("node1")
    try:
        run = under_load(cluster, "linkcut", "0815", lambda: netns.set_link(cluster.cluster, node1, up=False))
        assert run.lost_new == 0, f"{run.lost_new} new calls were not answered"
        lost_calls_recorded(cluster, "0815", run)
        each_call_recorded_once(cluster, "0815", run)
        assert wall_nodes(cluster, "node2") == {"node1": False, "node2": True}, "the wall does not show node1 down"
    finally:
        netns.set_link(cluster.cluster, node1, up=True)
    node1_takes_calls_again(cluster, "08151")
    wait_for("the wall to show node1 up again", lambda: wall_nodes(cluster, "node2") == {"node1": True, "node2": True}, timeout=30)


def test_postgresql_restarted_under_load_loses_no_call_and_no_record(cluster: Running) -> None:
    server = cluster.database

    def restart() -> None:
        assert server.adopt() is not None
        server.stop()
        server.start()

    run = under_load(cluster, "pgrestart", "0816", restart)
    assert run.lost_new == 0 and run.cut == 0, f"{run.lost_new} new calls lost, {run.cut} calls cut"
    each_call_recorded_once(cluster, "0816", run)
