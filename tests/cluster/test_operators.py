"""Operators across nodes (docs/cluster.md, "Operators across nodes"): SIPp softphones
register once, at the edge (digest auth with their generated passwords); the operators'
queues live on node1 (node2 stands by); callers arriving on either node reach them.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import yaml

from ari_app.asterisk import process
from ari_app.asterisk.layout import Layout
from ari_app.cluster.sweep import node_of
from tests.cluster.conftest import SIPP, Running, sipp_counts
from tests.cluster.faults import incidents_of
from tests.support.poll import wait_for

SIPP_DIR = Path(__file__).resolve().parents[1] / "sipp"
QUEUE = "kotim-operators"


def password(r: Running, name: str) -> str:
    shared = yaml.safe_load((r.paths.state_dir / "shared" / "secrets.yaml").read_text())  # read only
    return str(shared["operator_passwords"][name])


def phone(r: Running, name: str, scenario: str, *args: str, port: int, calls: int = 1,
          timeout: int = 30) -> subprocess.Popen[bytes]:
    """A SIPp softphone in the callers' namespace, talking to the edge only."""
    workdir = r.tmp / name
    workdir.mkdir(exist_ok=True)
    cmd = ["ip", "netns", "exec", r.cluster.callers.netns(r.cluster.name), SIPP,
           f"{r.cluster.edge.address}:{r.cluster.edge_sip_port}", "-sf", str(SIPP_DIR / f"{scenario}.xml"),
           "-i", r.cluster.callers.address, "-p", str(port), "-m", str(calls), "-nostdin", "-trace_counts",
           "-trace_err", "-trace_msg", "-timeout", f"{timeout}s", "-timeout_error", *args]
    return subprocess.Popen(cmd, cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def register(r: Running, name: str, port: int, *, secret: str | None = None) -> int:
    reg = phone(r, f"register-{name}-{port}", "operator_register", "-key", "operator", name, "-au", name,
                "-ap", secret if secret is not None else password(r, name), port=port, timeout=15)
    return reg.wait(timeout=60)


def members(r: Running, node: str) -> list[str]:
    """The operators node's app_queue holds as members of the plan's queue (Asterisk's own word)."""
    layout = Layout(r.settings.root_path, r.cluster.instance(r.cluster.node(node)))
    text = process.cli(layout, f"queue show {QUEUE}").stdout
    return re.findall(r"^\s+(\S+) \(PJSIP/", text, flags=re.MULTILINE)


def test_an_operator_registered_at_the_edge_takes_callers_of_both_nodes(cluster: Running) -> None:
    assert register(cluster, "operator1", 5071, secret="wrong-password") != 0, "the edge let a wrong password register"
    assert register(cluster, "operator1", 5071) == 0, "operator1 could not register at the edge"

    # *11 from the softphone goes through the edge to the queues' node (node1): logged in there.
    login = phone(cluster, "login-operator1", "operator_dial", "-s", "*11", "-key", "operator", "operator1",
                  "-au", "operator1", "-ap", password(cluster, "operator1"), port=5071)
    assert login.wait(timeout=60) == 0, "operator1's *11 through the edge failed"
    wait_for("operator1 in node1's queue", lambda: "operator1" in members(cluster, "node1"), timeout=20)

    calls = 4
    operator = phone(cluster, "operator1", "answer", port=5071, calls=calls, timeout=240)
    callers = cluster.sipp("op-callers", calls=calls, rate=0.2, seconds=25, caller="0821")
    assert callers.wait(timeout=240) == 0, "a caller's call through the edge failed"
    found = incidents_of(cluster, "0821")
    wait_for("every call's incident closed", lambda: all(i.ended_at for i in incidents_of(cluster, "0821")), timeout=60)
    found = incidents_of(cluster, "0821")
    by_node = [node_of(i) for i in found]
    answered = [i for i in found if i.operator == "operator1"]
    counts = sipp_counts(cluster.tmp / "operator1")
    operator.wait(timeout=60)
    print(f"\ncalls per node: node1 {by_node.count('node1')}, node2 {by_node.count('node2')}; answered by operator1 "
          f"{len(answered)} of {len(found)} (by node: {[node_of(i) for i in answered]}); INVITEs at the phone "
          f"{counts.get('0_INVITE_Recv')}")
    assert len(found) == calls
    assert by_node.count("node1") >= 1 and by_node.count("node2") >= 1
    assert {node_of(i) for i in answered} == {"node1", "node2"}, [(i.channel_id, i.operator, i.route_result) for i in found]
