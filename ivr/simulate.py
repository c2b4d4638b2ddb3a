"""Walk a call through a plan without Asterisk: the real `CallFlow` is fed the events a caller
would cause (prompts finishing, keys, silence) and what it does is told in words.
`ivr112 simulate` prints `render_text`; `all_paths` lets tests walk every path of a plan.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

from ivr.errors import Ivr112Error
from ivr.menu import CallFlow
from ivr.menu_events import (
    Action,
    Digit,
    EndCall,
    Event,
    InputTimeout,
    KecamatanChosen,
    LocationGood,
    Play,
    PromptDone,
    RecordingDone,
    RecordVoice,
    Route,
    State,
    Step,
    StopPlayback,
    WaitDigits,
)
from ivr.plan import Plan, Target

# A validated plan reaches a person in a handful of events; this only stops a broken one.
MAX_EVENTS = 100
KEYS = "0123456789*#"
PRESS_RE = re.compile(r"^[0-9*#]*$")


class SimulationError(Ivr112Error):
    """The simulation could not run: a bad key or language, or a call that never reaches a person."""


@dataclass(frozen=True)
class SimStep:
    """One thing that happened on the call, in words. kind is one of: answer, refuse, play, stop,
    press, silence, menu, no_input, wrong_input, language, route, unused."""

    kind: str
    text: str

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True)
class Simulation:
    """A simulated call: what happened, and where it ended (`destination` is None when refused)."""

    dial: str
    refused: bool
    steps: tuple[SimStep, ...]
    destination: Target | None
    reason: str
    language: str
    ending: str  # the destination in words: trunks tried, and what follows when nobody answers


def simulate(plan: Plan, *, dial: str, presses: Sequence[str], language: str | None = None, located: bool = False,
             kecamatan: str = "", silent_help: bool = False, carrier: str | None = None) -> Simulation:
    """Simulate a call to `dial` in which the caller presses each group of `presses` at the next
    menu, once its prompts have finished ("12" is 1 then 2 in the same menu; "" is staying silent
    there once), then stays silent until the flow hands the call to a person. `located`: a
    precise position came with the call, so the caller is not asked where they are.
    `kecamatan`: the keys typed at the kecamatan list ("10#"; none: silence there).
    `silent_help`: at the silent-caller prompt, the caller presses the help key as asked.
    `carrier`: the call comes in through this carrier of the plan (refused when it has none).

    Returns the `Simulation`; raises `SimulationError` for a key that is not on a phone, a
    language the plan does not speak, or a plan that keeps the caller for MAX_EVENTS events."""
    for group in presses:
        if not PRESS_RE.match(group):
            raise SimulationError(f"cannot press {group!r}: a press is phone keys only (0-9, * and #), e.g. --press 1 or --press 12")
    if language is not None and language not in plan.languages:
        raise SimulationError(f"language {language!r} is not one of plan '{plan.id}' languages ({', '.join(plan.languages)}); use one of them")
    lang = language or plan.default_language
    if kecamatan and not PRESS_RE.match(kecamatan):
        raise SimulationError(f"cannot key kecamatan {kecamatan!r}: phone keys only (0-9, * and #), e.g. --kecamatan 10")
    if carrier is not None and carrier not in {c.name for c in plan.carriers}:
        names = ", ".join(c.name for c in plan.carriers) or "none"
        why = f"plan '{plan.id}' serves no carrier {carrier!r} (its carriers: {names}): Asterisk would not route the call to it"
        step = SimStep("refuse", f"call through {carrier} refused with 404 Not Found: {why}")
        return Simulation(dial, True, (step,), None, why, lang, f"nowhere: refused with 404, {why}")
    if dial not in plan.numbers:
        numbers = ", ".join(plan.numbers)
        why = f"{dial} is not one of plan '{plan.id}' numbers ({numbers})"
        step = SimStep("refuse", f"call to {dial} refused with 404 Not Found: {why}")
        return Simulation(dial, True, (step,), None, why, lang, f"nowhere: refused with 404, {why}")
    # A caller who presses nothing at all is taken as silent: they say nothing either.
    call = _Call(plan, dial, lang, located=located, talks=any(presses) or bool(kecamatan), kecamatan=kecamatan, silent_help=silent_help,
                 carrier=carrier)
    for i, group in enumerate(presses):
        call.settle()
        if call.over:
            rest = ", ".join(g or "(silence)" for g in presses[i:])
            call.steps.append(SimStep("unused", f"presses not used, the call was already handed over: {rest}"))
            break
        call.press(group)
    call.stay_silent()
    route = call.flow.route
    if route is None:  # the flow ended without routing: only a hang-up does that, and we never send one
        raise SimulationError(f"the simulated call to {dial} ended without reaching a person (flow state {call.flow.state.value})")
    return Simulation(dial, False, tuple(call.steps), route.target, route.reason, route.language, _ending(plan, route))


def render_text(sim: Simulation) -> str:
    """The simulation for a terminal: numbered steps, then a last line saying where the call ends."""
    width = len(str(len(sim.steps)))
    lines = [f"{i:>{width}}. {step.text}" for i, step in enumerate(sim.steps, 1)]
    lines.append(f"→ {sim.ending}")
    return "\n".join(lines)


def all_paths(plan: Plan, *, language: str | None = None) -> list[tuple[tuple[str, ...], Target]]:
    """Every distinct way through the menus, found by driving `CallFlow`: from each place a
    caller can wait (menu, language, attempts so far), staying silent, each option, and one
    wrong key. Returns (presses, where the call ends) pairs; presses as `simulate` takes them."""
    dial = plan.numbers[0]
    lang = language or plan.default_language
    out: list[tuple[tuple[str, ...], Target]] = []

    def run(presses: tuple[str, ...]) -> _Call:
        call = _Call(plan, dial, lang)
        for group in presses:
            call.press(group)
        call.settle()
        return call

    def silent_end(presses: tuple[str, ...]) -> Target:
        sim = simulate(plan, dial=dial, presses=presses, language=lang)
        assert sim.destination is not None
        return sim.destination

    first = run(())
    if first.over:
        return [((), silent_end(()))]
    seen = {first.position()}
    todo: deque[tuple[str, ...]] = deque([()])
    while todo:
        prefix = todo.popleft()
        if not prefix or prefix[-1] != "":  # silence after silence is the same call as prefix[:-1]
            out.append((prefix, silent_end(prefix)))
        call = run(prefix)
        menu = call.flow.menu
        assert menu is not None
        wrong = next((k for k in KEYS if not any(opt.startswith(k) for opt in menu.options)), None)
        keys = [*sorted(menu.options), *([wrong] if wrong else []), ""]
        for key in keys:
            presses = (*prefix, key)
            after = run(presses)
            if after.over:
                if key and after.flow.route is not None:
                    out.append((presses, after.flow.route.target))
                continue
            where = after.position()
            if where not in seen:
                seen.add(where)
                todo.append(presses)
            elif key:
                out.append((presses, silent_end(presses)))
    return out


class _Call:
    """One simulated call: feeds the flow the caller's events and keeps the story in words."""

    def __init__(self, plan: Plan, dial: str, language: str, *, located: bool = False, talks: bool = True, kecamatan: str = "",
                 silent_help: bool = False, carrier: str | None = None) -> None:
        self.plan = plan
        self.talks = talks
        self.dial = dial
        self.kecamatan = kecamatan
        self.silent_help = silent_help
        self.flow = CallFlow(plan, language=language)
        if located:
            self.flow.handle(LocationGood())
        through = f" through carrier {carrier}" if carrier else ""
        self.steps: list[SimStep] = [SimStep("answer", f"call to {dial}{through} answered by {plan.name} (plan {plan.id}), in {language}")]
        self.events = 0
        self.timeout = 0.0
        self._tell(self.flow.start())

    @property
    def over(self) -> bool:
        return self.flow.state in (State.ROUTED, State.ENDED)

    def position(self) -> tuple[str, str, int]:
        """Where the caller waits: menu, language, and attempts used (they decide what comes next)."""
        where = self.flow.menu.name if self.flow.menu is not None else self.flow.state.value
        return (where, self.flow.language, self.flow.attempts)

    def settle(self) -> None:
        """Let the prompts play and the recording end, until the flow waits for a key or has routed."""
        waiting = (State.GREETING, State.ASK_LOCATION, State.RECORDING, State.KECAMATAN_PROMPT, State.KECAMATAN_WAIT, State.MENU_PROMPT,
                   State.SILENT_PROMPT, State.PRANK_PROMPT)
        while self.flow.state in waiting:
            if self.silent_help and self.flow.state is State.SILENT_PROMPT:
                return  # the caller answers the prompt (stay_silent presses the help key)
            if self.flow.state is State.RECORDING:
                if self.talks:
                    self.steps.append(SimStep("speak", "the caller says where they are; the recording ends"))
                else:
                    self.steps.append(SimStep("silence", "the caller says nothing; the recording ends on silence"))
                self._feed(RecordingDone(talked=self.talks))
            elif self.flow.state is State.KECAMATAN_WAIT:
                self._key_kecamatan()
            else:
                self._feed(PromptDone())

    def press(self, group: str) -> None:
        self.settle()
        if self.over:
            return
        if not group:
            self._silence("no key")
            return
        for i, digit in enumerate(group):
            if self.over:
                self.steps.append(SimStep("unused", f"keys not used, the call was already handed over: {group[i:]}"))
                return
            self.steps.append(SimStep("press", f"caller presses {digit}"))
            self._feed(Digit(digit))
        if self.flow.state is State.MENU_WAIT and self.flow.collected:
            self._silence("no further key")

    def _key_kecamatan(self) -> None:
        """The kecamatan keys, once (the list is offered once); silence when there are none."""
        keys, self.kecamatan = self.kecamatan, ""
        for digit in keys:
            if self.flow.state is not State.KECAMATAN_WAIT:
                break
            self.steps.append(SimStep("press", f"caller keys {digit} for the kecamatan"))
            self._feed(Digit(digit))
        if self.flow.state is State.KECAMATAN_WAIT:
            self._silence("no kecamatan number" if not keys else "no further key")

    def stay_silent(self) -> None:
        while not self.over:
            self.settle()
            if self.silent_help and self.flow.state in (State.SILENT_PROMPT, State.SILENT_WAIT):
                self.silent_help = False
                for _ in range(self.plan.silent.presses):
                    if self.flow.state not in (State.SILENT_PROMPT, State.SILENT_WAIT):
                        break
                    self.steps.append(SimStep("press", f"caller presses {self.plan.silent.key} (the help key)"))
                    self._feed(Digit(self.plan.silent.key))
            elif self.flow.state in (State.MENU_WAIT, State.SILENT_WAIT, State.PRANK_WAIT):
                self._silence("no key")

    def _silence(self, what: str) -> None:
        self.steps.append(SimStep("silence", f"{what} within {self.timeout:g} s"))
        self._feed(InputTimeout())

    def _feed(self, event: Event) -> None:
        self.events += 1
        if self.events > MAX_EVENTS:
            where = f"menu '{self.flow.menu.name}'" if self.flow.menu else "the greeting"
            raise SimulationError(
                f"the simulated call to {self.dial} still has not reached a person after {MAX_EVENTS} events (now at {where}); "
                "a plan that passes `ivr112 validate` always gets there sooner: look for menus whose no_input / wrong_input "
                "rules lead round in a circle"
            )
        self._tell(self.flow.handle(event))

    def _tell(self, actions: list[Action]) -> None:
        for action in actions:
            if isinstance(action, Play):
                self.steps.append(SimStep("play", self._play(action)))
            elif isinstance(action, StopPlayback):
                self.steps.append(SimStep("stop", "the key stops the prompt"))
            elif isinstance(action, WaitDigits):
                self.timeout = action.timeout
            elif isinstance(action, RecordVoice):
                self.steps.append(
                    SimStep("record", f"beep, then records the caller for up to {action.max_seconds} s (ends on {action.silence_seconds} s of silence or #)")
                )
            elif isinstance(action, KecamatanChosen):
                self.steps.append(SimStep("kecamatan", f"keeps Kecamatan {action.name} (keyed {action.digits}) on the incident"))
            elif isinstance(action, Route):
                urgency = "" if action.priority == "normal" else f", {action.priority} priority"
                self.steps.append(SimStep("route", f"hands the call to {_name(action.target)} ({action.reason}{urgency}), in {action.language}"))
            elif isinstance(action, EndCall):
                self.steps.append(SimStep("end", f"ends the call: {action.reason}"))
            elif isinstance(action, Step):
                text = _step_text(action)
                if text:
                    self.steps.append(SimStep(action.kind, text))

    def _play(self, play: Play) -> str:
        texts = []
        for name in play.prompts:
            prompt = self.plan.prompts.get(name)
            text = prompt.text.get(play.language, f"(no {play.language} text)") if prompt else "(prompt not defined)"
            texts.append(f"«{text}»")
        return f"plays [{', '.join(play.prompts)}] in {play.language}: {' '.join(texts)}"


