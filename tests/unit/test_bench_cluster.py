"""The benchmark's cluster phase, one call node vs two: the figures a reader compares
(calls per second, calls per node, CPU per call per node, what the edge lost) and the
two-vs-one ratios, from made-up steps; and the private /24 each cluster run claims."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from ari_app.cluster.claim import claim_subnet, cluster_spec
from bench.cluster_figures import ClusterStep, NodeLoad, csv_rows, ratios, same_load_ratios, table


def step(nodes: int, *, rate: int = 20, sent: int = 300, answered: int = 300, ended: int = 300,
         per_node: tuple[NodeLoad, ...] = (), elapsed_s: float = 20.0, edge_cpu_s: float = 0.3) -> ClusterStep:
    per_node = per_node or (NodeLoad("node1", answered, 6.0, 4.5),)
    return ClusterStep(nodes=nodes, rate=rate, hold_s=5.0, sent=sent, answered=answered, ended=ended, recorded=answered,
                       elapsed_s=elapsed_s, per_node=per_node, edge_cpu_s=edge_cpu_s, store_cpu_s=1.5, load_avg=1.2,
                       machine_busy=0.5)


def test_a_step_says_what_the_edge_lost_and_what_a_call_cost_each_node() -> None:
    s = step(2, sent=300, answered=297, ended=296, elapsed_s=20.0,
             per_node=(NodeLoad("node1", 150, 3.0, 3.0), NodeLoad("node2", 147, 3.3, 1.47)))
    assert s.failed_at_edge == 3 and s.cut == 1
    assert s.calls_per_s == pytest.approx(296 / 15.0)  # the sending window: SIPp's time less the last caller's stay
    assert s.most_on_a_node == 150
    assert s.per_node[0].app_ms_per_call == pytest.approx(20.0) and s.per_node[1].asterisk_ms_per_call == pytest.approx(10.0)
    assert s.app_ms_per_call == pytest.approx(1000 * 6.3 / 297)  # over every node's calls
    assert s.edge_ms_per_call == pytest.approx(1.0)


def test_a_node_that_took_no_call_has_no_cost_per_call_rather_than_a_division_by_zero() -> None:
    idle = NodeLoad("node2", 0, 0.2, 0.4)
    assert math.isnan(idle.app_ms_per_call) and math.isnan(idle.asterisk_ms_per_call)
    s = step(2, sent=0, answered=0, ended=0, per_node=(NodeLoad("node1", 0, 0.1, 0.1), idle))
    assert math.isnan(s.app_ms_per_call) and math.isnan(s.edge_ms_per_call)


def test_two_nodes_are_compared_with_one_at_the_same_rate_only() -> None:
    one = step(1, per_node=(NodeLoad("node1", 300, 6.0, 4.5),))
    two = step(2, per_node=(NodeLoad("node1", 150, 3.3, 2.4), NodeLoad("node2", 150, 3.3, 2.4)), edge_cpu_s=0.36)
    alone = step(1, rate=30)  # no two-node step at 30/s: no ratio for it
    r = ratios([one, two, alone])
    assert list(r) == [20]
    assert r[20]["most calls on a node"] == pytest.approx(0.5)
    assert r[20]["app ms/call"] == pytest.approx(1.1)
    assert r[20]["Asterisk ms/call"] == pytest.approx(4.8 / 4.5)
    assert r[20]["edge ms/call"] == pytest.approx(1.2)
    assert r[20]["calls/s"] == pytest.approx(1.0)


def test_the_table_shows_each_node_and_the_ratio_line() -> None:
    one = step(1, per_node=(NodeLoad("node1", 300, 6.0, 4.5),))
    two = step(2, sent=300, answered=299, ended=299, per_node=(NodeLoad("node1", 150, 3.3, 2.4), NodeLoad("node2", 149, 3.0, 2.4)))
    lines = table([two, one])
    rows = [line.split() for line in lines if line.split() and line.split()[0] in {"1", "2"}]
    assert [r[0] for r in rows] == ["1", "2"]  # one node first at each rate
    assert rows[1][4] == "1" and rows[1][8] == "150/149"  # failed at the edge; calls per node
    assert rows[1][9] == "22.0/20.1"  # app ms per call, node by node
    assert any(line.startswith("  two vs one at 20/s: ") and "most calls on a node 0.50x" in line for line in lines)


def test_a_nodes_idle_cost_is_taken_out_so_two_nodes_compare_on_what_a_call_costs() -> None:
    # Each node's app spends 1 s idle over the step: with two nodes that fixed cost is paid twice
    # for the same calls, so CPU per call rises while a call itself costs the same.
    one = step(1, per_node=(NodeLoad("node1", 300, 4.0, 3.0, app_idle_s=1.0, asterisk_idle_s=0.6),))
    two = step(2, per_node=(NodeLoad("node1", 150, 2.5, 1.8, app_idle_s=1.0, asterisk_idle_s=0.6),
                            NodeLoad("node2", 150, 2.5, 1.8, app_idle_s=1.0, asterisk_idle_s=0.6)))
    assert two.per_node[0].app_net_ms_per_call == pytest.approx(10.0) and one.per_node[0].app_net_ms_per_call == pytest.approx(10.0)
    r = ratios([one, two])[20]
    assert r["app ms/call"] == pytest.approx(1.25) and r["app less idle"] == pytest.approx(1.0)
    assert r["Asterisk ms/call"] == pytest.approx(1.2) and r["Asterisk less idle"] == pytest.approx(1.0)


def test_two_nodes_are_also_compared_with_one_at_half_the_rate_the_same_load_on_each_node() -> None:
    # One node pays less per call as its own rate rises; two nodes at 20/s each see 10/s.
    one_10 = step(1, rate=10, sent=150, answered=150, ended=150, per_node=(NodeLoad("node1", 150, 4.5, 3.0),))
    one_20 = step(1, rate=20, per_node=(NodeLoad("node1", 300, 6.0, 4.5),))
    two_20 = step(2, rate=20, per_node=(NodeLoad("node1", 150, 4.2, 3.0), NodeLoad("node2", 150, 4.2, 3.0)))
    two_30 = step(2, rate=30, per_node=(NodeLoad("node1", 225, 4.5, 3.0), NodeLoad("node2", 225, 4.5, 3.0)))
    two_15 = step(2, rate=15, per_node=(NodeLoad("node1", 110, 3.0, 2.0), NodeLoad("node2", 115, 3.0, 2.0)))
    steps = [one_10, one_20, two_20, two_30, two_15]
    assert ratios(steps)[20]["app ms/call"] == pytest.approx(1.4)  # against one node at 20/s
    same = same_load_ratios(steps)
    assert list(same) == [20]  # no one-node step at 15/s; 15 is odd
    assert same[20]["app ms/call"] == pytest.approx(28.0 / 30.0) and same[20]["Asterisk ms/call"] == pytest.approx(1.0)
    assert any(line.startswith("  same rate on each node, two at 20/s vs one at 10/s: app ms/call 0.93x") for line in table(steps))


def test_a_skipped_phase_prints_why_and_no_table() -> None:
    lines = table([], "cluster phase skipped: needs root (network namespaces): run `make bench` as root")
    assert lines[-1] == "  cluster phase skipped: needs root (network namespaces): run `make bench` as root"
    assert table([]) == []


def test_the_csv_has_a_row_per_node_of_each_step() -> None:
    two = step(2, per_node=(NodeLoad("node1", 150, 3.0, 2.4), NodeLoad("node2", 150, 3.0, 2.4)))
    rows = csv_rows([step(1), two])
    assert [(r[0], r[10], r[11]) for r in rows] == [("1", "node1", "300"), ("2", "node1", "150"), ("2", "node2", "150")]


def test_two_runs_at_once_claim_different_private_networks(tmp_path: Path) -> None:
    first = claim_subnet(200, 202, lock_dir=tmp_path)  # octets no real cluster uses: no bridge of that name
    second = claim_subnet(200, 202, lock_dir=tmp_path)
    try:
        assert first.octet == 200 and second.octet == 201
        third = claim_subnet(200, 202, lock_dir=tmp_path)
        with pytest.raises(RuntimeError, match=r"no free 10\.211\.200-202\.0/24"):
            claim_subnet(200, 202, lock_dir=tmp_path)
        third.release()
    finally:
        first.release()
    again = claim_subnet(200, 202, lock_dir=tmp_path)  # released: free again
    assert again.octet == 200
    again.release()
    second.release()


def test_the_spec_lists_as_many_nodes_as_asked_on_the_claimed_network() -> None:
    spec = cluster_spec(41, nodes=3)
    assert spec["edge"] == "10.211.41.10" and spec["bridge"] == "i112t41br"
    assert spec["nodes"] == [{"name": f"node{i}", "address": f"10.211.41.{10 + i}"} for i in (1, 2, 3)]
