"""What a call's controller needs of Asterisk (`CallAri`) and of the incident store
(`CallStore`), as named methods: the real `AriClient` and `AsyncStore` fit them, and the
unit tests' recorded fakes (tests/unit/fake_call_ari.py, fake_call_store.py) do too
(httpcore's habit: the protocol code talks to a small interface, with a mock beside it).

Also the app's own events about a call (timers, a recording's end, an agency leg's event),
dispatched on the caller's channel like ARI's.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from ari_app.ari.events import Channel
from ari_app.calls.hep import LegProgress
from ari_app.store import IncidentStore
from ivr.agency_data import Centre
from ivr.plan import Plan
from ivr.store import Incident

T = TypeVar("T")


class CallAri(Protocol):
    """The ARI requests a call's controller makes (ari_app.ari.client.AriClient)."""

    @property
    def app(self) -> str: ...

    async def answer(self, channel_id: str) -> None: ...

    async def hangup(self, channel_id: str, reason: str = "normal") -> None: ...

    async def play(self, channel_id: str, media: Sequence[str], *, playback_id: str | None = None,
                   lang: str | None = None) -> str: ...

    async def stop_playback(self, playback_id: str, *, channel_id: str | None = None) -> None: ...

    async def playback_exists(self, playback_id: str, *, channel_id: str | None = None) -> bool: ...

    async def continue_in_dialplan(self, channel_id: str, *, context: str | None = None, extension: str | None = None,
                                   priority: int | None = None, label: str | None = None) -> None: ...

    async def get_variable(self, channel_id: str, name: str) -> str | None: ...

    async def set_variable(self, channel_id: str, name: str, value: str) -> None: ...

    async def channel_gone(self, channel_id: str) -> bool: ...

    async def subscribe(self, channel_id: str) -> None: ...

    async def ring(self, channel_id: str) -> None: ...

    async def ring_stop(self, channel_id: str) -> None: ...

    async def record(self, channel_id: str, name: str, *, max_duration_s: int, max_silence_s: int, format: str = "wav",
                     terminate_on: str = "#") -> None: ...

    async def stop_recording(self, name: str, *, channel_id: str | None = None) -> None: ...

    async def originate(self, endpoint: str, *, app: str | None = None, app_args: str | None = None, context: str | None = None,
                        extension: str | None = None, priority: int | None = None, label: str | None = None,
                        caller_id: str | None = None, timeout_s: int | None = None, channel_id: str | None = None,
                        other_channel_id: str | None = None, originator: str | None = None,
                        variables: Mapping[str, str] | None = None) -> Channel: ...

    async def create_bridge(self, type: str = "mixing", bridge_id: str | None = None, *, name: str | None = None) -> str: ...

    async def add_channel(self, bridge_id: str, channel_id: str) -> None: ...

    async def destroy_bridge(self, bridge_id: str) -> None: ...


class CallStore(Protocol):
    """The incident store as a call uses it (ari_app.storage.AsyncStore)."""

    async def open_incident(self, **fields: Any) -> Incident: ...

    async def update(self, incident_id: int, **fields: Any) -> None: ...

    async def add_event(self, incident_id: int, kind: str, detail: dict[str, Any] | None = None) -> None: ...

    async def get(self, incident_id: int) -> Incident | None: ...

    async def by_channel(self, channel_id: str) -> Incident | None: ...

    async def run(self, fn: Callable[[IncidentStore], T]) -> T: ...

    async def write(self, name: str, incident_id: int | None = None, /, *, wait: bool = False, **args: Any) -> Any:
        """A named write (ari_app/store/writes.py): handed over, kept and replayed while the store fails."""

    @property
    def ok(self) -> bool:
        """The store takes writes now (none waiting)."""


class Poster(Protocol):
    def __call__(self, event: Any) -> None: ...


class PlanSource(Protocol):
    def plan_for(self, plan_id: str) -> Plan: ...


class PeerRegistry(Protocol):
    """What the app keeps across calls: agency legs, and live calls by number (for AML)."""

    def claim_peer(self, peer_id: str, caller_id: str) -> None: ...

    def call_started(self, number: str, channel_id: str) -> None: ...

    def call_ended(self, number: str, channel_id: str) -> None: ...

    def recording_started(self, name: str, channel_id: str) -> None: ...

    def incident_changed(self, incident_id: int, kind: str, detail: dict[str, str]) -> None: ...

    def announcement_sound(self, language: str) -> str | None: ...

    def person_wanted(self) -> None:
        """A caller may take a free operator now (operators_first): look for one."""

    def person_declined(self, channel_id: str) -> None:
        """This caller will not use the operator promised to it."""

    def leg_progress(self, leg_id: str) -> LegProgress | None: ...

    def centre(self, plan: Plan) -> Centre:
        """Who we are to the agencies (their references point back here)."""


# The app's own events about a call --------------------------------------------------------


@dataclass(frozen=True)
class TimerFired:
    """A WaitDigits timeout ran out; `token` tells a stale timer from the current one."""

    channel_id: str
    token: int
    type: str = "ivr112.TimerFired"


@dataclass(frozen=True)
class TrunkSilent:
    """An agency trunk leg's response_timeout ran out; the controller asks the SIP capture
    whether the trunk answered the INVITE at all."""

    channel_id: str
    peer_id: str
    type: str = "ivr112.TrunkSilent"


@dataclass(frozen=True)
class LocationArrived:
    """A position for this call came from outside the call (AML); `good` if precise enough."""

    channel_id: str
    good: bool
    type: str = "ivr112.LocationArrived"


@dataclass(frozen=True)
class RecordingEvent:
    """A recording's end, delivered on the channel that asked for it (Asterisk's event may
    not name the channel, so the app routes it by the recording's name)."""

    channel_id: str
    event: Any
    type: str = "ivr112.RecordingEvent"


@dataclass(frozen=True)
class PeerEvent:
    """An event of the agency leg, delivered in order on the caller's channel."""

    channel_id: str
    event: Any
    type: str = "ivr112.PeerEvent"
