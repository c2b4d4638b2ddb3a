"""What the supervisor's wall shows of the cluster: each call node up, or down since when.

`ivr112 cluster watch` (beside each node's app, in the same data folder) writes what it saw
at each look to `<data_dir>/cluster-nodes.json`; the node's app reads it for /api/wall. A
file not renewed for STALE_S means the watcher itself is not running: the wall says the
nodes' state is unknown rather than show an old one.
"""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ari_app.cluster.sweep import NodeView

FILE = "cluster-nodes.json"
STALE_S = 10.0


def write(data_path: Path, views: list[NodeView]) -> None:
    """Each node as the watcher saw it now (written whole: a reader never sees half)."""
    at = datetime.now(UTC)
    nodes = [{"name": v.name, "up": v.reachable,
              "down_since": "" if v.reachable else (at - timedelta(seconds=v.down_for_s)).isoformat(timespec="seconds")}
             for v in views]
    tmp = data_path / f".{FILE}.tmp"
    tmp.write_text(json.dumps({"at": at.isoformat(timespec="seconds"), "nodes": nodes}))
    os.replace(tmp, data_path / FILE)


def read(data_path: Path) -> dict[str, Any]:
    """{"cluster": False} on a single machine; else the nodes, and whether the view is fresh."""
    path = data_path / FILE
    try:
        stat = path.stat()
        body = json.loads(path.read_text())
    except FileNotFoundError:
        return {"cluster": False, "nodes": []}
    except (OSError, ValueError):
        return {"cluster": True, "fresh": False, "nodes": []}
    return {"cluster": True, "fresh": time.time() - stat.st_mtime < STALE_S, "nodes": list(body.get("nodes", []))}
