"""A private cluster network of one's own on a shared machine: the first free
10.211.N.0/24 (N from 13), claimed by an flock held as long as the claimant runs, and the
cluster file's settings for it. The cluster tests and the benchmark's cluster phase each
claim one, so several runs at once (developers, CI) get their own addresses, namespaces
and bridge.
"""

from __future__ import annotations

import fcntl
import os
from dataclasses import dataclass
from pathlib import Path

FIRST_OCTET = 13
LAST_OCTET = 63
LOCK_DIR = Path("/run/lock")


@dataclass(frozen=True)
class Claim:
    """A claimed 10.211.`octet`.0/24; the lock is held until `release()`."""

    octet: int
    fd: int

    def release(self) -> None:
        os.close(self.fd)


def cluster_name(octet: int) -> str:
    return f"i112t{octet}"


def claim_subnet(first: int = FIRST_OCTET, last: int = LAST_OCTET, *, lock_dir: Path = LOCK_DIR) -> Claim:
    """The first 10.211.N.0/24 (first <= N <= last) no other run on this machine holds: an
    flock per third octet, and no bridge of that name already there (a cluster left up by
    hand). RuntimeError saying what to do when every one is taken."""
    for octet in range(first, last + 1):
        fd = os.open(lock_dir / f"ivr112-cluster-{octet}.lock", os.O_CREAT | os.O_RDWR, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        if not Path(f"/sys/class/net/{cluster_name(octet)}br").exists():
            return Claim(octet, fd)
        os.close(fd)
    raise RuntimeError(f"no free 10.211.{first}-{last}.0/24 for a private cluster: "
                       "stop the other runs (`ivr112 cluster down --cluster FILE`)")


def cluster_spec(octet: int, *, nodes: int = 2) -> dict[str, object]:
    """A cluster file's settings (as `ivr112 cluster` reads them) on 10.211.`octet`.0/24:
    the edge at .10, the database at .2, `nodes` call nodes from .11, the callers at .100;
    probes each second so a lost node is out of rotation within seconds."""
    net = f"10.211.{octet}"
    return {
        "name": cluster_name(octet), "bridge": f"{cluster_name(octet)}br", "prefix_len": 24, "host_address": f"{net}.1",
        "edge": f"{net}.10", "edge_sip_port": 5060, "database": f"{net}.2", "database_port": 5432,
        "nodes": [{"name": f"node{i}", "address": f"{net}.{10 + i}"} for i in range(1, nodes + 1)],
        "callers": f"{net}.100", "probe_interval_s": 1, "first_reply_ms": 1000, "node_lost_after_s": 5,
    }
