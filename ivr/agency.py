"""Dialling one agency for one caller: events in, actions out, no I/O.

Theory of operation
-------------------
An `AgencyDial` is made when a call is routed to an agency (from the menu, a queue's
overflow, or an operator's transfer). It dials the agency's trunks one at a time, in the
plan's order, until one answers; the answering trunk is bridged with the caller. When every
trunk has failed, the caller goes to the agency's `on_failure` target, which the validator
guarantees ends at a person. The caller hears ringback from the start until a trunk is
bridged (and again while the next trunk is tried after one dropped the call).

The controller feeds it what Asterisk said (`TrunkRang`, `TrunkAnswered`, `TrunkGone`...)
and carries out the actions it returns (`Originate`, `Bridge`, `HangUpLeg`, `FailOver`...).
Trunk legs are named by their 1-based index in the agency's trunk list; an event about any
leg but the one being dialled is a straggler (a trunk given up on, a late answer): it is
ignored, and a straggler that answers is hung up. Times come in on the events
(`time.monotonic()` of the controller), so this module never reads a clock.

    IDLE      --Start-->                   DIALLING: ring the caller, dial trunk 1
    DIALLING  --TrunkRang-->               DIALLING (the response_timeout no longer applies)
    DIALLING  --TrunkSilent(no answer)-->  next trunk (hang up the silent leg)
    DIALLING  --OriginateFailed-->         next trunk ("refused")
    DIALLING  --TrunkGone-->               next trunk (cause worded by ivr.trunks)
    DIALLING  --TrunkAnswered-->           ANSWERED: stop ringback, Bridge
    ANSWERED  --Bridged-->                 CONNECTED: "answered by <agency> trunk <n>"
    ANSWERED  --BridgeFailed-->            dropped: next trunk
    CONNECTED --TrunkGone (< drop_s)-->    dropped: next trunk (ringback again)
    CONNECTED --TrunkGone (>= drop_s)-->   ENDED: agency_hangup, hang up the caller
    any live  --CallerHungUp/Cancelled-->  ENDED: hang up the leg, destroy the bridge
    next trunk, none left                  FAILED: "agency <name> unreachable", FailOver

A trunk that answers and hangs up within `drop_s` (an SBC that answers and drops, a trunk
with no one behind it) has not taken the call: it counts as failed, like one that never
answered. FAILED and ENDED are final: every later event is a straggler.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Callable
from dataclasses import dataclass, field

from ivr import trunks
from ivr.errors import Ivr112Error
from ivr.plan import Agency, Target

# How long an answered trunk must hold the call for it to count as taken (seconds).
DROP_S = 3.0
CAUSE_MAX_CHARS = 300


class AgencyDialError(Ivr112Error):
    """The agency machine was driven against its rules (a bug in the caller, not a line race)."""


class State(enum.Enum):
    IDLE = "idle"
    DIALLING = "dialling"
    ANSWERED = "answered"
    CONNECTED = "connected"
    FAILED = "failed"
    ENDED = "ended"


# Events -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Start:
    """Begin dialling (once)."""


@dataclass(frozen=True)
class TrunkRang:
    """The leg is ringing at the far end (180)."""

    leg: int


@dataclass(frozen=True)
class TrunkAnswered:
    """The leg answered (it entered Stasis) at monotonic time `at`."""

    leg: int
    at: float


@dataclass(frozen=True)
class Bridged:
    """Caller and leg are in one bridge."""

    leg: int


@dataclass(frozen=True)
class BridgeFailed:
    """The answered leg could not be bridged (it hung up at once)."""

    leg: int
    at: float
    error: str


@dataclass(frozen=True)
class OriginateFailed:
    """Asterisk refused to dial the leg."""

    leg: int
    error: str


@dataclass(frozen=True)
class TrunkGone:
    """The leg ended at monotonic time `at`; `outcome` is what the app saw of it (the
    hang-up cause and the SIP capture's codes; `rang` is filled in here)."""

    leg: int
    at: float
    outcome: trunks.LegOutcome = field(default_factory=trunks.LegOutcome)


@dataclass(frozen=True)
class TrunkSilent:
    """The leg's response_timeout ran out; `invite_answered` is what the SIP capture says
    (None: it cannot tell, so the ring timeout decides)."""

    leg: int
    invite_answered: bool | None


@dataclass(frozen=True)
class CallerHungUp:
    """The caller is gone: let the agency go."""


@dataclass(frozen=True)
class Cancelled:
    """The app gives up on this dialling (an error: the call goes to the fallback)."""

    why: str


Event = Start | TrunkRang | TrunkAnswered | Bridged | BridgeFailed | OriginateFailed | TrunkGone | TrunkSilent | CallerHungUp | Cancelled


# Actions ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Ring:
    """Play ringback to the caller."""


@dataclass(frozen=True)
class StopRinging:
    """Stop the caller's ringback."""


@dataclass(frozen=True)
class WatchLeg:
    """Start the leg's response_timeout; when it runs out, feed TrunkSilent(leg)."""

    leg: int
    seconds: float


@dataclass(frozen=True)
class UnwatchLeg:
    """Cancel the response_timeout, if one runs."""


@dataclass(frozen=True)
class Originate:
    """Dial trunk `leg` (1-based) for up to `ring_timeout` seconds; feed OriginateFailed if
    Asterisk refuses."""

    leg: int
    endpoint: str
    ring_timeout: int


@dataclass(frozen=True)
class Bridge:
    """Bridge the caller with the leg; feed Bridged or BridgeFailed."""

    leg: int


@dataclass(frozen=True)
class DestroyBridge:
    """Destroy the caller's bridge with the agency, if it exists."""


@dataclass(frozen=True)
class HangUpLeg:
    leg: int


@dataclass(frozen=True)
class HangUpCaller:
    pass


@dataclass(frozen=True)
class SetResult:
    """Write the incident's route_result (and route, when given)."""

    route_result: str
    route: str | None = None


@dataclass(frozen=True)
class Step:
    """An incident event worth keeping (trunk_dial, trunk_failed, trunk_answered...)."""

    kind: str
    detail: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class PersonAnswered:
    """A person took the call: the number needs no callback."""

    who: str


@dataclass(frozen=True)
class FailOver:
    """No trunk took the call: route the caller to `target` (the agency's on_failure);
    `urgent` says the caller must now be flagged agency_failed."""

    target: Target
    reason: str
    urgent: bool


Action = (Ring | StopRinging | WatchLeg | UnwatchLeg | Originate | Bridge | DestroyBridge | HangUpLeg | HangUpCaller | SetResult
          | Step | PersonAnswered | FailOver)


# The machine --------------------------------------------------------------------------


class AgencyDial:
    """The state of dialling one agency for one caller."""

    def __init__(self, agency: Agency, *, reason: str, endpoints: tuple[str, ...], urgent: bool = False,
                 drop_s: float = DROP_S) -> None:
        """`endpoints` are the Asterisk dial strings of the agency's trunks, in order; `urgent`
        says the agency is one of the plan's urgent_agencies."""
        if len(endpoints) != len(agency.trunks):
            raise AgencyDialError(f"agency {agency.name}: {len(endpoints)} endpoints for {len(agency.trunks)} trunks")
        self.agency = agency
        self.reason = reason
        self.endpoints = endpoints
        self.urgent = urgent
        self.drop_s = drop_s
        self.state = State.IDLE
        self.leg = 0  # the leg being dialled or bridged (0: none yet)
        self.rang = False
        self.answered_at = 0.0
        self.tried: list[str] = []

    @property
    def live(self) -> bool:
        """True until the caller is bridged for good, failed over, or released."""
        return self.state not in (State.FAILED, State.ENDED)

    @property
    def answered(self) -> bool:
        """A trunk answered and is (being) bridged with the caller."""
        return self.state in (State.ANSWERED, State.CONNECTED)

    def handle(self, event: Event) -> list[Action]:
        """Feed one event; return the actions to carry out, in order."""
        if isinstance(event, Start):
            if self.state is not State.IDLE:
                raise AgencyDialError(f"agency {self.agency.name}: Start in state {self.state.value}; it starts once")
            return self._start()
        leg = getattr(event, "leg", None)
        if leg is not None and (leg != self.leg or not self.live):
            return [HangUpLeg(leg)] if isinstance(event, TrunkAnswered) else []
        handler = TRANSITIONS.get(self.state, {}).get(type(event))
        if handler is None:
            return []  # a race on a phone line (a hang-up after the end): nothing to do
        return handler(self, event)

    # Transitions ---------------------------------------------------------------------

    def _start(self) -> list[Action]:
        target = f"agency:{self.agency.name}"
        return [SetResult("dialling", route=target), Step("route", {"target": target, "reason": self.reason}), Ring(),
                *self._next()]

    def _next(self) -> list[Action]:
        if self.leg >= len(self.agency.trunks):
            return self._failed()
        self.leg += 1
        self.state = State.DIALLING
        self.rang = False
        trunk = self.agency.trunks[self.leg - 1]
        endpoint = self.endpoints[self.leg - 1]
        self.tried.append(endpoint)
        return [Step("trunk_dial", self._detail(endpoint=endpoint)), WatchLeg(self.leg, trunk.response_timeout),
                Originate(self.leg, endpoint, trunk.ring_timeout)]

    def _failed(self) -> list[Action]:
        self.state = State.FAILED
        name = self.agency.name
        return [UnwatchLeg(), StopRinging(), SetResult(f"agency {name} unreachable"),
                Step("agency_failed", {"agency": name, "tried": ",".join(self.tried), "next": str(self.agency.on_failure)}),
                FailOver(self.agency.on_failure, f"agency {name} unreachable", self.urgent)]

    def _rang(self, event: Event) -> list[Action]:
        self.rang = True
        return [UnwatchLeg()]

    def _refused(self, event: Event) -> list[Action]:
        assert isinstance(event, OriginateFailed)
        cause = f"{trunks.REFUSED} ({event.error[:280]})"
        return [UnwatchLeg(), Step("trunk_failed", self._detail(cause=cause)), *self._next()]

    def _silent(self, event: Event) -> list[Action]:
        assert isinstance(event, TrunkSilent)
        if self.rang or event.invite_answered is not False:
            return []  # it answered the INVITE (or the capture cannot tell): its ring timeout decides
        trunk = self.agency.trunks[self.leg - 1]
        cause = trunks.trunk_failure(trunks.LegOutcome(timed_out_silent=True, captured=True))
        return [Step("trunk_failed", self._detail(cause=cause, after_s=f"{trunk.response_timeout:g}")), HangUpLeg(self.leg),
                *self._next()]

    def _not_answered(self, event: Event) -> list[Action]:
        assert isinstance(event, TrunkGone)
        cause = trunks.trunk_failure(dataclasses.replace(event.outcome, rang=self.rang))
        return [UnwatchLeg(), Step("trunk_failed", self._detail(cause=cause)), *self._next()]

    def _answered(self, event: Event) -> list[Action]:
        assert isinstance(event, TrunkAnswered)
        self.state = State.ANSWERED
        self.answered_at = event.at
        return [UnwatchLeg(), StopRinging(), Bridge(self.leg)]

    def _bridged(self, event: Event) -> list[Action]:
        self.state = State.CONNECTED
        name = self.agency.name
        return [SetResult(f"answered by {name} trunk {self.leg}"), Step("trunk_answered", self._detail()),
                PersonAnswered(f"agency {name}")]

    def _bridge_failed(self, event: Event) -> list[Action]:
        assert isinstance(event, BridgeFailed)
        return self._dropped(event.at - self.answered_at, f"gone before the bridge: {event.error}")

    def _connected_gone(self, event: Event) -> list[Action]:
        assert isinstance(event, TrunkGone)
        held = event.at - self.answered_at
        cause = event.outcome.cause_txt or str(event.outcome.cause)
        if held < self.drop_s:
            return self._dropped(held, cause)
        self.state = State.ENDED
        return [Step("agency_hangup", {"agency": self.agency.name, "cause": event.outcome.cause_txt}), UnwatchLeg(),
                HangUpLeg(self.leg), DestroyBridge(), HangUpCaller()]

    def _dropped(self, held: float, cause: str) -> list[Action]:
        """The trunk answered and hung up at once: count it failed and go on to the next.
        If the caller now hangs up before anyone else answers, route_result no longer says
        "answered by", so the number goes (back) on the callback list."""
        detail = self._detail(cause=f"answered and hung up after {held:.1f} s ({cause})"[:CAUSE_MAX_CHARS])
        return [DestroyBridge(), SetResult("dialling"), Step("trunk_failed", detail), Ring(), *self._next()]

    def _release(self, event: Event) -> list[Action]:
        state, self.state = self.state, State.ENDED
        actions: list[Action] = [UnwatchLeg()]
        if self.leg:
            actions.append(HangUpLeg(self.leg))
        if state in (State.ANSWERED, State.CONNECTED):
            actions.append(DestroyBridge())
        return actions

    def _detail(self, **extra: str) -> dict[str, str]:
        return {"agency": self.agency.name, "trunk": str(self.leg), **extra}


Transition = Callable[[AgencyDial, Event], list[Action]]

# What each event does in each state; a pair not listed is a race and is ignored.
TRANSITIONS: dict[State, dict[type, Transition]] = {
    State.DIALLING: {
        TrunkRang: AgencyDial._rang,
        TrunkSilent: AgencyDial._silent,
        OriginateFailed: AgencyDial._refused,
        TrunkGone: AgencyDial._not_answered,
        TrunkAnswered: AgencyDial._answered,
        CallerHungUp: AgencyDial._release,
        Cancelled: AgencyDial._release,
    },
    State.ANSWERED: {
        Bridged: AgencyDial._bridged,
        BridgeFailed: AgencyDial._bridge_failed,
        TrunkGone: AgencyDial._connected_gone,
        CallerHungUp: AgencyDial._release,
        Cancelled: AgencyDial._release,
    },
    State.CONNECTED: {
        TrunkGone: AgencyDial._connected_gone,
        CallerHungUp: AgencyDial._release,
        Cancelled: AgencyDial._release,
    },
}
