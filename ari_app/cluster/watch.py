"""`ivr112 cluster watch`, beside each node's app: looks at every node's Asterisk over ARI
once a probe interval, and on the first node that is up (one sweeper at a time, whichever
nodes are left) closes the calls a lost node had (ari_app/cluster/sweep.py).
"""

from __future__ import annotations

import logging
import time
import urllib.error
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from ari_app.calls.recovery import close_unseen
from ari_app.cluster import members, node_states, queue_legs, sweep
from ari_app.cluster.topology import Cluster, Part
from ari_app.store import IncidentStore, open_store
from ivr.secrets import load_or_create
from ivr.settings import Settings
from ivr.store import Incident

log = logging.getLogger(__name__)
ASK_TIMEOUT_S = 1.0
# A call a node's Asterisk answered while its app was away (not yet connected after the
# Asterisk's restart: the edge's probe sees the node up first; the dialplan's fallback takes
# the call) has no incident. Once it has ended, it is recorded from Asterisk's own record,
# UNSEEN_GRACE_S after its hang-up, so that the app's own write of a call it did see (its
# writer's queue, or its spool after a short store outage) lands first.
UNSEEN_GRACE_S = 30.0


class Watcher:
    def __init__(self, settings: Settings, cluster: Cluster) -> None:
        self.settings = settings
        self.cluster = cluster
        secrets = load_or_create(settings.data_path)
        # The queues' standby holds the home's members (ari_app/cluster/members.py).
        self.mirror = members.Mirror(cluster, settings.node_name, secrets.console_secret)
        self.ari = queue_legs.Ari.own(settings, secrets.ari_password)
        self.node_ari = {n.name: queue_legs.Ari(n.address, settings.ari_port, secrets.ari_password, timeout=ASK_TIMEOUT_S)
                         for n in cluster.nodes}
        self.last_seen: dict[str, float] = {n.name: time.monotonic() for n in cluster.nodes}
        self.store: IncidentStore | None = None
        self.swept: set[tuple[str, datetime]] = set()  # the Asterisk starts whose unrecorded calls were read

    def started_at(self, node: Part) -> datetime | None:
        """The node's Asterisk start time (ARI /asterisk/info), or None when it does not answer."""
        try:
            body = self.node_ari[node.name].ask("GET", "/asterisk/info", only="status")
            return datetime.fromisoformat(str(body["status"]["startup_time"]))
        except (OSError, ValueError, KeyError, TypeError, urllib.error.URLError):
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
        node_states.write(self.settings.data_path, views)  # for the supervisor's wall
        try:
            self.mirror.once()
            self._release_lost_queue_legs(views)
        except Exception:  # the sweep below must go on
            log.exception("cluster watch: following the queues' nodes failed; trying again")
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
            for incident in self._lost(store, open_now, v):
                if sweep.close_lost(store, incident, by=self.settings.node_name):
                    log.error("[%s] incident %d closed as node_lost: its node %s lost the call",
                              incident.channel_id, incident.id, v.name)
                    closed += 1
            if v.reachable:
                closed += self._record_unseen(store, v)
        return closed

    def _record_unseen(self, store: IncidentStore, view: sweep.NodeView) -> int:
        """Record the ended calls of an up node that its app never saw; returns how many."""
        ended_before = datetime.now(UTC) - timedelta(seconds=UNSEEN_GRACE_S)
        calls = sweep.unrecorded(store, view.name, ended_before=ended_before)
        for call in calls:
            log.error("[%s] answered by node %s while its app was away, and ended: recorded from Asterisk's own record",
                      call.channel_id, view.name)
            incident = sweep.record_unseen(store, call, by=self.settings.node_name)
            close_unseen(store, incident_id=incident.id)
        return len(calls)

    def _release_lost_queue_legs(self, views: list[sweep.NodeView]) -> int:
        """Callers this node sent to a queues' node lost for node_lost_after_s go on to the next queue."""
        lost = {v.name for v in views if not v.reachable and v.down_for_s >= self.cluster.node_lost_after_s}
        return sum(queue_legs.release(self.ari, index) for index, node in enumerate(self.cluster.queue_nodes, start=1)
                   if node.name in lost and node.name != self.settings.node_name)

    def _lost(self, store: IncidentStore, open_now: list[Incident], view: sweep.NodeView) -> list[Incident]:
        """The node's lost calls: its open incidents, and the calls its Asterisk answered that
        its app never saw (their incident opened here from Asterisk's own record)."""
        after = self.cluster.node_lost_after_s
        found = sweep.lost(open_now, view, after_s=after)
        if view.reachable:
            # Asterisk's record is read once per start of the node's Asterisk (a restart under
            # its calls shows as a new start), and at every look while the node is lost.
            if view.started_at is None or (view.name, view.started_at) in self.swept:
                return found
            self.swept.add((view.name, view.started_at))
        elif view.down_for_s < after:
            return found
        for call in sweep.lost_unrecorded(sweep.unrecorded(store, view.name), view, after_s=after):
            log.error("[%s] answered by node %s but never seen by its app: recorded from Asterisk's own record",
                      call.channel_id, view.name)
            found.append(sweep.record_unseen(store, call, by=self.settings.node_name))
        return found

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
