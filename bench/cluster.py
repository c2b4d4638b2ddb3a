"""The benchmark's cluster phase: `ivr112 cluster up` with one call node, SIPp IVR callers
through the Kamailio edge at each offered rate, then the same with two nodes; per step the
calls answered, failed at the edge and recorded, and each node's app and Asterisk CPU per
call read from /proc of the pids `cluster up` records. bench/cluster_figures.py prints them.

It needs root (network namespaces), Kamailio and PostgreSQL 15: without them the phase is
skipped, saying why. The cluster gets its own private 10.211.N.0/24 (ari_app/cluster/claim.py),
so it can run beside the cluster tests and other benchmarks. `python -m bench.cluster` runs
this phase alone.
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import yaml

from ari_app.asterisk import process
from ari_app.asterisk.layout import Layout
from ari_app.cluster import control, topology
from ari_app.cluster.claim import claim_subnet, cluster_spec
from ari_app.cluster.sweep import node_of
from ari_app.cluster.topology import Cluster
from ari_app.store import open_store
from bench.cluster_figures import CSV_HEADER, ClusterStep, NodeLoad, csv_rows, table
from bench.procstat import machine_busy_s, sample, tree_cpu_s
from bench.run import prompt_seconds
from ivr.errors import ConfigError
from ivr.plan import load_plans
from ivr.settings import Settings, load_settings
from ivr.store import Incident
from tests.cluster.callers import SIPP, caller_command, kotim_plan, sipp_counts
from tests.support.poll import WaitTimeout, wait_for

NODE_COUNTS = (1, 2)
# Offered new calls/s, each with one node then two; 10 and 15 are also half of 20 and 30: two
# nodes at 20/s are compared with one at 10/s too (the same calls per second on each node).
RATES, QUICK_RATES = [10, 15, 20, 30], [20]
SECONDS, QUICK_SECONDS = 15.0, 8.0  # of new calls per step
HOLD_S = 5.0  # a caller's stay in the IVR (capped below greeting + menu)
IDLE_S = 8.0  # each cluster's parts measured with no call, before its steps
RECORDS_TIMEOUT_S = 60.0  # for every answered call's incident to be in the store, closed
SIPP_MARGIN_S = 150.0  # past the last caller's stay: SIPp's own -timeout is 120 s


def unavailable(settings: Settings) -> str:
    """Why the phase cannot run here ('' when it can)."""
    if why := control.cannot_start(settings):
        return why
    if not Path(SIPP).exists():
        return "SIPp is not installed (apt-get install sip-tester)"
    if not (settings.data_path / "prompts").is_dir():
        return "no prompts built (`ivr112 prompts build`)"
    return ""


@dataclass
class Private:
    """The phase's own settings, cluster file and data folder (removed at the end)."""

    tmp: Path
    settings: Settings
    cluster: Cluster

    def store_incidents(self, cluster: Cluster, prefix: str) -> list[Incident]:
        store = open_store(self.tmp, control.store_url(cluster, control.paths(self.settings)))
        try:
            return [i for i in store.recent(limit=5000) if i.caller_number.startswith(prefix)]
        finally:
            store.close()


@contextmanager
def private_cluster(bench_settings: Settings) -> Iterator[Private]:
    """A data folder and a cluster file on a claimed free private /24, for as long as the block runs."""
    tmp = Path(tempfile.mkdtemp(prefix="ivr112-bench-cluster-"))
    tmp.chmod(0o711)  # PostgreSQL runs as `postgres` and must reach its data below
    claim = claim_subnet()
    failed = False
    try:
        data = tmp / "data"
        data.mkdir()
        (data / "prompts").symlink_to(bench_settings.data_path.resolve() / "prompts")
        cluster_file = tmp / "cluster.yaml"
        cluster_file.write_text(yaml.safe_dump(cluster_spec(claim.octet, nodes=max(NODE_COUNTS))))
        cluster = topology.load(cluster_file)
        config = tmp / "ivr112.yaml"
        # The project's plan, its carrier matching the callers' address (the edge takes calls
        # only from a served carrier's networks).
        config.write_text(yaml.safe_dump({"data_dir": str(data), "asterisk_root": str(bench_settings.root_path.resolve()),
                                          "plans": [str(kotim_plan(tmp, cluster))]}))
        yield Private(tmp, load_settings(config, environ={}), cluster)
    except BaseException:
        failed = True  # keep the nodes' logs the error names
        raise
    finally:
        claim.release()
        if not failed:
            shutil.rmtree(tmp, ignore_errors=True)


