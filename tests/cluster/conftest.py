"""A real cluster for these tests: `ivr112 cluster up` with its own cluster file (its own
namespaces, bridge and addresses: the first free 10.211.N.0/24 from N = 13) and data folder; SIPp callers in the
callers' namespace send to the edge. Needs root, Kamailio and PostgreSQL 15; skipped, saying
why, without them. Runs with IVR112_CLUSTER=1, in a pytest of its own (one cluster for every
file): `make test` runs its short form beside the other tests, `make cluster-chaos` the long.
"""

from __future__ import annotations

import contextlib
import functools
import ipaddress
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from ari_app.cluster import control, kamailio, keepalived, netns, topology
from ari_app.cluster.claim import claim_subnet, cluster_spec
from ari_app.cluster.topology import Cluster
from ari_app.store import IncidentStore, open_store
from ari_app.store.pg_server import PostgresServer
from ari_app.store.pg_server import alive as pg_alive
from ivr.settings import PROJECT_DIR, Settings, load_settings
from tests.cluster.callers import SCENARIO, caller_command, kotim_plan
from tests.support.plan import make_regency_plan

LONG = os.environ.get("IVR112_CHAOS", "") == "long"


def two_edges_spec(octet: int) -> dict[str, object]:
    """Two Kamailio edges sharing the floating address .9 (keepalived), one call node: the
    edges are what is tried (a second node would only load this 2-core machine more)."""
    net = f"10.211.{octet}"
    spec = cluster_spec(octet)
    del spec["edge"]
    spec.update({"edges": [{"name": "edge1", "address": f"{net}.10"}, {"name": "edge2", "address": f"{net}.20"}],
                 "edge_vip": f"{net}.9", "nodes": [{"name": "node1", "address": f"{net}.11"}]})
    return spec


SECOND_PLAN = "seruyan"  # a second regency's plan, served beside Kotim's (tests/support/plan.py)
SECOND_CARRIER = "seruyan-net"


def second_carrier_address(cluster: Cluster) -> str:
    return str(ipaddress.ip_address(cluster.callers.address) + 1)


def served_plans(tmp: Path, cluster: Cluster) -> list[str]:
    """Kotim's plan, its carrier sending from the callers' address, and a second regency's
    plan whose carrier sends from the callers' second address: two carriers the edge tells
    apart by source address.

    Kotim's with no position announcements in the operators' queue: app_queue plays them to
    the caller at the head of the queue before it rings a member, so with callers waiting a
    freed operator sits idle for the announcement (about 5-7 s each time, measured in
    tests/cluster/test_operators.py with the plan as shipped: 77 s over 20 calls). The
    operators' test measures what the cluster adds, not that single-node effect."""
    second, _ = make_regency_plan(tmp, SECOND_PLAN, "Seruyan", SECOND_CARRIER, f"{second_carrier_address(cluster)}/32")
    return [str(kotim_plan(tmp, cluster, announce_position=False)), str(second)]


