"""The plan: what one 112 service answers, says and where it sends calls, read from YAML.

`load_plan(path)` returns a frozen `Plan` or raises `PlanError` with every problem found
(`file:line:column: what is wrong; how to fix it`), collected in one pass; `load_plans`
does the same for several plans served side by side. The model lives here, the YAML
reading in `ivr.plan_parse`, the rules that join parts together in `ivr.validate`.
The menu engine (`ivr.menu`), the simulator, the graph and the Asterisk renderer all read
the same objects.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ivr.errors import PlanError
from ivr.yamlsrc import Mark, YamlProblem, load_yaml_file

NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")
NUMBER_RE = re.compile(r"^[0-9]{2,15}$")
DIAL_RE = re.compile(r"^[0-9+*#]{1,32}$")
LANGUAGES = ("id", "en")
QUEUE_STRATEGIES = ("ringall", "leastrecent", "fewestcalls", "random", "rrmemory", "linear", "wrandom")
TARGET_KINDS = ("queue", "menu", "agency", "language", "repeat")
PERSON_KINDS = ("queue", "agency")


@dataclass(frozen=True)
class Problem:
    mark: Mark
    message: str

    def __str__(self) -> str:
        return f"{self.mark}: {self.message}"


@dataclass(frozen=True)
class Target:
    """Where a step leads: kind is one of TARGET_KINDS, name the queue/menu/agency/language."""

    kind: str
    name: str = ""
    mark: Mark | None = field(default=None, compare=False)

    def __str__(self) -> str:
        return f"{self.kind}:{self.name}" if self.name else self.kind

    @property
    def reaches_person(self) -> bool:
        return self.kind in PERSON_KINDS


@dataclass(frozen=True)
class Prompt:
    name: str
    text: dict[str, str]
    files: dict[str, str]
    mark: Mark | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Overflow:
    """Leave the queue for `to` after `after` seconds, or at once when no operator can answer."""

    after: int
    to: Target


@dataclass(frozen=True)
class Queue:
    name: str
    strategy: str = "ringall"
    ring_timeout: int = 15
    wrapup: int = 5
    announce_position: bool = False
    overflow: Overflow | None = None
    announce_every: int = 30  # seconds between position / waiting-time announcements
    mark: Mark | None = field(default=None, compare=False)


RESPONSE_TIMEOUT_S = 2.0


@dataclass(frozen=True)
class Trunk:
    """One SIP trunk of an agency, tried in the order listed."""

    host: str
    port: int
    number: str
    ring_timeout: int
    username: str = ""
    password: str = ""
    transport: str = "udp"
    placeholder: bool = False
    # Seconds the trunk has to give any answer to the INVITE (100 Trying, 180, 183 or a
    # final code); one that says nothing is dead and the next trunk is dialled at once.
    response_timeout: float = RESPONSE_TIMEOUT_S
    mark: Mark | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Agency:
    name: str
    label: str
    trunks: tuple[Trunk, ...]
    on_failure: Target
    mark: Mark | None = field(default=None, compare=False)
    # What leaves the centre with a call (docs/agencies.md): the caller's position by
    # "value" (PIDF-LO in the INVITE), by "reference" (a URL the agency reads) or "none";
    # recordings are personal data (UU 27/2022) and shared only when set.
    location: str = "value"
    share_recordings: bool = False
    # Where the incident's EIDO is POSTed at every change (ivr/agency_push.py); "" for none.
    webhook: str = ""


@dataclass(frozen=True)
class Carrier:
    """An inbound SIP trunk: calls from these addresses are served by this plan. Operators'
    callbacks to a caller go out to `callback_host:callback_port` (the carrier's SBC)."""

    name: str
    match: tuple[str, ...]
    callback_host: str = ""
    callback_port: int = 5060
    placeholder: bool = False
    mark: Mark | None = field(default=None, compare=False)  # its `match:` line, where a clash is fixed


@dataclass(frozen=True)
class Entry:
    """What every call hears first, and where it goes next."""

    greeting: tuple[str, ...]
    then: Target
    mark: Mark | None = field(default=None, compare=False)


@dataclass(frozen=True)
class LocationPolicy:
    """How the plan learns where callers are (see `location:` in the plan)."""

    boundaries: str = ""  # GeoJSON of the kecamatan, relative to the plan file or absolute
    good_radius_m: float = 1000.0  # a position at least this precise needs no question
    ask_prompt: str = ""  # asks the caller to say where they are after the tone; "" = never ask
    record_seconds: int = 20
    silence_seconds: int = 3
    aml_window_minutes: int = 60
    repeat_hours: int = 24
    dereference: bool = False  # fetch a Geolocation URI (HTTPS only)
    kecamatan_prompt: str = ""  # after the recording: "key in your kecamatan's number"; "" = no keypad menu
    kecamatan: dict[str, str] = field(default_factory=dict)  # keypad number -> kecamatan name (as in the boundaries)
    kecamatan_timeout: float = 5.0

    def boundaries_path(self, plan_source: str) -> Path | None:
        if not self.boundaries:
            return None
        p = Path(self.boundaries)
        return p if p.is_absolute() else Path(plan_source).parent / p


@dataclass(frozen=True)
class PriorityPolicy:
    """Which callers go ahead of others in the operators' queue (see `priority:`)."""

    urgent_agencies: tuple[str, ...] = ()  # chose this agency and none of its trunks answered
    redial_minutes: int = 15  # the number's last call ended before a person answered, this recently


@dataclass(frozen=True)
class OperatorsFirst:
    """A free operator before the IVR (see `operators_first:`): a caller who arrives while an
    operator of the plan's first queue is free hears the greeting only and is rung through;
    one who is in the IVR when an operator becomes free is taken out of it. `menus`: the
    menus a caller may be taken out of (None: every menu)."""

    enabled: bool = False
    menus: tuple[str, ...] | None = None

    def may_leave(self, menu: str | None) -> bool:
        return self.enabled and (menu is None or self.menus is None or menu in self.menus)


@dataclass(frozen=True)
class SilentPolicy:
    """A caller who neither speaks nor presses: asked to press `key` `presses` times if they
    need help but cannot speak (see `silent:`); "" prompt = not offered."""

    prompt: str = ""
    key: str = "5"
    presses: int = 2
    timeout: float = 8.0


@dataclass(frozen=True)
class PrankPolicy:
    """A number classified prank `count` times within `window_hours` is, for `block_hours`,
    warned first and offered `key` to reach an operator at low priority (see `prank:`)."""

    prompt: str = ""
    count: int = 3
    window_hours: int = 24
    block_hours: int = 24
    key: str = "0"
    timeout: float = 8.0


@dataclass(frozen=True)
class Menu:
    name: str
    prompts: tuple[str, ...]
    options: dict[str, Target]
    timeout: float = 5.0
    no_input_retries: int = 0
    wrong_input_retries: int = 1
    no_input: Target | None = None
    wrong_input: Target | None = None
    retry_prompts: tuple[str, ...] = ()
    mark: Mark | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Plan:
    id: str
    name: str
    source: str
    numbers: tuple[str, ...]
    languages: tuple[str, ...]
    prompts: dict[str, Prompt]
    entry: Entry
    queues: dict[str, Queue]
    menus: dict[str, Menu]
    agencies: dict[str, Agency]
    carriers: tuple[Carrier, ...]
    location: LocationPolicy = LocationPolicy()
    priority: PriorityPolicy = PriorityPolicy()
    silent: SilentPolicy = SilentPolicy()
    prank: PrankPolicy = PrankPolicy()
    operators_first: OperatorsFirst = OperatorsFirst()

    @property
    def default_language(self) -> str:
        return self.languages[0]

    @property
    def default_queue(self) -> Queue:
        """The queue the fallback dialplan uses when the app is not there: the first one."""
        return next(iter(self.queues.values()))

    def prompt_names(self) -> list[str]:
        return sorted(self.prompts)

    def asterisk_queue(self, queue: str) -> str:
        """The queue's name in Asterisk: plans side by side may both have 'operators'."""
        return f"{self.id}-{queue}"


@dataclass(frozen=True)
class PlanSet:
    """The plans served at once; the first is the default (operators' own calls, unknown ids)."""

    plans: tuple[Plan, ...]

    @property
    def default(self) -> Plan:
        return self.plans[0]

    def by_id(self, plan_id: str) -> Plan | None:
        return next((p for p in self.plans if p.id == plan_id), None)

    def route(self, carrier: str, number: str) -> Plan | None:
        """The plan a call to `number` through `carrier` reaches, as Asterisk routes it (each
        carrier's context sends a number to the plan that has both; validate keeps that one
        plan at most); None: Asterisk refuses it (404)."""
        return next((p for p in self.plans if number in p.numbers and carrier in {c.name for c in p.carriers}), None)


def parse_plan(doc: Any, source: str) -> Plan:
    """Check one parsed YAML document; raise PlanError listing every problem."""
    from ivr.plan_parse import parse
    from ivr.validate import check_plan

    plan, problems = parse(doc, source)
    if plan is not None:
        problems = problems + check_plan(plan)
    if problems or plan is None:
        raise PlanError(problems)
    return plan


def load_plan(path: Path) -> Plan:
    """Read and check one plan file; raise PlanError listing every problem."""
    try:
        doc = load_yaml_file(path)
    except YamlProblem as exc:
        raise PlanError([Problem(exc.mark, exc.message)]) from None
    return parse_plan(doc, str(path))


def load_plans(paths: Sequence[Path], *, own_sip: tuple[str, int] | None = None) -> PlanSet:
    """Read several plans to serve side by side; PlanError lists the problems of all of them.
    `own_sip` (the settings' sip_host, sip_port) refuses a trunk that would dial this very
    Asterisk: a call to the agency would come back in as a new 112 call."""
    from ivr.validate import check_own_address, check_plan_set

    problems: list[object] = []
    plans: list[Plan] = []
    for path in paths:
        try:
            plans.append(load_plan(path))
        except PlanError as exc:
            problems.extend(exc.problems)
    if not problems:
        problems.extend(check_plan_set(plans))
    if not problems and own_sip is not None:
        problems.extend(check_own_address(plans, *own_sip))
    if problems:
        raise PlanError(problems)
    if not plans:
        raise PlanError([Problem(Mark("<settings>", 1, 1), "no plan to serve: the 'plans' setting lists no file")])
    return PlanSet(tuple(plans))
