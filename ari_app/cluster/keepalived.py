"""The edges' floating address: Debian's keepalived (VRRP) beside each edge's Kamailio,
moving `edge_vip` to a live edge when the one holding it loses its Kamailio or its host.

Each edge runs one keepalived in its namespace, with the same generated VRRP password,
unicast adverts to the other edges (no multicast needed between hosts), and a check of its
own Kamailio (kamcmd on its control socket) once a second: a Kamailio that does not answer
puts the edge in FAULT, which hands the address over at once (a priority-0 advert).
`nopreempt`: an edge that comes back does not take the address back (a second switch would
lose the transactions in flight once more, for nothing: the edges are equal).
"""

from __future__ import annotations

import secrets
import shutil
import subprocess
from pathlib import Path

from ari_app.cluster import kamailio, netns
from ari_app.cluster.topology import Cluster, Part
from ivr.errors import ConfigError

BINARY = Path("/usr/sbin/keepalived")
KAMCMD = Path(shutil.which("kamcmd") or "/usr/sbin/kamcmd")
VIRTUAL_ROUTER_ID = 112  # one per network segment: each cluster has its own bridge (or VLAN)
ADVERT_INT_S = 1
CHECK_INTERVAL_S = 1
FIRST_PRIORITY = 150  # the first edge takes the address at start; each next one 10 lower
PASSWORD_LEN = 8  # VRRPv2 PASS authentication keeps 8 characters


def password(state_dir: Path) -> str:
    """The edges' VRRP password: generated once, kept 0600 beside the cluster's state."""
    path = state_dir / "vrrp-password"
    if not path.exists():
        state_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(PASSWORD_LEN)[:PASSWORD_LEN] + "\n")
        path.chmod(0o600)
    return path.read_text().strip()


def render(cluster: Cluster, edge: Part, folder: Path, *, secret: str) -> Path:
    """Write `edge`'s keepalived.conf (0600: it holds the password); return its path."""
    index = cluster.all_edges.index(edge)
    peers = " ".join(e.address for e in cluster.all_edges if e != edge)
    ctl = kamailio.ctl_socket(folder / "run")
    text = f"""# Rendered by `ivr112 cluster up` for {edge.name} (docs/cluster.md): the floating address.
global_defs {{
    router_id {cluster.name}-{edge.name}
    script_user root
    enable_script_security
}}
vrrp_script kamailio_answers {{
    script "{KAMCMD} -s unix:{ctl} core.uptime"
    interval {CHECK_INTERVAL_S}
    timeout {CHECK_INTERVAL_S}
    fall 1
    rise 1
}}
vrrp_instance {cluster.name}_edge {{
    state BACKUP
    nopreempt
    interface eth0
    virtual_router_id {VIRTUAL_ROUTER_ID}
    priority {FIRST_PRIORITY - 10 * index}
    advert_int {ADVERT_INT_S}
    unicast_src_ip {edge.address}
    unicast_peer {{
        {peers}
    }}
    authentication {{
        auth_type PASS
        auth_pass {secret}
    }}
    virtual_ipaddress {{
        {cluster.edge_vip}/{cluster.prefix_len} dev eth0
    }}
    track_script {{
        kamailio_answers
    }}
}}
"""
    folder.mkdir(parents=True, exist_ok=True)
    cfg = folder / "keepalived.conf"
    cfg.touch(mode=0o600)
    cfg.chmod(0o600)
    cfg.write_text(text)
    return cfg


def command(cfg: Path) -> list[str]:
    """keepalived in the foreground, VRRP only, its pid files beside its config (several run here)."""
    run = cfg.parent / "run"
    run.mkdir(parents=True, exist_ok=True)
    return [str(BINARY), "--dont-fork", "--log-console", "--log-detail", "--no-syslog", "--vrrp", "-f", str(cfg),
            "-p", str(run / "keepalived.pid"), "-r", str(run / "vrrp.pid")]


def check(cfg: Path) -> None:
    """keepalived's own test of the rendered config; ConfigError with its output."""
    res = subprocess.run([str(BINARY), "--config-test", "-f", str(cfg)], capture_output=True, text=True, timeout=30, check=False)
    if res.returncode != 0:
        raise ConfigError(f"keepalived refused {cfg}:\n{(res.stderr or res.stdout)[-2000:]}")


def holders(cluster: Cluster) -> list[str]:
    """The names of the edges whose namespace has the floating address now (one, when all is well)."""
    held = []
    for edge in cluster.all_edges:
        res = netns.ip("-n", edge.netns(cluster.name), "-o", "-4", "addr", "show", "dev", "eth0", check=False)
        if f" {cluster.edge_vip}/" in res.stdout:
            held.append(edge.name)
    return held
