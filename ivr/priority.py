"""Where a call stands in the operators' queue: urgent, normal or low.

Urgent goes ahead of everyone: a silent caller who pressed the help key, a caller whose
chosen agency (one the plan lists in `priority.urgent_agencies`) did not answer, and a
number calling again soon after a call no person answered. Low is a prank-flagged number
that pressed the key to reach an operator; calling again after hanging up is what prank
callers do, so it does not lift them, but a silent caller's help key or a failed fire or
ambulance call does: a real emergency from a former prank caller still goes first.
"""

from __future__ import annotations

from dataclasses import dataclass

LEVELS = ("urgent", "normal", "low")
URGENT_FLAGS = ("silent_needs_help", "agency_failed")


@dataclass(frozen=True)
class CallerHistory:
    """What the store says of the number before the call starts."""

    redial: bool = False  # its last call, within the plan's redial_minutes, ended with no person
    prank: bool = False  # flagged by operators' prank classifications


def queue_priority(route_priority: str, history: CallerHistory, flags: list[str] | tuple[str, ...]) -> str:
    """The level the call joins the queue with. `route_priority` is what the call flow said
    ("urgent" for the silent help key, "low" for a prank-flagged number's key)."""
    if route_priority == "urgent" or any(f in URGENT_FLAGS for f in flags):
        return "urgent"
    if route_priority == "low" or history.prank:
        return "low"
    return "urgent" if history.redial else "normal"
