"""The cluster phase's figures: one call node vs two behind the edge, at the same offered
rates, in one run. Pure: steps in, table lines and CSV rows out; bench/cluster.py measures.

On one machine the nodes share its CPUs, so the total cannot double with a second node:
what the phase shows is the per-node cost of a call (does a node's app or Asterisk pay more
per call in a cluster?) and that the edge loses nothing (every call sent answered, every
answered call recorded once and closed).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

RATIO_FIGURES = ("calls/s", "most calls on a node", "app ms/call", "Asterisk ms/call", "app less idle", "Asterisk less idle",
                 "edge ms/call")


def per_call_ms(cpu_s: float, calls: int) -> float:
    """CPU milliseconds per call; NaN when there was no call (not a division by zero)."""
    return 1000 * cpu_s / calls if calls else math.nan


@dataclass(frozen=True)
class NodeLoad:
    """What one call node did in one step."""

    name: str
    calls: int  # the step's incidents whose channel was on this node
    app_cpu_s: float  # `ivr112 run` on the node (app threads; not its guard, not the watcher)
    asterisk_cpu_s: float
    app_idle_s: float = 0.0  # of app_cpu_s, what the node's app spends idle over as long (measured before the steps)
    asterisk_idle_s: float = 0.0

    @property
    def app_ms_per_call(self) -> float:
        return per_call_ms(self.app_cpu_s, self.calls)

    @property
    def asterisk_ms_per_call(self) -> float:
        return per_call_ms(self.asterisk_cpu_s, self.calls)

    @property
    def app_net_ms_per_call(self) -> float:
        """App CPU per call less what the app spends idle: what a call itself costs."""
        return per_call_ms(self.app_cpu_s - self.app_idle_s, self.calls)

    @property
    def asterisk_net_ms_per_call(self) -> float:
        return per_call_ms(self.asterisk_cpu_s - self.asterisk_idle_s, self.calls)


@dataclass(frozen=True)
class ClusterStep:
    """One SIPp load through the edge to a cluster of `nodes` call nodes."""

    nodes: int
    rate: int  # offered new calls per second
    hold_s: float  # how long each caller stays in the IVR after the answer
    sent: int  # INVITEs SIPp sent to the edge
    answered: int  # 200 OK to those INVITEs
    ended: int  # answered calls whose BYE was answered (the call ended normally)
    recorded: int  # the step's incidents in the shared store, each closed
    elapsed_s: float  # SIPp's wall time, first INVITE to last BYE answered
    per_node: tuple[NodeLoad, ...]
    edge_cpu_s: float  # Kamailio, all its processes
    store_cpu_s: float  # PostgreSQL, all its processes
    load_avg: float  # the machine's 1-minute load average at the end of the step
    machine_busy: float  # share of all CPUs busy during the step (ours and others')

    @property
    def failed_at_edge(self) -> int:
        """Calls sent to the edge that no node answered."""
        return self.sent - self.answered

    @property
    def cut(self) -> int:
        """Answered calls that did not end with the caller's BYE answered."""
        return self.answered - self.ended

    @property
    def calls_per_s(self) -> float:
        """Calls completed per second of the sending window (SIPp's time less the last caller's stay)."""
        window = self.elapsed_s - self.hold_s
        return self.ended / window if window > 0 else math.nan

    @property
    def most_on_a_node(self) -> int:
        return max((n.calls for n in self.per_node), default=0)

    @property
    def app_ms_per_call(self) -> float:
        """App CPU per call on a node, over every node: what one call costs a node's app."""
        return per_call_ms(sum(n.app_cpu_s for n in self.per_node), sum(n.calls for n in self.per_node))

    @property
    def asterisk_ms_per_call(self) -> float:
        return per_call_ms(sum(n.asterisk_cpu_s for n in self.per_node), sum(n.calls for n in self.per_node))

    def _less_idle(self, part: str) -> float:
        """`part`'s ("app", "asterisk") CPU less its idle cost, per call, over every node."""
        spent = sum(getattr(n, f"{part}_cpu_s") - getattr(n, f"{part}_idle_s") for n in self.per_node)
        return per_call_ms(spent, sum(n.calls for n in self.per_node))

    @property
    def edge_ms_per_call(self) -> float:
        return per_call_ms(self.edge_cpu_s, self.sent)

    @property
    def store_ms_per_call(self) -> float:
        return per_call_ms(self.store_cpu_s, self.sent)

    def figure(self, name: str) -> float:
        """One of RATIO_FIGURES by name."""
        return {
            "calls/s": self.calls_per_s, "most calls on a node": float(self.most_on_a_node),
            "app ms/call": self.app_ms_per_call, "Asterisk ms/call": self.asterisk_ms_per_call,
            "app less idle": self._less_idle("app"), "Asterisk less idle": self._less_idle("asterisk"),
            "edge ms/call": self.edge_ms_per_call,
        }[name]


def ratio(two: float, one: float) -> float:
    """`two / one`; NaN when either is missing or `one` is 0."""
    if math.isnan(two) or math.isnan(one) or one == 0:
        return math.nan
    return two / one


