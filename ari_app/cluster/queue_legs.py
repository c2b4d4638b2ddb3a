"""Callers this node sent to a queues' node that is lost come back (docs/cluster.md,
"Operators across nodes").

A caller on this node waiting in the home node's queue is bridged here to a SIP leg to the
home; when the home dies no BYE comes, and the caller would hear silence for as long as the
leg lasts. So once the home has not answered for `node_lost_after_s`, this node's watcher
marks each such caller (QUEUE_NODE_LOST_VAR on the caller's channel, named by the leg's
inherited CALLER_CHANNEL_VAR) and hangs up the leg over this node's own ARI; the dialplan
after Dial() sees the mark and sends the caller to the next queues' node, or this node's
own queue, instead of ending the call.
"""

from __future__ import annotations

import base64
import json
import logging
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from ari_app.asterisk.render import ARI_USER, CALLER_CHANNEL_VAR, QUEUE_NODE_LOST_VAR, queue_node_endpoint
from ivr.settings import Settings

log = logging.getLogger(__name__)
ASK_TIMEOUT_S = 2.0


class Ari:
    """The few blocking ARI requests the watcher makes: on this node's own Asterisk (the
    queue legs), and on every node's (when it started)."""

    def __init__(self, host: str, port: int, password: str, *, timeout: float = ASK_TIMEOUT_S) -> None:
        self.base = f"http://{host}:{port}/ari"
        self.auth = "Basic " + base64.b64encode(f"{ARI_USER}:{password}".encode()).decode()
        self.timeout = timeout

    @classmethod
    def own(cls, settings: Settings, password: str) -> Ari:
        return cls(settings.ari_host, settings.ari_port, password)

    def ask(self, method: str, path: str, **query: str) -> Any:
        url = f"{self.base}{path}" + (f"?{urllib.parse.urlencode(query)}" if query else "")
        request = urllib.request.Request(url, method=method, headers={"Authorization": self.auth})
        with urllib.request.urlopen(request, timeout=self.timeout) as res:
            body = res.read()
        return json.loads(body) if body else None


def release(ari: Ari, index: int) -> int:
    """Send back every caller waiting on a leg to the `index`-th queues' node; returns how many."""
    try:
        endpoint = ari.ask("GET", f"/endpoints/PJSIP/{queue_node_endpoint(index)}")
    except (OSError, ValueError, urllib.error.URLError) as exc:
        log.warning("queue legs to node %d not read from this node's ARI (%s); trying again next look", index, exc)
        return 0
    released = 0
    for leg in endpoint.get("channel_ids", []) if isinstance(endpoint, dict) else []:
        try:
            caller = ari.ask("GET", f"/channels/{leg}/variable", variable=CALLER_CHANNEL_VAR).get("value", "")
            if caller:
                ari.ask("POST", f"/channels/{caller}/variable", variable=QUEUE_NODE_LOST_VAR, value="1")
            ari.ask("DELETE", f"/channels/{leg}")
        except (OSError, ValueError, urllib.error.URLError) as exc:  # the call ended meanwhile: nothing to do
            log.info("queue leg %s not released (%s)", leg, exc)
            continue
        log.error("[%s] its queues' node %d is lost: the caller goes to the next queue", caller or leg, index)
        released += 1
    return released
