"""A node lost with calls on it: the media of those calls is gone, their record is not.

Every node's channel ids start with its name (Asterisk's systemname, the `node_name`
setting), so the shared store says which open incidents were on which node. A node has
lost its calls when its Asterisk stopped answering for `node_lost_after_s`, or when it
answers again but started after the call arrived (it was killed and restarted under it).
`lost()` decides (pure); `close_lost()` closes each such incident as `node_lost` and puts
every caller no person answered on the callback list, once, whichever node does it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from ari_app.store import IncidentStore
from ivr import callbacks
from ivr.store import Incident, now

NODE_LOST = "node_lost"


@dataclass(frozen=True)
class NodeView:
    """What a watcher knows of one node's Asterisk."""

    name: str
    reachable: bool
    down_for_s: float  # how long it has not answered (0 when it answers)
    started_at: datetime | None  # its Asterisk's start, when it answers


def node_of(incident: Incident) -> str | None:
    """The node an incident's call was on (from its channel id `node1-1700000000.12`)."""
    name, sep, _ = incident.channel_id.rpartition("-")
    return name if sep and name else None


def lost(open_incidents: list[Incident], view: NodeView, *, after_s: float) -> list[Incident]:
    """The open incidents of `view`'s node whose call the node has lost."""
    mine = [i for i in open_incidents if node_of(i) == view.name]
    if not view.reachable:
        return mine if view.down_for_s >= after_s else []
    if view.started_at is None:
        return []
    return [i for i in mine if datetime.fromisoformat(i.arrived_at) < view.started_at]


def close_lost(store: IncidentStore, incident: Incident, *, by: str) -> bool:
    """Close one lost call's incident (if still open) and list its caller for a callback when
    no person had answered; returns whether this call did it."""
    current = store.get(incident.id)
    if current is None or current.ended_at:
        return False
    store.update(incident.id, ended_at=now(), end_reason=NODE_LOST)
    store.add_event(incident.id, NODE_LOST, {"node": node_of(incident) or "", "closed_by": by})
    if not current.operator_answered_at and not (current.route_result or "").startswith("answered by"):
        entry = callbacks.missed(store, current.caller_number, incident.id)
        if entry is not None:
            store.add_event(incident.id, "callback_listed", {"number": current.caller_number, "calls": str(entry.calls)})
    return True