def ratios(steps: list[ClusterStep]) -> dict[int, dict[str, float]]:
    """For each offered rate measured with one node and with two: each of RATIO_FIGURES,
    two nodes' value over one node's."""
    by = {(s.nodes, s.rate): s for s in steps}
    out: dict[int, dict[str, float]] = {}
    for rate in sorted({s.rate for s in steps}):
        one, two = by.get((1, rate)), by.get((2, rate))
        if one is not None and two is not None:
            out[rate] = {name: ratio(two.figure(name), one.figure(name)) for name in RATIO_FIGURES}
    return out


PER_NODE_FIGURES = ("app ms/call", "Asterisk ms/call", "app less idle", "Asterisk less idle")


def same_load_ratios(steps: list[ClusterStep]) -> dict[int, dict[str, float]]:
    """For each two-node step at a rate R whose half was measured with one node: each of
    PER_NODE_FIGURES, two nodes at R over one node at R/2, by R. The same calls per second on
    each node: a node's cost per call falls as its own rate rises (more calls per wake-up), so
    at the same offered rate two nodes each at half of it pay more per call for that alone."""
    one = {s.rate: s for s in steps if s.nodes == 1}
    out: dict[int, dict[str, float]] = {}
    for two in sorted((s for s in steps if s.nodes == 2), key=lambda s: s.rate):
        half = one.get(two.rate // 2) if two.rate % 2 == 0 else None
        if half is not None:
            out[two.rate] = {name: ratio(two.figure(name), half.figure(name)) for name in PER_NODE_FIGURES}
    return out


def _f(value: float, digits: int = 1) -> str:
    return "-" if math.isnan(value) else f"{value:,.{digits}f}"


def _each(step: ClusterStep, get: str) -> str:
    """A per-node figure, node by node (`12.1/11.8`)."""
    values = [getattr(n, get) for n in step.per_node]
    return "/".join(str(v) if isinstance(v, int) else _f(v, 1) for v in values)


HEADER = (f"{'nodes':>5} {'rate/s':>6} {'sent':>5} {'answered':>8} {'failed@edge':>11} {'cut':>4} {'recorded':>8} "
          f"{'calls/s':>7} {'calls per node':>14} {'app ms/call/node':>16} {'Ast ms/call/node':>16} {'less idle: app':>14} "
          f"{'Ast':>11} {'edge ms/call':>12} "
          f"{'pg ms/call':>10} {'load 1m':>7}")


def table(steps: list[ClusterStep], note: str = "") -> list[str]:
    """The phase's table: a line per step, then the two-vs-one ratios per rate."""
    if not steps and not note:
        return []
    stay = f", IVR callers stay {max(s.hold_s for s in steps):g} s" if steps else ""
    out = [f"\n== Cluster: one call node vs two behind the Kamailio edge{stay} (one machine: the nodes share its CPUs) =="]
    if note:
        out.append(f"  {note}")
    if not steps:
        return out
    out.append(HEADER)
    for s in sorted(steps, key=lambda s: (s.rate, s.nodes)):
        out.append(f"{s.nodes:>5} {s.rate:>6} {s.sent:>5} {s.answered:>8} {s.failed_at_edge:>11} {s.cut:>4} {s.recorded:>8} "
                   f"{_f(s.calls_per_s):>7} {_each(s, 'calls'):>14} {_each(s, 'app_ms_per_call'):>16} "
                   f"{_each(s, 'asterisk_ms_per_call'):>16} {_each(s, 'app_net_ms_per_call'):>14} "
                   f"{_each(s, 'asterisk_net_ms_per_call'):>11} {_f(s.edge_ms_per_call, 2):>12} {_f(s.store_ms_per_call, 2):>10} "
                   f"{s.load_avg:>7.2f}")
    for rate, r in ratios(steps).items():
        out.append(f"  two vs one at {rate}/s: " + ", ".join(f"{name} {_f(v, 2)}x" for name, v in r.items()))
    for rate, r in same_load_ratios(steps).items():
        out.append(f"  same rate on each node, two at {rate}/s vs one at {rate // 2}/s: "
                   + ", ".join(f"{name} {_f(v, 2)}x" for name, v in r.items()))
    return out


CSV_HEADER = ["nodes", "rate", "hold_s", "sent", "answered", "failed_at_edge", "cut", "recorded", "elapsed_s", "calls_per_s",
              "node", "node_calls", "app_cpu_ms_per_call", "asterisk_cpu_ms_per_call", "app_cpu_less_idle_ms_per_call",
              "asterisk_cpu_less_idle_ms_per_call", "edge_cpu_ms_per_call",
              "store_cpu_ms_per_call", "load_avg_1m", "machine_busy"]


def csv_rows(steps: list[ClusterStep]) -> list[list[str]]:
    """One row per step and node (the step's own figures repeated on each of its rows)."""
    rows = []
    for s in steps:
        for n in s.per_node:
            rows.append([str(s.nodes), str(s.rate), f"{s.hold_s:g}", str(s.sent), str(s.answered), str(s.failed_at_edge),
                         str(s.cut), str(s.recorded), f"{s.elapsed_s:.2f}", f"{s.calls_per_s:.3f}", n.name, str(n.calls),
                         f"{n.app_ms_per_call:.3f}", f"{n.asterisk_ms_per_call:.3f}", f"{n.app_net_ms_per_call:.3f}",
                         f"{n.asterisk_net_ms_per_call:.3f}", f"{s.edge_ms_per_call:.3f}",
                         f"{s.store_ms_per_call:.3f}", f"{s.load_avg:.2f}", f"{s.machine_busy:.3f}"])
    return rows