@dataclass(frozen=True)
class Pids:
    apps: dict[str, int]
    asterisks: dict[str, int]
    edges: tuple[int, ...]  # each Kamailio's main process (one, or one per edge with a floating address)
    db: int

    @classmethod
    def of(cls, settings: Settings, cluster: Cluster, state: dict[str, int]) -> Pids:
        asterisks = {}
        for node in cluster.nodes:
            pid = process.read_pid(Layout(settings.root_path, cluster.instance(node)))
            if pid is None:
                raise ConfigError(f"node {node.name}'s Asterisk is not running after `cluster up`")
            asterisks[node.name] = pid
        return cls({n.name: state[n.name] for n in cluster.nodes}, asterisks, tuple(state[e.name] for e in cluster.all_edges),
                   state["db"])

    def cpu(self) -> dict[str, float]:
        """CPU seconds so far of each part: `app:<node>`, `asterisk:<node>`, `edge` (every edge), `db`."""
        out = {f"app:{n}": sample(p).cpu_s for n, p in self.apps.items()}
        out |= {f"asterisk:{n}": sample(p).cpu_s for n, p in self.asterisks.items()}
        return out | {"edge": sum(tree_cpu_s(pid) for pid in self.edges), "db": tree_cpu_s(self.db)}


def idle_rates(pids: Pids, seconds: float = IDLE_S) -> dict[str, float]:
    """CPU seconds per second each part spends with no call (the cluster just up, no caller)."""
    before, started = pids.cpu(), time.monotonic()
    time.sleep(seconds)  # a measuring window, not a wait for something to happen
    after, spent = pids.cpu(), time.monotonic() - started
    return {k: (after[k] - before[k]) / spent for k in before}