@dataclass
class Running:
    cluster: Cluster
    settings: Settings
    config: Path
    cluster_file: Path
    tmp: Path

    @property
    def paths(self) -> control.Paths:
        return control.paths(self.settings)

    @functools.cached_property
    def database(self) -> PostgresServer:
        """The cluster's PostgreSQL, for a test that restarts it: one object for the session,
        so the process a restart starts is waited for at the end (a Popen dropped while its
        server runs is a ResourceWarning, an error here: it failed the restart test)."""
        return control.database(self.cluster, self.paths)

    def ivr112(self, *args: str) -> subprocess.CompletedProcess[str]:
        cmd = [sys.executable, "-m", "ari_app.cli", "--config", str(self.config), "cluster", *args, "--cluster", str(self.cluster_file)]
        env = {k: v for k, v in os.environ.items() if not k.startswith("IVR112_")}
        return subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env, cwd=PROJECT_DIR, check=False)

    def edge_states(self) -> dict[str, str]:
        return kamailio.node_states(self.paths.edge_run)

    def store(self) -> IncidentStore:
        return open_store(self.tmp, control.store_url(self.cluster, self.paths))

    @property
    def second_carrier(self) -> str:
        """The callers' second address: the second plan's carrier (SECOND_PLAN) sends from it."""
        return second_carrier_address(self.cluster)

    def sipp(self, name: str, *, calls: int, rate: float, seconds: float, caller: str, scenario: Path = SCENARIO,
             source: str = "", keys: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        """SIPp callers in the callers' namespace (from `source`, else the callers' address,
        Kotim's carrier), to the edge; counts in `<name>_counts.csv`."""
        workdir = self.tmp / name
        workdir.mkdir(exist_ok=True)
        cmd = caller_command(self.cluster, calls=calls, rate=rate, seconds=seconds, caller=caller, scenario=scenario,
                             source=source, keys=keys)
        return subprocess.Popen(cmd, cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

def _missing() -> str:
    if not os.environ.get("IVR112_CLUSTER"):
        return ("the cluster suite runs in a pytest of its own with IVR112_CLUSTER=1 (one cluster for all its files): "
                "`make test` does it beside the other tests, `make cluster-chaos` runs its long form")
    return control.cannot_start(load_settings())


@pytest.fixture(scope="session")
def cluster(request: pytest.FixtureRequest) -> Iterator[Running]:
    with _cluster_up(cluster_spec, request) as running:
        yield running


@pytest.fixture(scope="module")
def two_edges(request: pytest.FixtureRequest) -> Iterator[Running]:
    """A cluster of its own with two edges and a floating address (tests/cluster/test_edges.py),
    down again after its module."""
    if not keepalived.BINARY.exists():
        pytest.skip("keepalived is not installed (apt-get install keepalived): two edges need it")
    with _cluster_up(two_edges_spec, request) as running:
        yield running


@contextlib.contextmanager
def _cluster_up(spec: Callable[[int], dict[str, object]], request: pytest.FixtureRequest) -> Iterator[Running]:
    """`ivr112 cluster up` on a private /24 and data folder of its own; `down` after, which must
    leave none of the pids the cluster's state names running, and the folder removed (kept,
    with the parts' logs, when a test failed).
    (Not pytest's tmp_path: its folders are root's alone, and PostgreSQL runs as `postgres`.)"""
    if why := _missing():
        pytest.skip(why)
    tmp = Path(tempfile.mkdtemp(prefix="ivr112-cluster-"))
    tmp.chmod(0o711)
    data = tmp / "data"
    data.mkdir()
    (data / "prompts").symlink_to(load_settings().data_path.resolve() / "prompts")
    cluster_file = tmp / "cluster.yaml"
    claim = claim_subnet()
    cluster_file.write_text(yaml.safe_dump(spec(claim.octet)))
    layout = topology.load(cluster_file)
    config = tmp / "ivr112.yaml"
    operators = [{"name": "operator1", "full_name": "Operator 1"}, {"name": "operator2", "full_name": "Operator 2"}]
    config.write_text(yaml.safe_dump({"data_dir": str(data), "asterisk_root": str(load_settings().root_path.resolve()),
                                      "operators": operators, "plans": served_plans(tmp, layout)}))
    running = Running(layout, load_settings(config, environ={}), config, cluster_file, tmp)
    started: dict[str, int] = {}
    try:
        # The second regency's prompts (Kotim's are built by `make test`; rendered once, then kept).
        built = subprocess.run([sys.executable, "-m", "ari_app.cli", "--config", str(config), "prompts", "build"],
                               capture_output=True, text=True, timeout=600, cwd=PROJECT_DIR, check=False)
        assert built.returncode == 0, f"prompts build failed:\n{built.stdout[-2000:]}\n{built.stderr[-2000:]}"
        res = running.ivr112("up")
        assert res.returncode == 0, f"cluster up failed:\n{res.stdout}\n{res.stderr}"
        netns.ip("-n", layout.callers.netns(layout.name), "addr", "add", f"{running.second_carrier}/{layout.prefix_len}", "dev", "eth0")
        yield running
        started = control.read_state(running.paths)
    finally:
        res = running.ivr112("down")
        print(res.stdout, res.stderr)
        if "database" in running.__dict__:
            running.database.stop()  # stopped by `down` already: this reaps the restart's process
        if request.session.testsfailed:
            print(f"a cluster test failed: its folder (nodes' app.log and watch.log, the edge's log) is kept in {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
        claim.release()
    left = {name: pid for name, pid in started.items() if pg_alive(pid)}
    assert not left, f"`cluster down` left these running: {left}"
