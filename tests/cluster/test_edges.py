"""Two Kamailio edges sharing a floating address (keepalived, docs/cluster.md): with SIPp
callers under steady load to that address, the Kamailio holding it is SIGKILLed (its whole
process group, as a crash takes it): the address moves to the other edge within seconds, no
new call is lost, and the calls already up end normally (their BYE follows the record-route,
which names the floating address, through the edge that holds it now).
"""

from __future__ import annotations

import os
import signal
import time

from ari_app.cluster import control, keepalived
from tests.cluster.conftest import Running, sipp_counts
from tests.cluster.faults import each_call_recorded_once, incidents_of, under_load
from tests.support.poll import wait_for


def status_of(r: Running, edge: str) -> str:
    res = r.ivr112("status")
    (line,) = [line for line in res.stdout.splitlines() if line.startswith(edge)]
    return line


def test_the_floating_address_moves_when_its_kamailio_dies_and_no_call_is_lost(two_edges: Running) -> None:
    r = two_edges
    vip = r.cluster.edge_vip
    assert control.wait_vip_held(r.cluster) == "edge1", "the first edge (priority 150) should hold the address at start"
    assert f"holds {vip}" in status_of(r, "edge1") and "standby" in status_of(r, "edge2")

    kamailio_pid = control.read_state(r.paths)["edge1"]
    moved: dict[str, float] = {}

    def kill_edge1() -> None:
        os.killpg(kamailio_pid, signal.SIGKILL)  # its own session (start_new_session): the server and its workers
        killed = time.monotonic()
        wait_for(f"{vip} on edge2", lambda: keepalived.holders(r.cluster) == ["edge2"], timeout=30)
        moved["s"] = time.monotonic() - killed

    run = under_load(r, "edgekill", "0821", kill_edge1)
    counts = sipp_counts(r.tmp / "edgekill")
    retrans = {k: v for k, v in counts.items() if "Retrans" in k and v}
    print(f"floating address on edge2 {moved['s']:.1f} s after edge1's Kamailio was killed; SIPp retransmissions {retrans}")
    assert run.lost_new == 0, f"{run.lost_new} new calls were not answered"
    assert run.cut == 0, f"{run.cut} calls up through edge1 did not end with their BYE answered"
    each_call_recorded_once(r, "0821", run)
    calls = incidents_of(r, "0821")
    through_dead_edge = [i for i in calls if i.arrived_at < run.fault_at and i.ended_at and i.ended_at > run.fault_at]
    print(f"{len(through_dead_edge)} calls were up through edge1 when it died; each ended by its caller's BYE through edge2")
    assert through_dead_edge, "no call was up through edge1 when it died: nothing was proven for calls already up"
    assert all(i.end_reason != "node_lost" for i in calls)

    line = status_of(r, "edge2")
    assert f"holds {vip}" in line and "running" in line, line
    assert "stopped" in status_of(r, "edge1")

    # edge1 started again (`cluster up` starts what is not running): nopreempt, so the address
    # stays where it is (no second switch), and calls still go through.
    res = r.ivr112("up")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "standby" in status_of(r, "edge1") and keepalived.holders(r.cluster) == ["edge2"]
    again = r.sipp("edgeback", calls=6, rate=6, seconds=0.5, caller="0822")
    assert again.wait(timeout=60) == 0, "calls through edge2 failed after edge1 came back"
