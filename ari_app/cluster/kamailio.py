"""The SIP edge: Kamailio 5.6 (Debian's package) rendered from `config/kamailio/edge.cfg`,
run in the edge's namespace and stopped by its pid.
"""

from __future__ import annotations

import ipaddress
import re
import subprocess
from collections.abc import Mapping
from pathlib import Path

from ari_app.asterisk.render import CARRIER_HEADER
from ari_app.cluster.topology import NODE_SIP_PORT, Cluster, Part
from ivr.errors import ConfigError
from ivr.plan import PlanSet
from ivr.settings import PROJECT_DIR

TEMPLATE = PROJECT_DIR / "config" / "kamailio" / "edge.cfg"
BINARY = Path("/usr/sbin/kamailio")
PLACEHOLDER = re.compile(r"@@([a-z_]+)@@")
SHM_MB = "64"
PKG_MB = "8"


def module_dir() -> str:
    found = sorted(Path("/usr/lib").glob("*/kamailio/modules/dispatcher.so"))
    if not found:
        raise ConfigError("Kamailio's dispatcher module is missing: `apt-get install kamailio` (Debian 12 ships 5.6)")
    return str(found[0].parent) + "/"


def carrier_marks(plans: PlanSet) -> str:
    """The body of the edge's route CARRIER: for each carrier of the served plans, its `match`
    networks; a request from one gets the carrier's name in X-Ivr112-Carrier. The plans'
    validator already refused two carriers whose networks overlap."""
    lines, seen = [], set()
    for plan in plans.plans:
        for carrier in plan.carriers:
            if carrier.name in seen:
                continue
            seen.add(carrier.name)
            for match in carrier.match:
                net = ipaddress.ip_network(match, strict=False)
                lines.append(f'\tif (src_ip == {net}) {{\n\t\tappend_hf("{CARRIER_HEADER}: {carrier.name}\\r\\n");\n\t\treturn 1;\n\t}}')
    return "\n".join(lines)


def render(cluster: Cluster, folder: Path, plans: PlanSet, *, operators: Mapping[str, str] | None = None,
           node_sip_port: int = NODE_SIP_PORT, edge: Part | None = None) -> Path:
    """Write the edge's config and dispatcher list into `folder`; return the config's path.

    `plans`: the served plans (their carriers' networks, route CARRIER). `operators`: each
    operator's generated SIP password (the edge's registrar checks their softphones with it);
    the config holds them, so it is written 0600 and never logged. `edge`: which of several
    edges (default the first); with a floating address the config defines WITH_VIP (the
    template's blocks for it)."""
    edge = edge or cluster.edge
    folder.mkdir(parents=True, exist_ok=True)
    listing = folder / "dispatcher.list"
    # Set 2, the operators' queues: the first node, then its standby (algorithm 8, first up;
    # a higher priority comes first).
    queues = cluster.queue_nodes
    listing.write_text(
        "# set destination flags priority attributes: the call nodes\n"
        + "".join(f"1 sip:{n.address}:{node_sip_port} 0 0 name={n.name}\n" for n in cluster.nodes)
        + "# the node holding the operators' queues, then its standby\n"
        + "".join(f"2 sip:{n.address}:{node_sip_port} 0 {len(queues) - i} name={n.name}\n" for i, n in enumerate(queues))
    )
    values = {
        "edge": edge.address, "vip": cluster.edge_vip, "edge_port": str(cluster.edge_sip_port), "mpath": module_dir(),
        "list_file": str(listing), "probe_interval_s": str(cluster.probe_interval_s),
        "first_reply_ms": str(cluster.first_reply_ms), "ctl_socket": str(ctl_socket(folder / "run")),
        "carrier_marks": carrier_marks(plans),
        "operator_count": str(len(operators or {})),
        "operator_passwords": "".join(f'\t$sht(operators=>{name}) = "{password}";\n' for name, password in (operators or {}).items()),
    }
    cfg = folder / "kamailio.cfg"
    text = PLACEHOLDER.sub(lambda m: values[m.group(1)], TEMPLATE.read_text())
    if cluster.edge_vip:
        text = text.replace("\n", "\n#!define WITH_VIP\n", 1)  # after `#!KAMAILIO`
    cfg.touch(mode=0o600)
    cfg.chmod(0o600)
    cfg.write_text(text)
    return cfg


def command(cfg: Path, run_dir: Path) -> list[str]:
    """Kamailio in the foreground (-DD: no fork, so the pid we get is the server's own); logs to stderr."""
    run_dir.mkdir(parents=True, exist_ok=True)
    return [str(BINARY), "-f", str(cfg), "-DD", "-E", "-Y", str(run_dir), "-m", SHM_MB, "-M", PKG_MB]


def check(cfg: Path, run_dir: Path) -> None:
    """Kamailio's own syntax check of the rendered config (-c); ConfigError with its output."""
    res = subprocess.run([*command(cfg, run_dir), "-c"], capture_output=True, text=True, timeout=30, check=False)
    if res.returncode != 0:
        raise ConfigError(f"Kamailio refused {cfg}:\n{res.stderr[-2000:]}")


def ctl_socket(run_dir: Path) -> Path:
    return run_dir / "kamailio_ctl"


def node_states(run_dir: Path) -> dict[str, str]:
    """Each node's state as the edge's dispatcher sees it: "up", "down" or "probing" (by address).

    Empty when the edge does not answer on its control socket.
    """
    res = subprocess.run(["kamcmd", "-s", f"unix:{ctl_socket(run_dir)}", "dispatcher.list"],
                         capture_output=True, text=True, timeout=10, check=False)
    states: dict[str, str] = {}
    uri = ""
    for line in res.stdout.splitlines():
        text = line.strip()
        if text.startswith("URI:"):
            uri = text.split("sip:", 1)[1].split(":")[0]
        elif text.startswith("FLAGS:") and uri:
            flags = text.split(":", 1)[1].strip()
            states[uri] = "up" if flags.startswith("A") else ("down" if flags.startswith("I") else "probing")
    return states
