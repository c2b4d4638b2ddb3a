"""The shift simulator's output: one table with both arms side by side (per caller kind and
for the whole shift) and the ratio, the supervisor's page's figures beside the same figures
from SIPp, a CSV of every call and a PNG of the distribution of time to a person.
"""

from __future__ import annotations

import csv
import math
import statistics
from pathlib import Path
from typing import Any

from bench.answer_stats import ALL, Outcome, Summary, by_kind
from bench.shift_arm import Arm
from bench.traffic import KINDS


def outcomes(arm: Arm, *, app: bool = False) -> list[Outcome]:
    """Each call's outcome as SIPp saw it (from the INVITE), or as the app recorded it (`app`)."""
    if app:
        return [Outcome(r.call.kind, r.app_person_s, r.app_abandoned) for r in arm.results]
    return [Outcome(r.call.kind, r.person_s, r.abandoned) for r in arm.results]


def _pct(v: float) -> str:
    return "-" if math.isnan(v) else f"{v:.0f} %"


def _s(v: float) -> str:
    return "-" if math.isnan(v) else f"{v:.1f}"


def _cells(s: Summary) -> list[str]:
    return [str(s.calls), str(s.answered), _pct(s.within_15s_pct), _pct(s.within_20s_pct), _s(s.median_s), _s(s.p90_s), str(s.abandoned)]


HEAD = ["calls", "answered", "<=15 s", "<=20 s", "median s", "p90 s", "abandoned"]


def table(arms: list[Arm]) -> list[str]:
    """Per kind, each arm's figures side by side; the last column: the first arm's share
    within 15 s over the second's."""
    stats = [by_kind(outcomes(a), KINDS) for a in arms]
    names = [a.label for a in arms]
    widths = [max(len(h), 9) for h in HEAD]

    def line(cells: list[str]) -> str:
        return "  ".join(c.rjust(w) for c, w in zip(cells, widths, strict=True))

    block = len(line(HEAD))
    out = [f"{'':16}" + " | ".join(n.center(block) for n in names) + (" | <=15 s ratio" if len(arms) == 2 else "")]
    out.append(f"{'caller kind':16}" + " | ".join(line(HEAD) for _ in arms) + (" | " + "1st/2nd".rjust(13) if len(arms) == 2 else ""))
    for kind in [*KINDS, ALL]:
        row = f"{'whole shift' if kind == ALL else kind:16}" + " | ".join(line(_cells(s[kind])) for s in stats)
        if len(arms) == 2:
            a, b = stats[0][kind].within_15s_pct, stats[1][kind].within_15s_pct
            row += " | " + ("-" if math.isnan(a) or math.isnan(b) or b == 0 else f"{a / b:.2f}").rjust(13)
        out.append(row)
    return out


def _page_from_sipp(arm: Arm) -> dict[str, Any]:
    s = by_kind(outcomes(arm), KINDS)[ALL]
    calls = sum(1 for r in arm.results if r.caller is not None)

    def rnd(v: float) -> float | None:
        return None if math.isnan(v) else round(v, 1)

    return {"calls": calls, "answered": s.answered, "abandoned": s.abandoned,
            "answered_within_15s_pct": rnd(s.within_15s_pct), "answered_within_20s_pct": rnd(s.within_20s_pct)}


PAGE = ("calls", "answered", "abandoned", "answered_within_15s_pct", "answered_within_20s_pct")


def page_check(arm: Arm) -> list[str]:
    """The supervisor's page (GET /api/figures) beside the same figures from SIPp, and how
    far apart each call's time to a person is."""
    sipp = _page_from_sipp(arm)
    out = [f"  {'figure':26}{'the page':>10}{'SIPp':>10}  agree"]
    for key in PAGE:
        page = arm.figures.get(key)
        out.append(f"  {key:26}{page!s:>10}{sipp[key]!s:>10}  {'yes' if page == sipp[key] else 'NO'}")
    diffs = [r.person_s - r.app_person_s for r in arm.results if r.person_s is not None and r.app_person_s is not None]
    if diffs:
        out.append(f"  per call, SIPp (from the INVITE) minus the app (from its arrival): mean {statistics.mean(diffs):+.2f} s, "
                   f"from {min(diffs):+.2f} to {max(diffs):+.2f} s over {len(diffs)} calls")
    return out


def agrees(arm: Arm) -> bool:
    sipp = _page_from_sipp(arm)
    return all(arm.figures.get(k) == sipp[k] for k in PAGE)


def write_csv(arms: list[Arm], path: Path) -> None:
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["operators_first", "operators", "seq", "kind", "number", "arrival_s", "key", "answer_delays_ds", "talk_s",
                    "person", "person_s_sipp", "person_s_app", "abandoned", "ended_by"])
        for arm in arms:
            for r in arm.results:
                c = r.call
                w.writerow([arm.operators_first, "browser" if arm.browser else "sipp", c.seq, c.kind, c.number, f"{c.arrival_s:.1f}", c.key or "",
                            "/".join(map(str, c.answer_ds)), c.talk_s, r.person or "", _opt(r.person_s), _opt(r.app_person_s),
                            r.abandoned, r.caller.ended_by if r.caller else ""])


def _opt(v: float | None) -> str:
    return "" if v is None else f"{v:.3f}"


def draw(arms: list[Arm], path: Path, title: str) -> None:
    """Cumulative share of answered callers against time to a person, one line per arm,
    and each call as a dot per kind."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (cdf, dots) = plt.subplots(1, 2, figsize=(12, 4.8), gridspec_kw={"width_ratios": [1.2, 1]})
    for index, (arm, colour) in enumerate(zip(arms, ("tab:green", "tab:red", "tab:blue", "tab:orange"), strict=False)):
        label = arm.label
        times = sorted(r.person_s for r in arm.results if r.person_s is not None)
        if times:
            shares = [100 * (i + 1) / len(times) for i in range(len(times))]
            cdf.step(times, shares, where="post", color=colour, label=f"{label} ({len(times)} answered)")
        for row, kind in enumerate(KINDS):
            ys = [r.person_s for r in arm.results if r.call.kind == kind and r.person_s is not None]
            offset = -0.15 + 0.3 * index / max(len(arms) - 1, 1)
            dots.scatter(ys, [row + offset] * len(ys), color=colour, s=18, label=label if row == 0 else None)
    for ax in (cdf, dots):
        for limit, style in ((15, "--"), (20, ":")):
            ax.axvline(limit, color="grey", linestyle=style, linewidth=1)
        ax.set_xlabel("time to a person, s (INVITE to the operator's or agency's 200 OK)")
    cdf.axhline(90, color="grey", linewidth=0.8)
    cdf.set_ylabel("answered callers, cumulative %")
    cdf.set_ylim(0, 101)
    cdf.legend(loc="lower right")
    dots.set_yticks(range(len(KINDS)), list(KINDS))
    dots.legend(loc="lower right", fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
