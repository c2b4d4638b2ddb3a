"""`ivr112 cluster watch`, beside each node's app: looks at every node's Asterisk over ARI
once a probe interval, and on the first node that is up (one sweeper at a time, whichever
nodes are left) closes the calls a lost node had (ari_app/cluster/sweep.py).
"""

from __future__ import annotations

import base64
import json
import logging
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import datetime

from ari_app.asterisk.render import ARI_USER
from ari_app.cluster import sweep
from ari_app.cluster.topology import Cluster, Part
from ari_app.store import IncidentStore, open_store
from ivr.secrets import load_or_create
from ivr.settings import Settings

log = logging.getLogger(__name__)
ASK_TIMEOUT_S = 1.0


class Watcher:
    def __init__(self, settings: Settings, cluster: Cluster) -> None:
        self.settings = settings
        self.cluster = cluster
        self.password = load_or_create(settings.data_path).ari_password
        self.last_seen: dict[str, float] = {n.name: time.monotonic() for n in cluster.nodes}
        self.store: IncidentStore | None = None

    def started_at(self, node: Part) -> datetime | None:
        """The node's Asterisk start time (ARI /asterisk/info), or None when it does not answer."""
        url = f"http://{node.address}:{self.settings.ari_port}/ari/asterisk/info?only=status"
        token = base64.b64encode(f"{ARI_USER}:{self.password}".encode()).decode()
        request = urllib.request.Request(url, headers={"Authorization": f"Basic {token}"})
        try:
            with urllib.request.urlopen(request, timeout=ASK_TIMEOUT_S) as res:
                body = json.loads(res.read())
            return datetime.fromisoformat(str(body["status"]["startup_time"]))
        except (OSError, ValueError, KeyError, urllib.error.URLError):
            return None

    def views(self) -> list[sweep.NodeView]:
        out = []
        for node in self.cluster.nodes:
            started = self.started_at(node)
            if started is not None:
                self.last_seen[node.name] = time.monotonic()
            out.append(sweep.NodeView(node.name, started is not None, time.monotonic() - self.last_seen[node.name], started))
        return out

    def once(self) -> int:
        """One look; returns how many lost calls this node closed."""
        views = self.views()
        sweeper = next((v.name for v in views if v.reachable), None)
        if sweeper != self.settings.node_name:
            return 0
        for v in views:
            if not v.reachable and v.down_for_s >= self.cluster.node_lost_after_s:
                log.error("node %s has not answered for %.0f s: its calls are lost", v.name, v.down_for_s)
        if self.store is None:
            self.store = open_store(self.settings.data_path, self.settings.store_url)
        store = self.store
        open_now = store.open_incidents()
        closed = 0
        for v in views:
            for incident in sweep.lost(open_now, v, after_s=self.cluster.node_lost_after_s):
                if sweep.close_lost(store, incident, by=self.settings.node_name):
                    log.error("[%s] incident %d closed as node_lost: its node %s lost the call",
                              incident.channel_id, incident.id, v.name)
                    closed += 1
        return closed

    def run(self, stop: Callable[[], bool]) -> None:
        log.info("cluster watch on %s: %d nodes, lost after %d s", self.settings.node_name, len(self.cluster.nodes),
                 self.cluster.node_lost_after_s)
        while not stop():
            try:
                self.once()
            except Exception:
                log.exception("cluster watch: one look failed; trying again")
                if self.store is not None:
                    self.store.close()
                    self.store = None
            time.sleep(self.cluster.probe_interval_s)  # the probe's own period, as the edge's
