"""SIPp callers through a cluster's edge, from the callers' namespace: the command and its
final counts. The cluster tests (conftest.py) and the benchmark's cluster phase
(bench/cluster.py) both use them.
"""

from __future__ import annotations

from pathlib import Path

from ari_app.cluster.topology import Cluster
from ivr.settings import PROJECT_DIR
from tests.integration.stack import SIPP
from tests.support.plan import load as plan_doc
from tests.support.plan import set_key, write

SCENARIO = PROJECT_DIR / "tests" / "sipp" / "cluster_caller.xml"
CALLERS_PORT = 5070


def caller_command(cluster: Cluster, *, calls: int, rate: float, seconds: float, caller: str, scenario: Path = SCENARIO,
                   source: str = "", keys: dict[str, str] | None = None) -> list[str]:
    """SIPp callers in the callers' namespace to the edge's 112 (the floating address when the
    cluster has one), from `source` (else the callers' address, which `kotim_plan`'s carrier
    matches), each staying `seconds` after the answer; `caller` prefixes each call's number
    (`keys`: the scenario's other keys). Counts go to `<scenario>_<pid>_counts.csv` in the
    working folder (`-trace_counts`)."""
    extra = [arg for k, v in (keys or {}).items() for arg in ("-key", k, v)]
    return ["ip", "netns", "exec", cluster.callers.netns(cluster.name), SIPP,
            f"{cluster.sip_address}:{cluster.edge_sip_port}", "-sf", str(scenario), "-s", "112",
            "-key", "caller", caller, *extra, "-i", source or cluster.callers.address, "-p", str(CALLERS_PORT),
            "-m", str(calls), "-r", str(rate), "-d", str(int(seconds * 1000)), "-trace_counts", "-fd", "1", "-trace_err",
            "-nostdin", "-timeout", "120s", "-timeout_error"]


def kotim_plan(tmp: Path, cluster: Cluster, *, announce_position: bool = True) -> Path:
    """The project's plan (Kotim's) with its carrier sending from the callers' address: the
    edge takes calls only from a served carrier's networks (route CARRIER). Written to tmp."""
    doc = plan_doc()
    if not announce_position:
        set_key(doc, "queues.operators.announce_position", False)
    set_key(doc, "carriers.0.match", [f"{cluster.callers.address}/32"])
    set_key(doc, "location.boundaries", str(PROJECT_DIR / "dialplans" / "kotim-kecamatan.geojson"))
    return write(doc, tmp / "kotim.yaml")


def sipp_counts(workdir: Path) -> dict[str, int]:
    """SIPp's final per-message counts (`-trace_counts`), by column name."""
    (path,) = workdir.glob("*_counts.csv")
    lines = path.read_text().splitlines()
    head, last = lines[0].split(";"), lines[-1].split(";")
    return {k: int(v) for k, v in zip(head, last, strict=False) if v.isdigit()}
