"""The standby's queue members follow the home node's (docs/cluster.md, "Operators across nodes").

The operators' queues take calls on one node, the first of `queue_nodes` (its home); when
it is lost the next (the standby) takes the new queue calls, and must then already hold the
same members: app_queue's state is per node. So every other node's `ivr112 cluster watch`
reads, once a probe interval, who is logged in (and paused) on the home node (its app's
/api/operators) and makes its own app's queues the same (its /api/operators/NAME/login...).
While the home does not answer nothing changes: the standby keeps the members the home had
when it was lost.
"""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

from ari_app.cluster.topology import NODE_HTTP_PORT, Cluster, Part

log = logging.getLogger(__name__)
ASK_TIMEOUT_S = 1.0


@dataclass(frozen=True)
class Member:
    """An operator as one node's desk sees them."""

    name: str
    logged_in: bool
    paused: bool = False
    reason: str = ""
    phone: str = "softphone"


@dataclass(frozen=True)
class Step:
    """One change to make on this node: `action` (login, logout, pause, resume) for `name`."""

    name: str
    action: str
    form: tuple[tuple[str, str], ...] = ()


def members(rows: list[dict[str, Any]]) -> dict[str, Member]:
    """The desk's rows (/api/operators) as members, by name."""
    return {str(r["name"]): Member(str(r["name"]), bool(r.get("queues")), bool(r.get("paused")), str(r.get("reason") or ""),
                                   str(r.get("phone") or "softphone")) for r in rows if r.get("name")}


def steps(home: dict[str, Member], here: dict[str, Member]) -> list[Step]:
    """What makes `here` hold the members `home` holds (operators `home` does not know: left alone)."""
    out: list[Step] = []
    for name, want in sorted(home.items()):
        have = here.get(name, Member(name, False))
        if want.logged_in and (not have.logged_in or have.phone != want.phone):
            out.append(Step(name, "login", (("phone", want.phone),)))
            have = Member(name, True, phone=want.phone)
        elif not want.logged_in and have.logged_in:
            out.append(Step(name, "logout"))
            continue
        if want.logged_in and want.paused and not have.paused:
            out.append(Step(name, "pause", (("reason", want.reason or "pause"),)))
        elif want.logged_in and not want.paused and have.paused:
            out.append(Step(name, "resume"))
    return out


class Mirror:
    """Keeps this node's queue members equal to the home node's (nothing on the home itself)."""

    def __init__(self, cluster: Cluster, me: str, token: str) -> None:
        self.home: Part | None = cluster.queue_nodes[0] if cluster.queue_nodes else None
        self.me = cluster.node(me) if me else None
        self.token = token
        self.done = 0

    def _ask(self, node: Part, path: str, form: tuple[tuple[str, str], ...] | None = None) -> Any:
        data = urllib.parse.urlencode(form).encode() if form is not None else None
        request = urllib.request.Request(f"http://{node.address}:{NODE_HTTP_PORT}{path}", data=data,
                                         method="POST" if data is not None else "GET",
                                         headers={"Authorization": f"Bearer {self.token}"})
        with urllib.request.urlopen(request, timeout=ASK_TIMEOUT_S) as res:
            return json.loads(res.read())

    def _rows(self, node: Part) -> dict[str, Member] | None:
        """The node's operators, or None when its app does not answer or its AMI is down
        (then its board cannot be trusted)."""
        try:
            body = self._ask(node, "/api/operators")
        except (OSError, ValueError, urllib.error.URLError):
            return None
        if not isinstance(body, dict) or not body.get("ami_connected"):
            return None
        return members(list(body.get("operators", [])))

    def once(self) -> int:
        """One look; returns how many changes were made here."""
        if self.home is None or self.me is None or self.me == self.home:
            return 0
        home = self._rows(self.home)
        here = self._rows(self.me) if home is not None else None
        if home is None or here is None:
            return 0
        made = 0
        for step in steps(home, here):
            try:
                self._ask(self.me, f"/api/operators/{step.name}/{step.action}", step.form)
            except (OSError, ValueError, urllib.error.URLError) as exc:
                log.warning("standby queue: %s %s as on %s failed (%s); trying again next look", step.action, step.name,
                            self.home.name, exc)
                continue
            log.info("standby queue: %s %s, as on %s", step.action, step.name, self.home.name)
            made += 1
        self.done += made
        return made
