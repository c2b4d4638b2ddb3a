"""A real cluster for these tests: `ivr112 cluster up` with its own cluster file (its own
namespaces, bridge and addresses: the first free 10.211.N.0/24 from N = 13) and data folder; SIPp callers in the
callers' namespace send to the edge. Needs root, Kamailio and PostgreSQL 15; skipped, saying
why, without them. Not in `make test` (see docs/cluster.md): `make cluster-chaos` runs it.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from ari_app.cluster import control, kamailio, topology
from ari_app.cluster.topology import Cluster
from ari_app.store import IncidentStore, open_store
from ari_app.store.pg_server import available as pg_available
from ivr.settings import PROJECT_DIR, Settings, load_settings

SIPP = shutil.which("sipp") or "/usr/bin/sipp"
SCENARIO = PROJECT_DIR / "tests" / "sipp" / "cluster_caller.xml"
LONG = os.environ.get("IVR112_CHAOS", "") == "long"
def _claim_subnet() -> tuple[int, int]:
    """A private /24 no other cluster run on this machine holds: an flock per third octet
    (held for the session), and no bridge of that name already there. Several runs at once
    (developers, CI) each get their own addresses, namespaces and bridge."""
    for octet in range(13, 64):
        fd = os.open(f"/run/lock/ivr112-cluster-{octet}.lock", os.O_CREAT | os.O_RDWR, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        if not Path(f"/sys/class/net/i112t{octet}br").exists():
            return octet, fd
        os.close(fd)
    raise RuntimeError("no free 10.211.13-63.0/24 for a test cluster: stop the other runs (`ivr112 cluster down`)")


def cluster_spec(octet: int) -> dict[str, object]:
    net = f"10.211.{octet}"
    return {
        "name": f"i112t{octet}", "bridge": f"i112t{octet}br", "prefix_len": 24, "host_address": f"{net}.1",
        "edge": f"{net}.10", "edge_sip_port": 5060, "database": f"{net}.2", "database_port": 5432,
        "nodes": [{"name": "node1", "address": f"{net}.11"}, {"name": "node2", "address": f"{net}.12"}],
        "callers": f"{net}.100", "probe_interval_s": 1, "first_reply_ms": 1000, "node_lost_after_s": 5,
    }



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

    def ivr112(self, *args: str) -> subprocess.CompletedProcess[str]:
        cmd = [sys.executable, "-m", "ari_app.cli", "--config", str(self.config), "cluster", *args, "--cluster", str(self.cluster_file)]
        env = {k: v for k, v in os.environ.items() if not k.startswith("IVR112_")}
        return subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env, cwd=PROJECT_DIR, check=False)

    def edge_states(self) -> dict[str, str]:
        return kamailio.node_states(self.paths.edge_run)

    def store(self) -> IncidentStore:
        return open_store(self.tmp, control.store_url(self.cluster, self.paths))

    def sipp(self, name: str, *, calls: int, rate: float, seconds: float, caller: str) -> subprocess.Popen[bytes]:
        """SIPp callers in the callers' namespace, to the edge; counts in `<name>_counts.csv`."""
        workdir = self.tmp / name
        workdir.mkdir(exist_ok=True)
        cmd = ["ip", "netns", "exec", self.cluster.callers.netns(self.cluster.name), SIPP,
               f"{self.cluster.edge.address}:{self.cluster.edge_sip_port}", "-sf", str(SCENARIO), "-s", "112",
               "-key", "caller", caller, "-i", self.cluster.callers.address, "-p", "5070", "-m", str(calls),
               "-r", str(rate), "-d", str(int(seconds * 1000)), "-trace_counts", "-fd", "1", "-trace_err", "-nostdin",
               "-timeout", "120s", "-timeout_error"]
        return subprocess.Popen(cmd, cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def sipp_counts(workdir: Path) -> dict[str, int]:
    """SIPp's final per-message counts (`-trace_counts`), by column name."""
    (path,) = workdir.glob("*_counts.csv")
    lines = path.read_text().splitlines()
    head, last = lines[0].split(";"), lines[-1].split(";")
    return {k: int(v) for k, v in zip(head, last, strict=False) if v.isdigit()}


def _quiet_queue_plan(tmp: Path) -> Path:
    """Kotim's plan with no position announcements in the operators' queue: app_queue plays
    them to the caller at the head of the queue before it rings a member, so with callers
    waiting a freed operator sits idle for the announcement (about 5-7 s each time, measured
    in tests/cluster/test_operators.py with the plan as shipped: 77 s over 20 calls). The
    operators' test measures what the cluster adds, not that single-node effect."""
    source = PROJECT_DIR / "dialplans" / "kotim.yaml"
    doc = yaml.safe_load(source.read_text())
    doc["queues"]["operators"]["announce_position"] = False
    doc["location"]["boundaries"] = str((source.parent / doc["location"]["boundaries"]).resolve())
    path = tmp / "kotim.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True))
    return path


def _missing() -> str:
    if not os.environ.get("IVR112_CLUSTER"):
        return "the cluster suite runs with `make cluster-chaos` (IVR112_CLUSTER=1): it needs root and fixed private addresses"
    if os.geteuid() != 0:
        return "the cluster needs root (network namespaces)"
    if not kamailio.BINARY.exists():
        return "Kamailio is not installed (apt-get install kamailio)"
    if not pg_available():
        return "PostgreSQL 15 is not installed (apt-get install postgresql-15)"
    if not os.environ.get("IVR112_ASTERISK_ROOT"):
        return "IVR112_ASTERISK_ROOT is not set"
    return ""


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    if why := _missing():
        pytest.skip(why)
    del tmp_path_factory  # pytest's folders are root's alone: PostgreSQL runs as `postgres` and must reach its data
    tmp = Path(tempfile.mkdtemp(prefix="ivr112-cluster-"))
    tmp.chmod(0o711)
    data = tmp / "data"
    data.mkdir()
    (data / "prompts").symlink_to(load_settings().data_path.resolve() / "prompts")
    config = tmp / "ivr112.yaml"
    operators = [{"name": "operator1", "full_name": "Operator 1"}, {"name": "operator2", "full_name": "Operator 2"}]
    config.write_text(yaml.safe_dump({"data_dir": str(data), "asterisk_root": os.environ["IVR112_ASTERISK_ROOT"], "operators": operators,
                                      "plans": [str(_quiet_queue_plan(tmp))]}))
    cluster_file = tmp / "cluster.yaml"
    octet, lock = _claim_subnet()
    cluster_file.write_text(yaml.safe_dump(cluster_spec(octet)))
    running = Running(topology.load(cluster_file), load_settings(config, environ={}), config, cluster_file, tmp)
    try:
        res = running.ivr112("up")
        assert res.returncode == 0, f"cluster up failed:\n{res.stdout}\n{res.stderr}"
        yield running
    finally:
        res = running.ivr112("down")
        print(res.stdout, res.stderr)
        shutil.rmtree(tmp, ignore_errors=True)
        os.close(lock)
