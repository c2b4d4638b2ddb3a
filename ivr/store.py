"""What a call leaves on record, as the core sees it: the incident, its events, positions
and recordings as frozen rows, and the few store operations the core's own rules need
(`RecordStore`). No engine here: the store itself (SQLite or PostgreSQL) is
`ari_app.store`, which implements this protocol.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from ivr.callbacks import Callback

STORE_FILE = "ivr112.sqlite"


def now() -> str:
    """UTC time as ISO text with milliseconds: sortable and unambiguous across time zones."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")


@dataclass(frozen=True)
class Incident:
    id: int
    channel_id: str
    plan_id: str
    caller_number: str
    called_number: str
    carrier: str
    language: str
    arrived_at: str
    answered_at: str | None = None
    queued_at: str | None = None
    queue: str | None = None
    operator: str | None = None
    operator_answered_at: str | None = None
    ended_at: str | None = None
    route: str | None = None
    route_result: str | None = None
    end_reason: str | None = None
    fallback: int = 0
    priority: str | None = None  # urgent / normal / low, as the call went to the queue
    flags: str | None = None  # comma-separated facts: silent_needs_help, prank_flagged, redial, ...
    category: str | None = None  # emergency / information / prank / ghost, set by the operator
    classified_by: str | None = None
    classified_at: str | None = None
    notes: str | None = None
    closed_at: str | None = None


@dataclass(frozen=True)
class IncidentEvent:
    incident_id: int
    at: str
    kind: str
    detail: dict[str, Any]


INCIDENT_FIELDS = tuple(Incident.__dataclass_fields__)


@dataclass(frozen=True)
class StoredLocation:
    id: int
    incident_id: int
    source: str
    latitude: float | None
    longitude: float | None
    radius_m: float | None
    shape: str
    method: str
    confidence: float | None
    measured_at: str
    received_at: str
    kecamatan: str | None
    description: str
    civic: dict[str, str]
    uri: str
    detail: dict[str, str]
    hint: bool


@dataclass(frozen=True)
class Recording:
    id: int
    incident_id: int
    kind: str
    name: str
    path: str
    duration_s: float | None
    created_at: str


@dataclass(frozen=True)
class NumberClear:
    """A supervisor lifted the prank flag of a number (later prank calls count afresh)."""

    number: str
    cleared_at: str
    cleared_by: str | None


class RecordStore(Protocol):
    """The store operations the core's rules (callbacks, classification) are written against."""

    def get(self, incident_id: int) -> Incident | None: ...
    def update(self, incident_id: int, **fields: Any) -> bool | None: ...  # IncidentStore: whether a call's end was written (once)
    def add_event(self, incident_id: int, kind: str, detail: dict[str, Any] | None = None, *, at: str | None = None) -> None: ...
    def callback(self, number: str) -> Callback | None: ...
    def change_callback(self, number: str, change: Callable[[Callback | None], Callback | None]) -> Callback | None:
        """Read the entry locked against other nodes, write what `change` makes of it (None: nothing)."""
    def callbacks(self, *, include_closed: bool, limit: int) -> list[Callback]: ...
    def number_clear(self, number: str) -> NumberClear | None: ...
    def clear_number(self, number: str, *, by: str) -> None: ...
    def prank_times(self, number: str, *, after: str) -> list[str]: ...
