"""Two Kamailio edges sharing a floating address (keepalived, docs/cluster.md): with SIPp
callers under steady load to that address, the Kamailio holding it is SIGKILLed (its whole
process group, as a crash takes it), or the holder's link is cut (as its host lost): the
address moves to the other edge within seconds, no new call is lost, and the calls already
up end normally (their BYE follows the record-route, which names the floating address,
through the edge that holds it now).
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable

from ari_app.cluster import control, keepalived, netns
from tests.cluster.callers import sipp_counts
from tests.cluster.conftest import Running
from tests.cluster.faults import Run, each_call_recorded_once, incidents_of, under_load
from tests.support.poll import wait_for


def status_of(r: Running, edge: str) -> str:
    res = r.ivr112("status")
    (line,) = [line for line in res.stdout.splitlines() if line.startswith(edge)]
    return line


def switch_under_load(r: Running, name: str, prefix: str, fault: Callable[[], None], *, holder: str, what: str) -> Run:
    """SIPp callers to the floating address; once calls are up, `fault()` on `holder`, timing
    how long until the other edge has the address; then no call may be lost or cut."""
    other = next(e.name for e in r.cluster.all_edges if e.name != holder)
    moved: dict[str, float] = {}

    def fault_and_time() -> None:
        fault()
        struck = time.monotonic()
        wait_for(f"{r.cluster.edge_vip} on {other}", lambda: other in keepalived.holders(r.cluster), timeout=30)
        moved["s"] = time.monotonic() - struck

    run = under_load(r, name, prefix, fault_and_time)
    retrans = {k: v for k, v in sipp_counts(r.tmp / name).items() if "Retrans" in k and v}
    print(f"{holder} {what}: the floating address on {other} {moved['s']:.1f} s later; SIPp retransmissions {retrans}")
    assert run.lost_new == 0, f"{run.lost_new} new calls were not answered"
    assert run.cut == 0, f"{run.cut} calls up through {holder} did not end with their BYE answered"
    each_call_recorded_once(r, prefix, run)
    calls = incidents_of(r, prefix)
    through_lost_edge = [i for i in calls if i.arrived_at < run.fault_at and i.ended_at and i.ended_at > run.fault_at]
    print(f"{len(through_lost_edge)} calls were up through {holder} then; each ended by its caller's BYE through {other}")
    assert through_lost_edge, f"no call was up through {holder}: nothing was proven for calls already up"
    assert all(i.end_reason != "node_lost" for i in calls)
    return run


def test_the_floating_address_moves_when_its_kamailio_dies_and_no_call_is_lost(two_edges: Running) -> None:
    r = two_edges
    vip = r.cluster.edge_vip
    assert control.wait_vip_held(r.cluster) == "edge1", "the first edge (priority 150) should hold the address at start"
    assert f"holds {vip}" in status_of(r, "edge1") and "standby" in status_of(r, "edge2")

    pid = control.read_state(r.paths)["edge1"]
    # Its own session (start_new_session): the server and its workers, as a crash takes them.
    switch_under_load(r, "edgekill", "0821", lambda: os.killpg(pid, signal.SIGKILL), holder="edge1", what="Kamailio killed")
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


def test_the_edge_holding_the_address_cut_off_loses_no_new_call(two_edges: Running) -> None:
    """The holder's link cut (as its host lost): no advert says it is gone, so the other edge
    takes the address once three adverts are missed (advert_int 1 s); callers' INVITEs sent
    meanwhile are retransmitted. Restored: one edge holds the address again."""
    r = two_edges
    holder = control.wait_vip_held(r.cluster)
    part = next(e for e in r.cluster.all_edges if e.name == holder)
    try:
        switch_under_load(r, "edgecut", "0823", lambda: netns.set_link(r.cluster, part, up=False), holder=holder,
                          what="cut off")
    finally:
        netns.set_link(r.cluster, part, up=True)
    print(f"{holder}'s link restored: {r.cluster.edge_vip} held by {control.wait_vip_held(r.cluster)} alone")
    again = r.sipp("edgecutback", calls=6, rate=6, seconds=0.5, caller="0824")
    assert again.wait(timeout=60) == 0, f"calls to {r.cluster.edge_vip} failed after {holder}'s link was restored"
