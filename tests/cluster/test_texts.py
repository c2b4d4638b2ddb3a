"""Texts to 112 through the cluster's edge: SIP MESSAGEs go to the nodes in turn, each node
journals its own and keeps them in the shared store (none taken for another node's); a
DEC112 multipart MESSAGE is answered 202 and keeps its position; with node1's Asterisk
killed the texts go to node2.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator

import pytest

from ari_app.asterisk.layout import Layout
from ivr.settings import PROJECT_DIR
from ivr.store import Incident
from ivr.texts import JOURNAL_SUFFIX
from tests.cluster.callers import SIPP
from tests.cluster.conftest import Running
from tests.support.poll import wait_for

# Callers and texts of this run only: the nodes' Asterisk folders, and so their journals,
# outlive a cluster's `down` (the module removes its journal lines at the end all the same).
RUN = f"{int(time.time()) % 10**6:06d}"


@pytest.fixture(scope="module", autouse=True)
def _journals_removed(cluster: Running) -> Iterator[None]:
    """This module's texts leave no journal behind: a later cluster, with a new store, would take them again."""
    yield
    for node in cluster.cluster.nodes:
        layout = Layout(cluster.settings.root_path, cluster.cluster.instance(node))
        for path in layout.host(layout.texts_journal).glob(f"*{JOURNAL_SUFFIX}"):
            path.unlink()


def _text(r: Running, scenario: str, caller: str, text: str) -> str:
    """One SIP MESSAGE from the callers' namespace to the edge; SIPp's messages log (raises if SIPp failed)."""
    workdir = r.tmp / f"text-{caller}"
    workdir.mkdir(exist_ok=True)
    cmd = ["ip", "netns", "exec", r.cluster.callers.netns(r.cluster.name), SIPP,
           f"{r.cluster.edge.address}:{r.cluster.edge_sip_port}", "-sf", str(PROJECT_DIR / "tests" / "sipp" / f"{scenario}.xml"),
           "-s", "112", "-key", "caller", caller, "-key", "text", text, "-key", "reply_port", "5071",
           "-i", r.cluster.callers.address, "-p", "5072", "-m", "1", "-nostdin", "-timeout", "30s", "-timeout_error",
           "-trace_msg", "-trace_err"]
    res = subprocess.run(cmd, cwd=workdir, capture_output=True, timeout=60, check=False)
    messages = "\n".join(p.read_text(errors="replace") for p in workdir.glob("*_messages.log"))
    assert res.returncode == 0, f"SIPp {scenario} from {caller} failed:\n{res.stdout[-1500:]!r}\n{messages[-1500:]}"
    return messages


def _conversation(r: Running, caller: str) -> Incident | None:
    store = r.store()
    try:
        return next((i for i in store.recent(limit=500) if i.caller_number == caller and i.channel_id.startswith("text-")), None)
    finally:
        store.close()


def _bodies(r: Running, incident_id: int) -> list[str]:
    """The texts received on an incident (each kept once)."""
    store = r.store()
    try:
        return [t.body for t in store.texts(incident_id) if t.direction == "in"]
    finally:
        store.close()


def _journal_lines(r: Running, node: str) -> int:
    layout = Layout(r.settings.root_path, r.cluster.instance(r.cluster.node(node)))
    folder = layout.host(layout.texts_journal)
    return sum(p.read_bytes().count(b"\n") for p in folder.glob(f"*{JOURNAL_SUFFIX}"))


def test_texts_through_the_edge_reach_both_nodes_and_all_are_kept(cluster: Running) -> None:
    before = {n.name: _journal_lines(cluster, n.name) for n in cluster.cluster.nodes}
    callers = [f"0819{RUN}{i}" for i in range(6)]
    for caller in callers:
        assert "SIP/2.0 202" in _text(cluster, "text_message", caller, f"Tolong dari {caller}")
    for caller in callers:
        incident = wait_for(f"the text of {caller} kept", lambda c=caller: _conversation(cluster, c), timeout=30)  # type: ignore[misc]
        assert _bodies(cluster, incident.id) == [f"Tolong dari {caller}"]
    after = {n.name: _journal_lines(cluster, n.name) for n in cluster.cluster.nodes}
    taken = {name: after[name] - before[name] for name in after}
    print(f"\ntexts per node: {taken}")
    assert sum(taken.values()) == len(callers) and all(n >= 1 for n in taken.values())


def test_a_dec112_text_through_the_edge_gets_202_and_its_position(cluster: Running) -> None:
    caller = f"0818{RUN}1"
    messages = _text(cluster, "text_dec112", caller, "Saya tuli, ada kecelakaan")
    assert "SIP/2.0 202" in messages and "SIP/2.0 415" not in messages
    incident = wait_for("the DEC112 text kept", lambda: _conversation(cluster, caller), timeout=30)
    store = cluster.store()
    try:
        located = store.locations(incident.id)
        assert [t.body for t in store.texts(incident.id) if t.direction == "in"] == ["Saya tuli, ada kecelakaan"]
    finally:
        store.close()
    assert located and abs((located[0].latitude or 0) + 2.533) < 0.001


def test_with_node1s_asterisk_killed_texts_go_to_node2(cluster: Running) -> None:
    wait_for("both nodes up at the edge", lambda: set(cluster.edge_states().values()) == {"up"} or None, timeout=30)
    layout = Layout(cluster.settings.root_path, cluster.cluster.instance(cluster.cluster.node("node1")))
    os.kill(int(layout.pidfile.read_text()), signal.SIGKILL)
    callers = [f"0817{RUN}{i}" for i in range(3)]
    for caller in callers:
        assert "SIP/2.0 202" in _text(cluster, "text_message", caller, f"Tolong, node1 mati {caller}")
    for caller in callers:
        incident = wait_for(f"the text of {caller} kept", lambda c=caller: _conversation(cluster, c), timeout=30)  # type: ignore[misc]
        assert _bodies(cluster, incident.id) == [f"Tolong, node1 mati {caller}"]
    wait_for("the edge to see node1 up again", lambda: cluster.edge_states().get(cluster.cluster.node("node1").address) == "up",
             timeout=60)
