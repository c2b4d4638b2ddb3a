"""The supervisor's wall: every call in the voice menu, where it is in the menu and what the
menu learned so far (choices, kecamatan, position, flags), built from the live call
controllers and one store read; and the cheap signature that tells the live stream when
that list changed.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ari_app.calls.controller import CallController
from ari_app.storage import AsyncStore
from ivr.store import IncidentEvent, StoredLocation

# Incident steps that teach the wall something new about a call in the menu without
# moving it to another state (a position from AML, the caller's history).
LEARNING = frozenset({"choice", "kecamatan", "silent_help", "language", "location", "caller_history"})


def in_ivr(controllers: Iterable[CallController]) -> list[CallController]:
    """The calls in the voice menu now, oldest first."""
    calls = [c for c in controllers if c.in_ivr]
    return sorted(calls, key=lambda c: c.incident.arrived_at if c.incident is not None else "")


def signature(controllers: Iterable[CallController]) -> tuple[tuple[str, str], ...]:
    """Which calls are in the menu and in which state: when it differs, the wall is redrawn."""
    return tuple(sorted((c.channel_id, c.flow.state.value) for c in in_ivr(controllers) if c.flow is not None))


async def ivr_calls(controllers: Iterable[CallController], store: AsyncStore) -> list[dict[str, Any]]:
    """One row per call in the menu (one store read for all of them)."""
    calls = in_ivr(controllers)
    ids = [c.incident.id for c in calls if c.incident is not None]
    learned = await store.run(lambda s: s.learned(ids))
    return [_row(c, *learned.get(c.incident.id, ([], []))) for c in calls if c.incident is not None]


def _row(c: CallController, events: list[IncidentEvent], locations: list[StoredLocation]) -> dict[str, Any]:
    assert c.incident is not None and c.flow is not None
    flow = c.flow
    return {
        "channel": c.channel_id, "incident_id": c.incident.id, "caller": c.caller, "arrived_at": c.incident.arrived_at,
        "state": flow.state.value, "menu": flow.menu.name if flow.menu is not None else None, "language": flow.language,
        "choices": [{"kind": e.kind, **{k: str(v) for k, v in e.detail.items()}} for e in events],
        "keys": flow.collected, "pressed": flow.pressed, "spoke": flow.spoke, "flags": c.all_flags,
        "location": _best(locations),
    }


def _best(locations: list[StoredLocation]) -> dict[str, Any] | None:
    """The position an operator would look at first: the most precise real one, else the
    newest kecamatan the caller keyed, else a hint from an earlier call."""
    real = [loc for loc in locations if not loc.hint]
    measured = [loc for loc in real if loc.radius_m is not None]
    best = (min(measured, key=lambda loc: loc.radius_m or 0.0) if measured
            else real[-1] if real else locations[-1] if locations else None)
    if best is None:
        return None
    return {"kecamatan": best.kecamatan, "radius_m": best.radius_m, "source": best.source,
            "description": best.description, "hint": best.hint}
