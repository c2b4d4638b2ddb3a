"""A node lost with calls on it: the media of those calls is gone, their record is not.

Every node's channel ids start with its name (Asterisk's systemname, the `node_name`
setting), so the shared store says which open incidents were on which node. A node has
lost its calls when its Asterisk stopped answering for `node_lost_after_s`, or when it
answers again but started after the call arrived (it was killed and restarted under it).
`lost()` decides (pure); `close_lost()` closes each such incident as `node_lost` and puts
every caller no person answered on the callback list, once, whichever node does it. A call
the node answered but its app never saw has no incident: `unrecorded()` finds it in the
node's Asterisk's own record (CEL in the shared store) and `record_unseen()` opens it first.
A node up whose app was away when a call came (its Asterisk restarted and the edge's probe
saw it before the app had connected; the dialplan's fallback took the call) has such calls
too: once they have ended, `unrecorded(..., ended_before=)` finds them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import text
from sqlalchemy.exc import ProgrammingError

from ari_app.asterisk import cel
from ari_app.calls.recovery import NODE_LOST
from ari_app.store import IncidentStore
from ivr import callbacks
from ivr.store import Incident, now


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


PLAN_CONTEXT = "ivr112-plan-"  # each plan's dialplan context (asterisk/render.py plan_context), where it answers
# Calls a node's Asterisk answered (its own record, cel_pgsql: ari_app/asterisk/cel.py) that
# have no incident: their app never saw them (Asterisk died before StasisStart reached it, or
# the app was dead and the dialplan's fallback took the call). Only the caller's own channel
# (uniqueid = linkedid), not the operators' and agencies' legs. The sweeper reads only these
# calls' rows (their answer and hang-up): every other row can go (prune_cel).
_UNRECORDED_ROW = """a.eventtype = 'ANSWER' AND a.uniqueid = a.linkedid AND a.context LIKE :plans
  AND NOT EXISTS (SELECT 1 FROM incidents i WHERE i.channel_id = a.uniqueid)"""
_SELECT = f"SELECT a.uniqueid, a.cid_num, a.exten, a.context, a.eventtime FROM {cel.TABLE} a"
_UNRECORDED = text(f"{_SELECT} WHERE a.uniqueid LIKE :prefix AND {_UNRECORDED_ROW} ORDER BY a.id")
# ... of those, the calls that ended (hung up) before :ended_before.
_UNRECORDED_ENDED = text(f"""{_SELECT} WHERE a.uniqueid LIKE :prefix AND {_UNRECORDED_ROW}
  AND EXISTS (SELECT 1 FROM {cel.TABLE} h WHERE h.uniqueid = a.uniqueid AND h.eventtype = 'HANGUP' AND h.eventtime < :ended_before)
ORDER BY a.id""")
_PRUNE = text(f"""DELETE FROM {cel.TABLE} c WHERE c.eventtime < :before
  AND NOT EXISTS (SELECT 1 FROM {cel.TABLE} a WHERE a.uniqueid = c.uniqueid AND {_UNRECORDED_ROW})""")


@dataclass(frozen=True)
class Unrecorded:
    """A call a node's Asterisk answered whose app never opened its incident."""

    channel_id: str
    caller_number: str
    called_number: str
    plan_id: str
    answered_at: datetime


def unrecorded(store: IncidentStore, node: str, *, ended_before: datetime | None = None) -> list[Unrecorded]:
    """The caller channels the node answered that have no incident (none without cel_pgsql's
    table); with `ended_before`, only those that hung up before that time."""
    params: dict[str, object] = {"prefix": f"{node}-%", "plans": f"{PLAN_CONTEXT}%"}
    if ended_before is not None:
        params["ended_before"] = _naive_utc(ended_before)
    try:
        with store.engine.connect() as conn:
            rows = conn.execute(_UNRECORDED if ended_before is None else _UNRECORDED_ENDED, params).all()
    except ProgrammingError:  # no such table: not a cluster with PostgreSQL (cel_pgsql)
        return []
    return [Unrecorded(r.uniqueid, r.cid_num or "", r.exten or "", r.context.removeprefix(PLAN_CONTEXT),
                       r.eventtime.replace(tzinfo=UTC)) for r in rows]


def lost_unrecorded(calls: list[Unrecorded], view: NodeView, *, after_s: float) -> list[Unrecorded]:
    """Of `calls` (the node's), those the node has lost: as `lost()` decides for incidents."""
    if not view.reachable:
        return calls if view.down_for_s >= after_s else []
    if view.started_at is None:
        return []
    return [c for c in calls if c.answered_at < view.started_at]


def record_unseen(store: IncidentStore, call: Unrecorded, *, by: str) -> Incident:
    """Open the incident of a call its app never saw (from Asterisk's record), to be closed
    (as lost, or as ended while the app was away)."""
    incident = store.open_incident(channel_id=call.channel_id, plan_id=call.plan_id, caller_number=call.caller_number,
                                   called_number=call.called_number, arrived_at=call.answered_at.isoformat(timespec="milliseconds"))
    store.add_event(incident.id, "recorded_by_asterisk", {"node": node_of(incident) or "", "recorded_by": by},
                    key=f"recorded_by_asterisk:{call.channel_id}")
    return incident


def close_lost(store: IncidentStore, incident: Incident, *, by: str) -> bool:
    """Close one lost call's incident (if still open) and list its caller for a callback when
    no person had answered; returns whether this call did it."""
    current = store.get(incident.id)
    if current is None or current.ended_at:
        return False
    if not store.update(incident.id, ended_at=now(), end_reason=NODE_LOST):
        return False  # its own app ended it just now
    store.add_event(incident.id, NODE_LOST, {"node": node_of(incident) or "", "closed_by": by})
    if not current.operator_answered_at and not (current.route_result or "").startswith("answered by"):
        entry = callbacks.missed(store, current.caller_number, incident.id)
        if entry is not None:
            store.add_event(incident.id, "callback_listed", {"number": current.caller_number, "calls": str(entry.calls)})
    return True


def prune_cel(store: IncidentStore, *, before: datetime) -> int:
    """Delete the rows of Asterisk's record (CEL) written before `before` that the sweeper
    can never need again; returns how many (0 without cel_pgsql's table).

    The sweeper reads only the rows of a caller's call that has no incident (`_UNRECORDED`:
    its answer, and its hang-up). Every other row (operators' and agencies' legs, calls whose
    incident exists: incidents are never deleted, retention only empties their positions and
    recordings) it can never read again, so those go. The rows of a call with no incident
    are the only record of that call: they stay, at any age, until the sweeper has opened
    its incident."""
    try:
        with store.engine.begin() as conn:
            gone = conn.execute(_PRUNE, {"before": _naive_utc(before), "plans": f"{PLAN_CONTEXT}%"})
    except ProgrammingError:  # no such table: not a cluster with PostgreSQL (cel_pgsql)
        return 0
    return int(gone.rowcount or 0)


def _naive_utc(at: datetime) -> datetime:
    """A time as cel_pgsql writes it (`usegmtime`: UTC, in a column without a time zone)."""
    return at.astimezone(UTC).replace(tzinfo=None)
