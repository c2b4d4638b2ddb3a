"""Time to a person, summed up: per caller kind and for the whole shift, the share of
callers a person answered within 15 s and 20 s, the median and p90 time to a person, and
the calls abandoned. Pure.

The shares use the supervisor's page's denominator (ivr/figures.py): calls a person
answered. A caller who hung up before any person answered is abandoned and counted apart;
a caller nobody answered and who never hung up (the run ended first) is neither.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

WITHIN_S = (15.0, 20.0)  # NENA-STA-020.1-2020: 90 % within 15 s, 95 % within 20 s
ALL = "all"


@dataclass(frozen=True)
class Outcome:
    """One call as the simulator saw it: seconds from the INVITE to the first person's
    200 OK (None: no person answered), and whether the caller ended it unanswered."""

    kind: str
    person_s: float | None
    abandoned: bool = False


@dataclass(frozen=True)
class Summary:
    calls: int
    answered: int
    within_15s: int
    within_20s: int
    abandoned: int
    median_s: float
    p90_s: float

    def share(self, part: int) -> float:
        """Percent of answered calls (nan with none answered)."""
        return 100.0 * part / self.answered if self.answered else math.nan

    @property
    def within_15s_pct(self) -> float:
        return self.share(self.within_15s)

    @property
    def within_20s_pct(self) -> float:
        return self.share(self.within_20s)


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100) by linear interpolation between order statistics
    (numpy's default, Excel's PERCENTILE.INC); nan for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100.0
    low = math.floor(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def summarize(outcomes: list[Outcome]) -> Summary:
    """The figures of these calls."""
    times = [o.person_s for o in outcomes if o.person_s is not None]
    return Summary(
        calls=len(outcomes),
        answered=len(times),
        within_15s=sum(t <= WITHIN_S[0] for t in times),
        within_20s=sum(t <= WITHIN_S[1] for t in times),
        abandoned=sum(o.abandoned and o.person_s is None for o in outcomes),
        median_s=percentile(times, 50),
        p90_s=percentile(times, 90),
    )


def by_kind(outcomes: list[Outcome], kinds: tuple[str, ...]) -> dict[str, Summary]:
    """A summary per kind (in `kinds`' order, every kind present even with no call) and `ALL`."""
    out = {k: summarize([o for o in outcomes if o.kind == k]) for k in kinds}
    out[ALL] = summarize(outcomes)
    return out
