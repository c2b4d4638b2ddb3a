"""Calls through the cluster's edge: spread over both nodes, and a node's Asterisk killed
under steady load loses no new call; the calls that were on it are closed and their callers
listed for a callback (the media of those calls is gone: that cannot be saved).
"""

from __future__ import annotations

import os
import signal

from ari_app.asterisk.layout import Layout
from ari_app.cluster.sweep import node_of
from tests.cluster.callers import sipp_counts
from tests.cluster.conftest import Running
from tests.cluster.faults import each_call_recorded_once, incidents_of, lost_calls_recorded, under_load
from tests.support.poll import wait_for


def test_calls_through_the_edge_are_spread_over_both_nodes(cluster: Running) -> None:
    sipp = cluster.sipp("spread", calls=10, rate=5, seconds=1, caller="0811")
    assert sipp.wait(timeout=120) == 0, "some calls through the edge failed"
    counts = sipp_counts(cluster.tmp / "spread")
    assert counts["0_INVITE_Sent"] == counts["4_200_Recv"] == counts["8_200_Recv"] == 10
    by_node = [node_of(i) for i in incidents_of(cluster, "0811")]
    print(f"\ncalls per node: node1 {by_node.count('node1')}, node2 {by_node.count('node2')}")
    assert by_node.count("node1") >= 3 and by_node.count("node2") >= 3


def test_a_nodes_asterisk_killed_under_load_loses_no_new_call(cluster: Running) -> None:
    layout = Layout(cluster.settings.root_path, cluster.cluster.instance(cluster.cluster.node("node1")))
    run = under_load(cluster, "kill", "0812", lambda: os.kill(int(layout.pidfile.read_text()), signal.SIGKILL))
    assert run.lost_new == 0, f"{run.lost_new} new calls were not answered"
    lost_calls_recorded(cluster, "0812", run)
    each_call_recorded_once(cluster, "0812", run)

    # The guard restarted node1's Asterisk: the edge uses it again.
    wait_for("the edge to see node1 up again", lambda: cluster.edge_states().get(cluster.cluster.node("node1").address) == "up", timeout=30)
    again = cluster.sipp("again", calls=6, rate=6, seconds=0.5, caller="0813")
    assert again.wait(timeout=60) == 0
    assert any(node_of(i) == "node1" for i in incidents_of(cluster, "0813")), "node1 took no call after it came back"
