"""A shift's callers, drawn from a seed: who calls (the mix of DOMAIN.md's Indonesian
figures), when (a Poisson process), and what the people who answer them will do (an
operator's or agency's answer delay, the talk time). Pure: no SIPp, no clock.

Each call's draws travel in its caller number, so the SIPp operators and agency trunks,
which see only the INVITE, answer and talk exactly as drawn here, the same in both arms.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

# Rates (calls per hour). Jakarta 2024: 637,292 calls for about 10.7 million people,
# scaled to Kotim's ~440,000: 26,206 calls a year, 3.0 an hour on average. The busy hour
# carries three times the mean; a flood hour (a disaster, a viral prank) five times.
JAKARTA_CALLS_PER_YEAR = 637_292
JAKARTA_PEOPLE = 10_700_000
KOTIM_PEOPLE = 440_000
HOURS_PER_YEAR = 365 * 24
KOTIM_MEAN_PER_HOUR = JAKARTA_CALLS_PER_YEAR / JAKARTA_PEOPLE * KOTIM_PEOPLE / HOURS_PER_YEAR
PEAK_FACTOR = 3.0
FLOOD_FACTOR = 5.0
RATES = {"peak": KOTIM_MEAN_PER_HOUR * PEAK_FACTOR, "flood": KOTIM_MEAN_PER_HOUR * FLOOD_FACTOR}

# Who calls, as shares of all calls. Prank and ghost (silent, nobody there) are about a
# third (Semarang 38.6 %; Jakarta's prank 23 %). Jakarta drops 58 % mid-call: we take a
# bit over half of that as callers who hang up in the greeting, the rest being the ghost
# calls and the pranksters who hang up once they hear a person. The callers who want help
# (Jakarta: 17.4 % non-emergency, 1 % emergency) either stay silent and wait, press 0, or
# press an agency's key.
GREETING_HANGUP = "greeting_hangup"
PRANK = "prank"
GHOST = "ghost"
SILENT = "silent"
OPERATOR_KEY = "press_0"
AGENCY_KEY = "agency_key"
MIX: dict[str, float] = {
    GREETING_HANGUP: 0.30,
    PRANK: 0.18,
    GHOST: 0.15,
    SILENT: 0.17,
    OPERATOR_KEY: 0.10,
    AGENCY_KEY: 0.10,
}
KINDS = tuple(MIX)
# Which agency a caller with a key asks for (the menu's keys): police, fire, health, SAR, disaster.
AGENCY_KEYS: dict[str, float] = {"1": 0.40, "2": 0.20, "3": 0.30, "4": 0.05, "5": 0.05}

# What the caller does, in ms after the call is answered (the greeting is 4.3 s long).
HANGUP_MS = (1000, 3500)  # hangs up during the greeting
KEY_MS = (1000, 3500)  # a key pressed during the greeting (callers who know the menu)
# What the person who answers does: answers after a human delay, talks, hangs up.
ANSWER_DS = (30, 80)  # tenths of a second, 3-8 s
TALK_S: dict[str, tuple[int, int]] = {
    PRANK: (3, 10),  # laughs or hangs up as soon as a person speaks
    GHOST: (10, 30),  # the operator says hello into the silence, then hangs up
    SILENT: (60, 240),
    OPERATOR_KEY: (60, 240),
    AGENCY_KEY: (60, 240),
}
OPERATORS = 2  # answer delays drawn per call: one per operator (they ring together)

NUMBER_PREFIX = "0812"


@dataclass(frozen=True)
class Call:
    """One caller of the shift and what each side will do."""

    seq: int
    kind: str
    arrival_s: float  # from the start of the shift
    key: str | None = None
    key_ms: int = 0  # when the key is pressed, after the answer
    hangup_ms: int = 0  # greeting hang-ups: when the caller hangs up, after the answer
    answer_ds: tuple[int, ...] = (ANSWER_DS[0],) * OPERATORS  # each operator's delay (agency: the first)
    talk_s: int = 0

    @property
    def number(self) -> str:
        """The caller number, carrying the draws: 0812 + kind + each answer delay (ds) +
        talk time (s) + sequence, e.g. 0812 2 45 71 007 03."""
        delays = "".join(f"{d:02d}" for d in self.answer_ds)
        return f"{NUMBER_PREFIX}{KINDS.index(self.kind)}{delays}{self.talk_s:03d}{self.seq % 100:02d}"


def parse_number(number: str) -> tuple[str, tuple[int, ...], int]:
    """Kind, answer delays (ds) and talk time (s) from a caller number made by `Call.number`."""
    if not number.startswith(NUMBER_PREFIX) or len(number) != len(NUMBER_PREFIX) + 1 + 2 * OPERATORS + 5:
        raise ValueError(f"{number!r} is not a shift caller number (0812 + kind + {OPERATORS} delays + talk + seq)")
    body = number[len(NUMBER_PREFIX):]
    delays = tuple(int(body[1 + 2 * i: 3 + 2 * i]) for i in range(OPERATORS))
    talk = int(body[1 + 2 * OPERATORS: 4 + 2 * OPERATORS])
    return KINDS[int(body[0])], delays, talk


def arrivals(rng: random.Random, per_hour: float, minutes: float) -> list[float]:
    """Arrival times (s) of a Poisson process at `per_hour` over `minutes`: exponential gaps."""
    if per_hour <= 0:
        raise ValueError(f"the rate must be above 0 calls an hour, not {per_hour}")
    out: list[float] = []
    t = rng.expovariate(per_hour / 3600)
    while t < minutes * 60:
        out.append(t)
        t += rng.expovariate(per_hour / 3600)
    return out


def draw_call(rng: random.Random, seq: int, arrival_s: float) -> Call:
    """One caller: a kind from MIX, then what that kind and the people answering will do."""
    kind = rng.choices(KINDS, weights=[MIX[k] for k in KINDS])[0]
    answer = tuple(rng.randint(*ANSWER_DS) for _ in range(OPERATORS))
    if kind == GREETING_HANGUP:
        return Call(seq, kind, arrival_s, hangup_ms=rng.randint(*HANGUP_MS), answer_ds=answer)
    key: str | None = None
    if kind == OPERATOR_KEY:
        key = "0"
    elif kind == AGENCY_KEY:
        key = rng.choices(list(AGENCY_KEYS), weights=list(AGENCY_KEYS.values()))[0]
    return Call(seq, kind, arrival_s, key=key, key_ms=rng.randint(*KEY_MS) if key else 0,
                answer_ds=answer, talk_s=rng.randint(*TALK_S[kind]))


def shift(*, seed: int, per_hour: float, minutes: float = 60.0, calls: int | None = None) -> list[Call]:
    """The shift's callers in arrival order. With `calls`, exactly that many: the Poisson
    process runs on past `minutes` until there are enough (or stops early)."""
    rng = random.Random(seed)
    times = arrivals(rng, per_hour, minutes)
    if calls is not None:
        while len(times) < calls:
            times.append((times[-1] if times else 0.0) + rng.expovariate(per_hour / 3600))
        times = times[:calls]
    return [draw_call(rng, i + 1, t) for i, t in enumerate(times)]
