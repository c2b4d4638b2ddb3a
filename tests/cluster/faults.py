"""What the fault tests share: SIPp callers under steady load through the edge while a
fault is made, and the figures a user would notice (new calls lost, calls cut, and for the
calls a lost node had: their incidents, `node_lost` labels and callback entries).
"""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass

import yaml
from sqlalchemy import text

from ari_app.asterisk import cel
from ari_app.calls.recovery import NODE_LOST, VANISHED
from ari_app.cluster.sweep import node_of
from ari_app.cluster.topology import NODE_HTTP_PORT
from ivr.secrets import SECRETS_FILE
from ivr.store import Incident, now
from tests.cluster.callers import sipp_counts
from tests.cluster.conftest import LONG, Running
from tests.support.poll import WaitTimeout, wait_for

CALL_SECONDS = 3.0
RATE = 4.0


def incidents_of(r: Running, prefix: str) -> list[Incident]:
    store = r.store()
    try:
        return [i for i in store.recent(limit=2000) if i.caller_number.startswith(prefix)]
    finally:
        store.close()


@dataclass
class Run:
    sent: int
    lost_new: int  # INVITEs never answered
    cut: int  # answered calls that did not end with the caller's BYE answered: up where the fault struck
    fault_at: str  # store time of the fault
    fault_mono: float


def under_load(r: Running, name: str, prefix: str, fault: Callable[[], None], *, on: str = "node1") -> Run:
    """SIPp callers through the edge; once a few calls are up on `on`, `fault()`."""
    calls = 200 if LONG else 32
    sipp = r.sipp(name, calls=calls, rate=RATE, seconds=CALL_SECONDS, caller=prefix)
    try:
        wait_for(f"calls up on {on}", lambda: sum(node_of(i) == on and not i.ended_at for i in incidents_of(r, prefix)) >= 3,
                 timeout=30)
        fault_at, fault_mono = now(), time.monotonic()
        fault()
        assert sipp.wait(timeout=240) in (0, 1)
    finally:
        if sipp.poll() is None:  # the test failed before SIPp ended: stop it (by its pid), not leave it calling
            sipp.kill()
            sipp.wait()
    counts = sipp_counts(r.tmp / name)
    run = Run(counts["0_INVITE_Sent"], counts["0_INVITE_Sent"] - counts["4_200_Recv"],
              counts["4_200_Recv"] - counts["8_200_Recv"], fault_at, fault_mono)
    print(f"\n{name}: {run.sent} calls, {run.lost_new} new calls lost, {run.cut} calls cut")
    return run


def each_call_recorded_once(r: Running, prefix: str, run: Run) -> None:
    """No record lost: every call SIPp made has one incident, and each is closed."""

    def done() -> bool:
        found = incidents_of(r, prefix)
        return len(found) == run.sent and len({i.channel_id for i in found}) == run.sent and all(i.ended_at for i in found)

    try:
        wait_for(f"each of the {run.sent} calls recorded once and closed", done, timeout=60)
    except WaitTimeout:
        found = incidents_of(r, prefix)
        missing = sorted({f"{prefix}{n}" for n in range(1, run.sent + 1)} - {i.caller_number for i in found})
        raise AssertionError(f"{len(found)} incidents ({len({i.channel_id for i in found})} calls) for {run.sent} calls; "
                             f"open: {[i.channel_id for i in found if not i.ended_at]}; no incident: {missing}, "
                             f"Asterisk's record of those: {cel_rows(r, missing)}") from None
    found = incidents_of(r, prefix)
    away = [i.channel_id for i in found if i.end_reason == VANISHED]
    print(f"each of the {run.sent} calls recorded once, all closed; {len(away)} closed as {VANISHED!r}: {away}")


def cel_rows(r: Running, callers: list[str]) -> list[tuple[str, str, str, str]]:
    """What the nodes' Asterisk wrote of these callers' calls (CEL): (time, event, channel, context)."""
    store = r.store()
    try:
        with store.engine.connect() as conn:
            rows = conn.execute(text(f"SELECT eventtime, eventtype, uniqueid, context FROM {cel.TABLE} WHERE cid_num = ANY(:c) "
                                     "ORDER BY id"), {"c": callers}).all()
    finally:
        store.close()
    return [(str(t), e, u, c) for t, e, u, c in rows]


def lost_calls_recorded(r: Running, prefix: str, run: Run, *, node: str = "node1", exact: bool = True) -> None:
    """Every call `node` had when the fault struck has an incident closed as `node_lost` and its
    caller on the callback list: as many as the calls SIPp saw cut. Without `exact`, also the
    calls it took after the fault (its app dead: answered by the dialplan), and at least as
    many as were cut (a call that ended normally on a node whose app was dead has no one to
    write its end but the sweeper)."""
    assert run.cut > 0, f"the fault cut no call on {node}: nothing was proven"

    def on_node() -> list[Incident]:
        return [i for i in incidents_of(r, prefix) if node_of(i) == node and (not exact or i.arrived_at < run.fault_at)
                and not (i.ended_at and i.ended_at < run.fault_at)]

    def settled() -> bool:
        found = on_node()
        return all(i.ended_at for i in found) and (len(found) == run.cut if exact else len(found) >= run.cut)

    try:
        wait_for(f"an incident, closed, for each of the {run.cut} calls cut on {node}", settled, timeout=45)
    except WaitTimeout:
        raise AssertionError(f"calls on {node}: {[(i.channel_id, i.arrived_at, i.ended_at, i.end_reason) for i in on_node()]}") from None
    closed_after = time.monotonic() - run.fault_mono
    found = on_node()
    store = r.store()
    try:
        listed = [i for i in found if (c := store.callback(i.caller_number)) is not None and c.incident_id == i.id]
        from_asterisk = [i for i in found if any(e.kind == "recorded_by_asterisk" for e in store.events(i.id))]
    finally:
        store.close()
    node_lost = [i for i in found if i.end_reason == NODE_LOST]
    print(f"calls cut {run.cut}; on {node} at or after the fault {len(found)}, node_lost {len(node_lost)}, callback entries "
          f"{len(listed)} ({len(from_asterisk)} recorded from Asterisk's own record); all closed {closed_after:.1f} s after "
          f"the fault; reasons {sorted({i.end_reason or '' for i in found})}")
    assert len(node_lost) == len(listed) == len(found)


def wall_nodes(r: Running, node: str) -> dict[str, bool]:
    """The supervisor's wall on `node` (/api/wall, with the scripts' bearer key): each node, up or not."""
    key = yaml.safe_load((r.paths.state_dir / "shared" / SECRETS_FILE).read_text())["console_secret"]  # read only
    request = urllib.request.Request(f"http://{r.cluster.node(node).address}:{NODE_HTTP_PORT}/api/wall",
                                     headers={"Authorization": f"Bearer {key}"})
    with urllib.request.urlopen(request, timeout=10) as res:
        cluster = json.load(res)["cluster"]
    assert cluster["cluster"] and cluster["fresh"], cluster
    return {n["name"]: n["up"] for n in cluster["nodes"]}
