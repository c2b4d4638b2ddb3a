"""Calls through the cluster's edge: spread over both nodes, and a node's Asterisk killed
under steady load loses no new call; the calls that were on it are closed and their callers
listed for a callback (the media of those calls is gone: that cannot be saved).
"""

from __future__ import annotations

import os
import signal
import time

from ari_app.asterisk.layout import Layout
from ari_app.cluster.sweep import node_of
from ivr.store import Incident, now
from tests.cluster.conftest import LONG, Running, sipp_counts
from tests.support.poll import wait_for

CALL_SECONDS = 3.0
RATE = 4.0


def incidents_of(r: Running, prefix: str) -> list[Incident]:
    store = r.store()
    try:
        return [i for i in store.recent(limit=2000) if i.caller_number.startswith(prefix)]
    finally:
        store.close()


def test_calls_through_the_edge_are_spread_over_both_nodes(cluster: Running) -> None:
    sipp = cluster.sipp("spread", calls=10, rate=5, seconds=1, caller="0811")
    assert sipp.wait(timeout=120) == 0, "some calls through the edge failed"
    counts = sipp_counts(cluster.tmp / "spread")
    assert counts["0_INVITE_Sent"] == counts["4_200_Recv"] == counts["8_200_Recv"] == 10
    by_node = [node_of(i) for i in incidents_of(cluster, "0811")]
    print(f"\ncalls per node: node1 {by_node.count('node1')}, node2 {by_node.count('node2')}")
    assert by_node.count("node1") >= 3 and by_node.count("node2") >= 3


def test_a_nodes_asterisk_killed_under_load_loses_no_new_call(cluster: Running) -> None:
    calls = 200 if LONG else 40
    sipp = cluster.sipp("kill", calls=calls, rate=RATE, seconds=CALL_SECONDS, caller="0812")
    wait_for("calls up on node1", lambda: sum(node_of(i) == "node1" and not i.ended_at for i in incidents_of(cluster, "0812")) >= 3,
             timeout=30)
    layout = Layout(cluster.settings.root_path, cluster.cluster.instance(cluster.cluster.node("node1")))
    pid = int(layout.pidfile.read_text())
    os.kill(pid, signal.SIGKILL)
    killed, killed_at = time.monotonic(), now()

    assert sipp.wait(timeout=180) in (0, 1)
    counts = sipp_counts(cluster.tmp / "kill")
    lost_new = counts["0_INVITE_Sent"] - counts["4_200_Recv"]
    cut = counts.get("8_200_Unexp", 0) + counts.get("8_200_Timeout", 0)
    # The calls node1 had when it was killed: arrived before, not ended before.
    on_node1 = [i for i in incidents_of(cluster, "0812")
                if node_of(i) == "node1" and i.arrived_at < killed_at and not (i.ended_at and i.ended_at < killed_at)]
    print(f"\n{counts['0_INVITE_Sent']} calls, {lost_new} new calls lost, {cut} calls cut (up on node1 when it was killed; "
          f"{len(on_node1)} on node1 in the store)")
    assert lost_new == 0, f"{lost_new} new calls were not answered"
    # Not asserted equal (docs/cluster.md, "not proven"): a call Asterisk answered in the
    # dialplan but whose StasisStart had not reached the app when it died has no incident.
    assert on_node1 and len(on_node1) <= cut

    def all_closed() -> bool:
        store = cluster.store()
        try:
            return all((x := store.get(i.id)) is not None and x.ended_at for i in on_node1)
        finally:
            store.close()

    wait_for("every call that was on node1 to be closed", all_closed, timeout=30)
    closed_after = time.monotonic() - killed
    store = cluster.store()
    try:
        reasons = [x.end_reason for i in on_node1 if (x := store.get(i.id)) is not None]
        missing = [i.caller_number for i in on_node1 if store.callback(i.caller_number) is None]
    finally:
        store.close()
    print(f"closed {closed_after:.1f} s after the kill: {reasons}")
    assert not missing, f"callers of lost calls not on the callback list: {missing}"

    # The guard restarted node1's Asterisk: the edge uses it again.
    wait_for("the edge to see node1 up again", lambda: cluster.edge_states().get("10.211.13.11") == "up", timeout=30)
    again = cluster.sipp("again", calls=6, rate=6, seconds=0.5, caller="0813")
    assert again.wait(timeout=60) == 0
    assert any(node_of(i) == "node1" for i in incidents_of(cluster, "0813")), "node1 took no call after it came back"
