"""Where a load ladder stops meeting its targets: the last step that met them, the first
that did not and why (calls failed, RTP ports exhausted, channels left behind, the app
gone, answer p99 over target). Pure: steps in, a verdict out; report.py prints it."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from bench.step import Step, pct

ANSWER_P99_MS = 50.0  # issue 7's answer target, applied at every rate of the ladder
SYSTEMS = {"A": "A (dialplan)", "B": "B (ivr112)"}


def misses(step: Step, *, answer_p99_ms: float = ANSWER_P99_MS) -> list[str]:
    """Why `step` missed the targets, worst first; [] when it met them all."""
    why: list[str] = []
    if step.rtp_refused:
        why.append(f"RTP ports exhausted ({step.rtp_refused} calls found no free port)")
    if step.failed:
        why.append(f"{step.failed} of {step.attempted} calls failed")
    if step.left_channels:
        why.append(f"{step.left_channels} channels still up after the callers were done (hung up by the bench)")
    if step.app_exited:
        why.append("the app exited")
    p99 = pct(step.answer_ms, 99)
    if math.isnan(p99):
        why.append("no call answered")
    elif p99 > answer_p99_ms:
        why.append(f"answer p99 {p99:,.0f} ms over {answer_p99_ms:g} ms")
    if step.operator_missing:
        why.append(f"{step.operator_missing} answered calls never rang an operator")
    return why


@dataclass(frozen=True)
class Knee:
    system: str
    phase: str
    last_met: Step | None  # the highest rate below the first miss (None: the first step missed)
    first_missed: Step | None  # None: every step met the targets
    why: tuple[str, ...]
    met_again: tuple[int, ...] = ()  # rates above the knee that met the targets again

    def describe(self) -> str:
        who = SYSTEMS.get(self.system, self.system)
        if self.first_missed is None:
            top = self.last_met
            assert top is not None
            return f"{who}: every step met the targets, up to {top.rate}/s ({top.peak_calls} at once): the knee is above the ladder"
        last = (f"last step that met the targets {self.last_met.rate}/s ({self.last_met.peak_calls} at once)"
                if self.last_met is not None else "no step met the targets")
        text = (f"{who}: {last}; first that did not {self.first_missed.rate}/s "
                f"({self.first_missed.peak_calls} at once): {'; '.join(self.why)}")
        if self.met_again:
            text += f" (met them again at {', '.join(f'{r}/s' for r in self.met_again)}: noise, or a recovery)"
        return text


def knee(steps: Iterable[Step], system: str, phase: str, *, answer_p99_ms: float = ANSWER_P99_MS) -> Knee | None:
    """The knee of `system`'s ladder in `phase`; None when the ladder has no such step."""
    ladder = sorted((s for s in steps if s.system == system and s.phase == phase), key=lambda s: s.rate)
    if not ladder:
        return None
    verdicts = [(s, misses(s, answer_p99_ms=answer_p99_ms)) for s in ladder]
    first = next(((s, why) for s, why in verdicts if why), None)
    if first is None:
        return Knee(system, phase, ladder[-1], None, ())
    missed, why = first
    below = [s for s in ladder if s.rate < missed.rate]
    again = tuple(s.rate for s, w in verdicts if s.rate > missed.rate and not w)
    return Knee(system, phase, below[-1] if below else None, missed, tuple(why), again)
