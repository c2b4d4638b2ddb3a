"""The SIP edge: Kamailio 5.6 (Debian's package) rendered from `config/kamailio/edge.cfg`,
run in the edge's namespace and stopped by its pid.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Mapping
from pathlib import Path

from ari_app.cluster.topology import NODE_SIP_PORT, Cluster
from ivr.errors import ConfigError
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


def render(cluster: Cluster, folder: Path, *, operators: Mapping[str, str] | None = None,
           node_sip_port: int = NODE_SIP_PORT) -> Path:
    """Write the edge's config and dispatcher list into `folder`; return the config's path.

    `operators`: each operator's generated SIP password (the edge's registrar checks their
    softphones with it); the config holds them, so it is written 0600 and never logged."""
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
        "edge": cluster.edge.address, "edge_port": str(cluster.edge_sip_port), "mpath": module_dir(),
        "list_file": str(listing), "probe_interval_s": str(cluster.probe_interval_s),
        "first_reply_ms": str(cluster.first_reply_ms), "ctl_socket": str(ctl_socket(folder / "run")),
        "operator_count": str(len(operators or {})),
        "operator_passwords": "".join(f'\t$sht(operators=>{name}) = "{password}";\n' for name, password in (operators or {}).items()),
    }
    cfg = folder / "kamailio.cfg"
    cfg.touch(mode=0o600)
    cfg.chmod(0o600)
    cfg.write_text(PLACEHOLDER.sub(lambda m: values[m.group(1)], TEMPLATE.read_text()))
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
