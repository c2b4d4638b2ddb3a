"""The call flow of one caller through a plan: events in, actions out, no I/O.

Theory of operation
-------------------
A `CallFlow` starts in GREETING and plays the plan's greeting. When a prompt list
finishes, or a digit ends it early (barge-in), the flow moves along the plan:

    GREETING    --PromptDone-->            ANNOUNCEMENT when a major-incident message is on (any key or
                                           its end goes on as below); then
                --PromptDone-->            go(entry.then), or ASK_LOCATION when the plan asks
                                           and no good position is known (LocationGood)
    ASK_LOCATION --PromptDone-->           RECORDING, RecordVoice
    ASK_LOCATION --Digit-->                StopPlayback, enter menu silently with that digit
    RECORDING   --RecordingDone-->         go(entry.then), or KECAMATAN when the plan has a kecamatan menu
    KECAMATAN_PROMPT --Digit-->            StopPlayback, KECAMATAN_WAIT, collect
    KECAMATAN_PROMPT --PromptDone-->       KECAMATAN_WAIT, WaitDigits(kecamatan_timeout)
    KECAMATAN_WAIT --Digit-->              collect; '#' or a number no longer one starts with ends it
    KECAMATAN_WAIT --InputTimeout-->       a known number: KecamatanChosen; then go(entry.then)
    GREETING    --Digit (menu next)-->     StopPlayback, enter menu silently with that digit
    MENU_PROMPT --Digit-->                 StopPlayback, collect digit
    MENU_PROMPT --PromptDone-->            MENU_WAIT, WaitDigits(timeout)
    MENU_WAIT   --Digit-->                 collect digit
    MENU_WAIT   --InputTimeout-->          no input (or an unfinished entry: wrong input)
    any         --HungUp-->                ENDED

Silent callers (plan `silent:`): a caller who has pressed nothing and was not heard
speaking, when the menu gives up on no input (or the location recording heard no words),
hears the silent prompt: `key` pressed `presses` times routes urgent and flagged "silent,
needs help"; nothing at all still reaches the same person (never a hang-up).

Operators first (plan `operators_first:`): PersonFree says an operator is free for this
caller. During the greeting it is noted and the greeting ends first; in any other IVR
state (announcement, location question, recording, kecamatan, a menu the plan lets go,
the silent prompt) the flow stops what plays or records and routes to the plan's first
queue at once. A caller halfway through keying an option, or a prank-flagged number being
warned, is not taken; a noted PersonFree still takes the caller at the next menu entry.

Prank-flagged numbers (the controller knows from the store): the call starts with the
plan's prank warning; `key` reaches the operators at low priority; no key after two
warnings ends the call (EndCall). Every such call is recorded like any other.
    go(queue|agency)                       ROUTED, Route(target)   (the flow's last action)

A collected string that is an option goes there; one that is the start of a longer
option waits for more; anything else is wrong input. No input and wrong input replay
the menu `no_input_retries` / `wrong_input_retries` times, then follow the menu's
no_input / wrong_input rule, which the validator guarantees ends at a person. Events that arrive in a state that cannot use
them (a late PromptDone after a barge-in, a digit after routing) are ignored: on a
real phone line such races are normal, not errors.
"""

from __future__ import annotations

from collections.abc import Callable

from ivr import menu_events as ev
from ivr.menu_events import State
from ivr.menu_silent_prank import entry_no_input, prank_event, prank_warning, silent_event, silent_prompt
from ivr.plan import Menu, Plan, Target

# States a free operator never takes a caller out of.
_NOT_FOR_A_PERSON = frozenset({State.PRANK_PROMPT, State.PRANK_WAIT, State.ROUTED, State.ENDED})


