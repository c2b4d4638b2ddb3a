"""What a `CallFlow` (ivr.menu) and its controller say to each other: the states the flow
reports, the events it takes and the actions it returns. Plain frozen values, no I/O.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from ivr.plan import Target

# The prompt name that stands for the supervisor's current major-incident message.
ANNOUNCEMENT = "@announcement"


class State(enum.Enum):
    GREETING = "greeting"
    ANNOUNCEMENT = "announcement"
    ASK_LOCATION = "ask_location"
    RECORDING = "recording"
    KECAMATAN_PROMPT = "kecamatan_prompt"
    KECAMATAN_WAIT = "kecamatan_wait"
    SILENT_PROMPT = "silent_prompt"
    SILENT_WAIT = "silent_wait"
    PRANK_PROMPT = "prank_prompt"
    PRANK_WAIT = "prank_wait"
    MENU_PROMPT = "menu_prompt"
    MENU_WAIT = "menu_wait"
    ROUTED = "routed"
    ENDED = "ended"


# Events -------------------------------------------------------------------------------


@dataclass(frozen=True)
class PromptDone:
    """The prompt list last asked for finished playing (or was stopped)."""


@dataclass(frozen=True)
class Digit:
    digit: str


@dataclass(frozen=True)
class InputTimeout:
    """No digit came within the WaitDigits timeout."""


@dataclass(frozen=True)
class HungUp:
    pass


@dataclass(frozen=True)
class LocationGood:
    """A position at least as precise as the plan asks is on the incident: no need to ask."""


@dataclass(frozen=True)
class RecordingDone:
    """The caller's spoken description ended (silence, '#', time limit, or failure).
    `talked` is False when Asterisk heard no speech in it, None when unknown."""

    talked: bool | None = None


@dataclass(frozen=True)
class Spoke:
    """Asterisk heard the caller talking (TALK_DETECT)."""


@dataclass(frozen=True)
class PersonFree:
    """An operator is free for this caller now (plan `operators_first`): the caller is taken
    to them at once, or, during the greeting, as soon as it ends."""


Event = PromptDone | Digit | InputTimeout | HungUp | LocationGood | RecordingDone | Spoke | PersonFree


# Actions ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Play:
    prompts: tuple[str, ...]
    language: str
    interruptible: bool
    beep_after: bool = False  # the tone that says "speak now"


@dataclass(frozen=True)
class StopPlayback:
    pass


@dataclass(frozen=True)
class StopRecording:
    """End the caller's location recording now; what was said so far is kept."""


@dataclass(frozen=True)
class WaitDigits:
    timeout: float


@dataclass(frozen=True)
class RecordVoice:
    """Record what the caller says after a beep; ends on silence, '#', or max_seconds."""

    max_seconds: int
    silence_seconds: int


@dataclass(frozen=True)
class KecamatanChosen:
    """The caller keyed in the number of their kecamatan (from the plan's location.kecamatan)."""

    name: str
    digits: str


@dataclass(frozen=True)
class Route:
    """Hand the call to a person: target.kind is 'queue' or 'agency'."""

    target: Target
    reason: str
    language: str
    priority: str = "normal"  # "urgent", "normal" or "low": place in the operators' queue
    flags: tuple[str, ...] = ()  # facts for the incident, e.g. "silent_needs_help"


@dataclass(frozen=True)
class EndCall:
    """The system ends the call (only a prank-flagged caller who pressed no key)."""

    reason: str


@dataclass(frozen=True)
class Step:
    """A fact about the call worth keeping on the incident (menu entered, digit, choice)."""

    kind: str
    detail: dict[str, str] = field(default_factory=dict)


Action = Play | StopPlayback | StopRecording | WaitDigits | RecordVoice | KecamatanChosen | Route | EndCall | Step