def run_step(p: Private, cluster: Cluster, pids: Pids, *, rate: int, calls: int, hold_s: float, prefix: str,
             idle: dict[str, float]) -> ClusterStep:
    """`calls` SIPp callers at `rate`/s through the edge, each staying `hold_s`; the figures once
    every answered call's incident is closed in the store (or RECORDS_TIMEOUT_S has passed)."""
    workdir = p.tmp / f"step-{prefix}"
    workdir.mkdir()
    cpu0, (busy0, cap0) = pids.cpu(), machine_busy_s()
    started = time.monotonic()
    sipp = subprocess.Popen(caller_command(cluster, calls=calls, rate=rate, seconds=hold_s, caller=prefix), cwd=workdir,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        sipp.wait(timeout=calls / rate + hold_s + SIPP_MARGIN_S)
    except subprocess.TimeoutExpired:
        sipp.kill()  # ours, by its Popen
        sipp.wait()
    elapsed = time.monotonic() - started
    counts = sipp_counts(workdir)
    answered = counts.get("4_200_Recv", 0)

    def closed() -> list[Incident] | None:
        found = p.store_incidents(cluster, prefix)
        return found if len(found) >= answered and all(i.ended_at for i in found) else None

    try:
        found = wait_for(f"the {answered} answered calls' incidents, closed", closed, timeout=RECORDS_TIMEOUT_S)
    except WaitTimeout:
        found = [i for i in p.store_incidents(cluster, prefix) if i.ended_at]
    cpu1, (busy1, cap1) = pids.cpu(), machine_busy_s()
    window = time.monotonic() - started
    spent = {k: cpu1[k] - cpu0[k] for k in cpu0}
    on = [node_of(i) for i in found]
    per_node = tuple(NodeLoad(n.name, on.count(n.name), spent[f"app:{n.name}"], spent[f"asterisk:{n.name}"],
                              idle[f"app:{n.name}"] * window, idle[f"asterisk:{n.name}"] * window) for n in cluster.nodes)
    return ClusterStep(
        nodes=len(cluster.nodes), rate=rate, hold_s=hold_s, sent=counts.get("0_INVITE_Sent", 0), answered=answered,
        ended=counts.get("8_200_Recv", 0), recorded=len({i.channel_id for i in found}), elapsed_s=elapsed, per_node=per_node,
        edge_cpu_s=spent["edge"], store_cpu_s=spent["db"], load_avg=os.getloadavg()[0],
        machine_busy=(busy1 - busy0) / max(1e-9, cap1 - cap0),
    )


def run_phase(bench_settings: Settings, rates: list[int], seconds: float, hold_s: float,
              say: Callable[[str], None] = print) -> tuple[list[ClusterStep], str]:
    """One node, then two, at each of `rates`; the steps measured and a note (why the phase was
    skipped or stopped early; '' when it ran through). Never raises for a cluster that would
    not start: the note says why, and everything it started is stopped."""
    if why := unavailable(bench_settings):
        return [], f"cluster phase skipped: {why}"
    steps: list[ClusterStep] = []
    try:
        heard = prompt_seconds(bench_settings, load_plans(bench_settings.plan_paths).default)
        hold_s = min(hold_s, heard["greeting"] + heard["menu"] - 0.5)  # still in the menu: no caller reaches the queue
        with private_cluster(bench_settings) as p:
            for count in NODE_COUNTS:
                steps += _with_nodes(p, p.cluster.with_nodes(count), rates, seconds, hold_s, say)
    except Exception as exc:  # a cluster that would not start or a step that broke: say why, keep the rest of the bench
        return steps, f"cluster phase stopped: {type(exc).__name__}: {exc}"
    return steps, ""


def _with_nodes(p: Private, cluster: Cluster, rates: list[int], seconds: float, hold_s: float,
                say: Callable[[str], None]) -> list[ClusterStep]:
    started = time.monotonic()
    steps = []
    try:
        state = control.up(p.settings, cluster)
        say(f"  cluster {cluster.name}: {len(cluster.nodes)} node(s) up in {time.monotonic() - started:.0f} s")
        pids = Pids.of(p.settings, cluster, state)
        idle = idle_rates(pids)
        say("  idle, CPU ms/s: " + ", ".join(f"{k} {1000 * v:.1f}" for k, v in idle.items()))
        for i, rate in enumerate(rates):
            step = run_step(p, cluster, pids, rate=rate, calls=max(1, int(rate * seconds)), hold_s=hold_s,
                            prefix=f"089{len(cluster.nodes)}{i:02d}", idle=idle)
            steps.append(step)
            say(f"  {step.nodes} node(s) {rate:3d}/s: {step.sent} sent, {step.answered} answered, "
                f"{step.failed_at_edge} failed at the edge, {step.cut} cut, {step.recorded} recorded; calls per node "
                + "/".join(str(n.calls) for n in step.per_node)
                + f"; app {step.app_ms_per_call:.1f} ms/call, Asterisk {step.asterisk_ms_per_call:.1f} ms/call; "
                f"load {step.load_avg:.2f}")
    finally:
        control.down(p.settings, cluster)
    return steps


def write_csv(steps: list[ClusterStep], path: Path) -> Path:
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(CSV_HEADER)
        w.writerows(csv_rows(steps))
    return path


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def main(argv: list[str] | None = None) -> int:
    """`python -m bench.cluster`: this phase alone, its table and bench/out/cluster-<time>.csv."""
    from bench.__main__ import OUT, noise

    ap = argparse.ArgumentParser(prog="python -m bench.cluster", description=__doc__)
    ap.add_argument("--quick", action="store_true", help="one rate, shorter steps")
    ap.add_argument("--rates", type=_ints, help=f"offered new calls/s (default {RATES}; quick {QUICK_RATES})")
    ap.add_argument("--seconds", type=float, help=f"seconds of new calls per step (default {SECONDS:g}; quick {QUICK_SECONDS:g})")
    ap.add_argument("--hold", type=float, default=HOLD_S, help="seconds a caller stays in the IVR (capped below greeting + menu)")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(sys.argv[1:] if argv is None else argv)
    before = noise()
    steps, note = run_phase(load_settings(), args.rates or (QUICK_RATES if args.quick else RATES),
                            args.seconds or (QUICK_SECONDS if args.quick else SECONDS), args.hold)
    for line in table(steps, note):
        print(line)
    print(f"  noise: before: {before}; after: {noise()}")
    if steps:
        args.out.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        print(f"written: {write_csv(steps, args.out / f'cluster-{stamp}.csv')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