class CallFlow:
    def __init__(self, plan: Plan, *, language: str | None = None, prank: bool = False, announcement: bool = False) -> None:
        self.plan = plan
        self.announcement = announcement  # a supervisor's major-incident message is on
        self.prank = prank and bool(plan.prank.prompt)
        self.pressed = False  # any key, ever: a caller who pressed is not silent
        self.spoke = False
        self.silent_target: Target | None = None
        self.language = language or plan.default_language
        self.state = State.GREETING
        self.menu: Menu | None = None
        self.attempts = 0
        self.collected = ""
        self.route: ev.Route | None = None
        self.location_good = False
        self.person_free = False  # an operator is free for this caller (operators_first)

    # The flow's whole life is: start(), then handle() for each event until ROUTED/ENDED.

    def start(self) -> list[ev.Action]:
        if self.prank:
            return prank_warning(self, first=True)
        self.state = State.GREETING
        greeting = self.plan.entry.greeting
        if not greeting:
            return self.go(self.plan.entry.then, "entry")
        return [ev.Play(greeting, self.language, interruptible=self.plan.entry.then.kind == "menu")]

    def handle(self, event: ev.Event) -> list[ev.Action]:
        if isinstance(event, ev.HungUp):
            self.state = State.ENDED
            return []
        if isinstance(event, ev.LocationGood):
            self.location_good = True
            return []
        if isinstance(event, ev.Spoke):
            self.spoke = True
            return []
        if isinstance(event, ev.PersonFree):
            return self._person_free()
        if isinstance(event, ev.Digit):
            self.pressed = True
        in_state = _IN_STATE.get(self.state)
        return in_state(self, event) if in_state is not None else []  # ROUTED, ENDED: nothing more to do

    # Each state's handling of the events that move a caller on (the table _IN_STATE below) --

    def _in_greeting(self, event: ev.Event) -> list[ev.Action]:
        if isinstance(event, ev.PromptDone):
            if self.announcement and not self.person_free:
                self.state = State.ANNOUNCEMENT
                return [ev.Step("announcement", {}), ev.Play((ev.ANNOUNCEMENT,), self.language, interruptible=True)]
            return self._after_greeting()
        if isinstance(event, ev.Digit) and self.plan.entry.then.kind == "menu":
            return [ev.StopPlayback(), *self._entry_with(event.digit)]
        return []

    def _in_announcement(self, event: ev.Event) -> list[ev.Action]:
        # Any key ("I am calling about something else") or the message's end: go on.
        if isinstance(event, ev.Digit):
            return [ev.StopPlayback(), ev.Step("announcement_skipped", {"digit": event.digit}), *self._after_greeting()]
        if isinstance(event, ev.PromptDone):
            return self._after_greeting()
        return []

    def _in_ask_location(self, event: ev.Event) -> list[ev.Action]:
        if isinstance(event, ev.PromptDone):
            self.state = State.RECORDING
            policy = self.plan.location
            return [ev.RecordVoice(policy.record_seconds, policy.silence_seconds)]
        if isinstance(event, ev.Digit):
            # A key means the caller would rather use the menu: no recording.
            return [ev.StopPlayback(), ev.Step("location_skipped", {"digit": event.digit}), *self._entry_with(event.digit)]
        return []

    def _in_recording(self, event: ev.Event) -> list[ev.Action]:
        if not isinstance(event, ev.RecordingDone):
            return []
        if event.talked is False and not self.pressed and self.plan.silent.prompt:
            return silent_prompt(self, entry_no_input(self))
        return self._after_recording()

    def _in_kecamatan_prompt(self, event: ev.Event) -> list[ev.Action]:
        if isinstance(event, ev.Digit):
            self.state = State.KECAMATAN_WAIT
            return [ev.StopPlayback(), *self._kecamatan_digit(event.digit)]
        if isinstance(event, ev.PromptDone):
            self.state = State.KECAMATAN_WAIT
            return [ev.WaitDigits(self.plan.location.kecamatan_timeout)]
        return []

    def _in_kecamatan_wait(self, event: ev.Event) -> list[ev.Action]:
        if isinstance(event, ev.Digit):
            return self._kecamatan_digit(event.digit)
        if isinstance(event, ev.InputTimeout):
            return self._kecamatan_done()
        return []

    def _in_menu_prompt(self, event: ev.Event) -> list[ev.Action]:
        if isinstance(event, ev.Digit):
            self.state = State.MENU_WAIT
            return [ev.StopPlayback()] + self._collect(event.digit)
        if isinstance(event, ev.PromptDone):
            self.state = State.MENU_WAIT
            assert self.menu is not None
            return [ev.WaitDigits(self.menu.timeout)]
        return []

    def _in_menu_wait(self, event: ev.Event) -> list[ev.Action]:
        if isinstance(event, ev.Digit):
            return self._collect(event.digit)
        if isinstance(event, ev.InputTimeout):
            if self.collected:
                return self._wrong()
            return self._no_input()
        return []

    # Internals -------------------------------------------------------------------------

    def _after_greeting(self) -> list[ev.Action]:
        """Ask where the caller is when no good enough position is known yet."""
        if self.person_free:
            return self.to_person()
        if self.plan.location.ask_prompt and not self.location_good:
            self.state = State.ASK_LOCATION
            return [ev.Step("ask_location", {}), ev.Play((self.plan.location.ask_prompt,), self.language, interruptible=True, beep_after=True)]
        return self.go(self.plan.entry.then, "entry")

    def _after_recording(self) -> list[ev.Action]:
        """Offer the kecamatan by keypad once, when the plan has one; then on to the menu."""
        policy = self.plan.location
        if policy.kecamatan_prompt and policy.kecamatan:
            self.state = State.KECAMATAN_PROMPT
            self.collected = ""
            return [ev.Step("ask_kecamatan", {}), ev.Play((policy.kecamatan_prompt,), self.language, interruptible=True)]
        return self.go(self.plan.entry.then, "entry")

    def _kecamatan_digit(self, digit: str) -> list[ev.Action]:
        if digit == "#":
            return self._kecamatan_done()
        self.collected += digit
        if any(number.startswith(self.collected) and number != self.collected for number in self.plan.location.kecamatan):
            return [ev.WaitDigits(self.plan.location.kecamatan_timeout)]
        return self._kecamatan_done()

    def _kecamatan_done(self) -> list[ev.Action]:
        """One pass only: a known number is kept, anything else is noted, and the call goes on."""
        digits, self.collected = self.collected, ""
        name = self.plan.location.kecamatan.get(digits)
        if name is not None:
            steps: list[ev.Action] = [ev.Step("kecamatan", {"digits": digits, "kecamatan": name}), ev.KecamatanChosen(name, digits)]
        else:
            steps = [ev.Step("kecamatan_skipped", {"digits": digits})]
        return steps + self.go(self.plan.entry.then, "entry")

    def _entry_with(self, digit: str) -> list[ev.Action]:
        """A caller who knows the menu need not hear it: the digit counts at once."""
        if self.plan.entry.then.kind != "menu":
            return self.go(self.plan.entry.then, "entry")
        menu = self.plan.menus[self.plan.entry.then.name]
        return self._enter(menu, replay=False, play=False) + self._collect(digit)

    def _enter(self, menu: Menu, *, replay: bool, play: bool = True) -> list[ev.Action]:
        self.menu = menu
        self.collected = ""
        steps: list[ev.Action] = []
        if not replay:
            self.attempts = 0
            steps.append(ev.Step("menu", {"menu": menu.name}))
        if not play:
            self.state = State.MENU_WAIT
            return steps
        if self.person_free and self.plan.operators_first.may_leave(menu.name):
            return steps + self.to_person()
        self.state = State.MENU_PROMPT
        prompts = (menu.retry_prompts if replay else ()) + menu.prompts
        return steps + [ev.Play(prompts, self.language, interruptible=True)]

    def _collect(self, digit: str) -> list[ev.Action]:
        assert self.menu is not None
        self.collected += digit
        options = self.menu.options
        if self.collected in options:
            choice = self.collected
            return [ev.Step("choice", {"menu": self.menu.name, "digits": choice})] + self.go(options[choice], f"pressed {choice}")
        if any(opt.startswith(self.collected) for opt in options):
            return [ev.WaitDigits(self.menu.timeout)]
        return self._wrong()

    def _no_input(self) -> list[ev.Action]:
        assert self.menu is not None
        self.attempts += 1
        step = ev.Step("no_input", {"menu": self.menu.name, "attempt": str(self.attempts)})
        if self.attempts > self.menu.no_input_retries and self.menu.no_input is not None:
            if self.plan.silent.prompt and not self.pressed and not self.spoke:
                return [step] + silent_prompt(self, self.menu.no_input)
            return [step] + self.go(self.menu.no_input, "no input")
        return [step] + self._enter(self.menu, replay=True)

    def _wrong(self) -> list[ev.Action]:
        assert self.menu is not None
        self.attempts += 1
        step = ev.Step("wrong_input", {"menu": self.menu.name, "digits": self.collected, "attempt": str(self.attempts)})
        if self.attempts > self.menu.wrong_input_retries and self.menu.wrong_input is not None:
            return [step] + self.go(self.menu.wrong_input, "wrong input")
        return [step] + self._enter(self.menu, replay=True)

    # Operators first (silent callers and prank-flagged numbers: ivr.menu_silent_prank) ----

    @property
    def may_take_person(self) -> bool:
        """Whether a free operator may take this caller out of the IVR now: not a prank-flagged
        number being warned, not a caller halfway through keying an option, not a menu the
        plan keeps (operators_first.menus), and not one already promised a person."""
        policy = self.plan.operators_first
        if not policy.enabled or self.person_free or self.state in _NOT_FOR_A_PERSON:
            return False
        if self.state in (State.MENU_PROMPT, State.MENU_WAIT):
            return not self.collected and policy.may_leave(self.menu.name if self.menu else None)
        return True

    def _person_free(self) -> list[ev.Action]:
        if not self.may_take_person:
            return []
        self.person_free = True
        if self.state is State.GREETING:
            return [ev.Step("operator_free", {"state": self.state.value})]  # the greeting ends first
        stop: list[ev.Action] = []
        if self.state in (State.ANNOUNCEMENT, State.ASK_LOCATION, State.KECAMATAN_PROMPT, State.MENU_PROMPT, State.SILENT_PROMPT):
            stop.append(ev.StopPlayback())
        elif self.state is State.RECORDING:
            stop.append(ev.StopRecording())
        flags = ("silent",) if self.state in (State.SILENT_PROMPT, State.SILENT_WAIT) and not self.pressed else ()
        return [*stop, ev.Step("operator_free", {"state": self.state.value}), *self.to_person(flags=flags)]

    def to_person(self, *, flags: tuple[str, ...] = ()) -> list[ev.Action]:
        """Route to the plan's first queue: an operator is free for this caller."""
        return self.go(Target("queue", self.plan.default_queue.name), "an operator is free", flags=flags)

    def go(self, target: Target, reason: str, *, priority: str = "normal", flags: tuple[str, ...] = ()) -> list[ev.Action]:
        """Follow `target`: route to a person (ROUTED), enter a menu, switch language or repeat."""
        if target.kind in ("queue", "agency"):
            self.state = State.ROUTED
            self.route = ev.Route(target, reason, self.language, priority, flags)
            return [self.route]
        if target.kind == "menu":
            return self._enter(self.plan.menus[target.name], replay=False)
        if target.kind == "language":
            self.language = target.name
            step = ev.Step("language", {"language": target.name})
            menu = self.menu or self.plan.menus.get(self.plan.entry.then.name)
            if menu is None:
                return [step] + self.go(self.plan.entry.then, reason)
            return [step] + self._enter(menu, replay=False)
        # repeat: the current menu again, without counting it as an attempt
        assert self.menu is not None
        return self._enter(self.menu, replay=False)


# Which method takes an event in each state (HungUp, LocationGood, Spoke and PersonFree are
# taken in every state by CallFlow.handle itself); a state not listed ignores the event.
_IN_STATE: dict[State, Callable[[CallFlow, ev.Event], list[ev.Action]]] = {
    State.GREETING: CallFlow._in_greeting,
    State.ANNOUNCEMENT: CallFlow._in_announcement,
    State.ASK_LOCATION: CallFlow._in_ask_location,
    State.RECORDING: CallFlow._in_recording,
    State.KECAMATAN_PROMPT: CallFlow._in_kecamatan_prompt,
    State.KECAMATAN_WAIT: CallFlow._in_kecamatan_wait,
    State.SILENT_PROMPT: silent_event,
    State.SILENT_WAIT: silent_event,
    State.PRANK_PROMPT: prank_event,
    State.PRANK_WAIT: prank_event,
    State.MENU_PROMPT: CallFlow._in_menu_prompt,
    State.MENU_WAIT: CallFlow._in_menu_wait,
}