def _step_text(step: Step) -> str:
    d = step.detail
    if step.kind == "ask_location":
        return "no precise position came with the call: asks where the caller is"
    if step.kind == "location_skipped":
        return f"the caller presses {d.get('digit', '?')} instead of speaking"
    if step.kind == "ask_kecamatan":
        return "offers the kecamatan by number on the keypad (one pass)"
    if step.kind in ("kecamatan", "kecamatan_skipped"):
        return ""  # the KecamatanChosen action, or the next step, says it
    if step.kind == "silent":
        return "the caller has pressed nothing and said nothing: plays the silent-caller prompt"
    if step.kind == "silent_help":
        return f"the caller presses {d.get('digits', '?')}: silent, needs help"
    if step.kind == "prank_warning":
        return f"prank-flagged number: warning {d.get('attempt', '?')}"
    if step.kind == "menu":
        return f"enters menu {d.get('menu', '?')}"
    if step.kind == "no_input":
        return f"no input at menu {d.get('menu', '?')} (attempt {d.get('attempt', '?')})"
    if step.kind == "wrong_input":
        return f"wrong input {d.get('digits', '')} at menu {d.get('menu', '?')} (attempt {d.get('attempt', '?')})"
    if step.kind == "language":
        return f"switches to {d.get('language', '?')}"
    if step.kind == "choice":
        return ""  # the key pressed and the step that follows already say it
    return f"{step.kind}: {', '.join(f'{k}={v}' for k, v in d.items())}"


def _name(target: Target) -> str:
    return f"{target.kind} {target.name}".strip()


def _ending(plan: Plan, route: Route) -> str:
    target = route.target
    if target.kind == "agency" and target.name in plan.agencies:
        agency = plan.agencies[target.name]
        trunks = ", ".join(f"{t.host}:{t.port}" + (" (placeholder)" if t.placeholder else "") for t in agency.trunks) or "none"
        return f"agency {agency.name} ({agency.label}): trunks {trunks}; if none answers: {_name(agency.on_failure)}"
    text = f"{_name(target)} (reason: {route.reason})"
    queue = plan.queues.get(target.name) if target.kind == "queue" else None
    if queue is not None and queue.overflow is not None:
        text += f"; after {queue.overflow.after} s, or at once with nobody logged in: {_name(queue.overflow.to)}"
    return text
