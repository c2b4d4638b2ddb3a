"""The `ivr112 cluster` commands: up, down, status, and sweep (close a lost node's calls)."""

from __future__ import annotations

import argparse
import signal
from pathlib import Path
from typing import Any

from ari_app.cluster import control, topology
from ivr.settings import Settings


def add_parser(sub: Any) -> None:
    p = sub.add_parser("cluster", help="several call nodes behind a Kamailio edge, one PostgreSQL store (docs/cluster.md)")
    p.add_argument("action", choices=["up", "down", "status", "watch"])
    p.add_argument("--cluster", type=Path, default=topology.DEFAULT_FILE, help="the cluster file (default config/cluster.yaml)")
    p.add_argument("--nodes", type=int, default=0, help="how many call nodes (default: those the cluster file lists)")
    p.set_defaults(func=cmd_cluster)


def cmd_cluster(args: argparse.Namespace, settings: Settings) -> int:
    cluster = topology.load(args.cluster)
    if args.nodes:
        cluster = cluster.with_nodes(args.nodes)
    if args.action == "up":
        pids = control.up(settings, cluster)
        print(f"cluster {cluster.name} up: carriers send to sip:{cluster.sip_address}:{cluster.edge_sip_port}")
        print("  " + ", ".join(f"{name} pid {pid}" for name, pid in pids.items()))
        print(f"  store {control.store_url(cluster, control.paths(settings)).split('@')[1]}; `ivr112 cluster status` for more")
        return 0
    if args.action == "down":
        control.down(settings, cluster)
        print(f"cluster {cluster.name} down")
        return 0
    if args.action == "watch":
        return _watch(settings, cluster)
    lines = control.status(settings, cluster)
    print("\n".join(lines))
    return 3 if any("stopped" in line for line in lines) else 0


def _watch(settings: Settings, cluster: topology.Cluster) -> int:
    from ari_app.cluster.watch import Watcher

    stopping = {"now": False}

    def stop(*_: object) -> None:
        stopping["now"] = True

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, stop)
    Watcher(settings, cluster).run(stop=lambda: stopping["now"])
    return 0
