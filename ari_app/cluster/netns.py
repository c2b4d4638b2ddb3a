"""The private network of a cluster on one machine: a bridge, and one network namespace per
part joined to it by a veth pair, each with its own address. Everything made here is named
after the cluster, and removed by name by `down`.
"""

from __future__ import annotations

import logging
import subprocess
from collections.abc import Sequence

from ari_app.cluster.topology import Cluster, Part
from ivr.errors import ConfigError

log = logging.getLogger(__name__)
IP_TIMEOUT_S = 10.0


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run one `ip` command; ConfigError with its message when it fails and `check`."""
    res = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=IP_TIMEOUT_S, check=False)
    if check and res.returncode != 0:
        raise ConfigError(f"`ip {' '.join(args)}` failed: {res.stderr.strip()} (the cluster needs root for namespaces)")
    return res


def exists(netns: str) -> bool:
    return netns in namespaces()


def namespaces() -> list[str]:
    return [line.split()[0] for line in ip("netns", "list").stdout.splitlines() if line.strip()]


def prefix(cluster: Cluster, part: Part) -> list[str]:
    """The command prefix that runs a program inside the part's namespace."""
    return ["ip", "netns", "exec", part.netns(cluster.name)]


def up(cluster: Cluster) -> None:
    """Make the bridge and every part's namespace (those already there are kept)."""
    if ip("link", "show", cluster.bridge, check=False).returncode != 0:
        ip("link", "add", cluster.bridge, "type", "bridge")
        ip("addr", "add", f"{cluster.host_address}/{cluster.prefix_len}", "dev", cluster.bridge)
    ip("link", "set", cluster.bridge, "up")
    for part in cluster.parts:
        _part_up(cluster, part)


def _part_up(cluster: Cluster, part: Part) -> None:
    ns = part.netns(cluster.name)
    if exists(ns):
        return
    link = part.host_link(cluster.name)
    ip("netns", "add", ns)
    ip("link", "add", link, "type", "veth", "peer", "name", "eth0", "netns", ns)
    ip("link", "set", link, "master", cluster.bridge, "up")
    ip("-n", ns, "addr", "add", f"{part.address}/{cluster.prefix_len}", "dev", "eth0")
    ip("-n", ns, "link", "set", "eth0", "up")
    ip("-n", ns, "link", "set", "lo", "up")
    log.info("namespace %s: %s on %s", ns, part.address, cluster.bridge)


def set_link(cluster: Cluster, part: Part, *, up: bool) -> None:
    """Cut (or restore) a part's link to the bridge, as a pulled cable would."""
    ip("link", "set", part.host_link(cluster.name), "up" if up else "down")


def down(cluster: Cluster, extra: Sequence[Part] = ()) -> None:
    """Remove every namespace and the bridge this cluster made (missing ones are skipped)."""
    present = set(namespaces())
    for part in (*cluster.parts, *extra):
        if part.netns(cluster.name) in present:
            ip("netns", "del", part.netns(cluster.name), check=False)
        ip("link", "del", part.host_link(cluster.name), check=False)
    ip("link", "del", cluster.bridge, check=False)
