"""The benchmark's output: the table (A, B, B/A per figure, each target met or missed), the
knee of each ladder, the store engines side by side, CSV files of every step, the leak run
and the plan timings, and a PNG of latency against load.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from bench.cluster import write_csv as write_cluster_csv
from bench.cluster_figures import table as cluster_table
from bench.knee import ANSWER_P99_MS, SYSTEMS, knee
from bench.run import GC_WINDOW_S, Bench
from bench.step import Step, pct

ANSWER_P99_RATIO = 1.2
ANSWER_RATE_LIMIT = 20
OWN_DELAY_P99_MS = 300.0
CONCURRENCY_SHARE = 0.9
CONCURRENCY_AIM = 300
KB_PER_CALL = 100.0
LEAK_TOLERANCE_KB = 2048  # RSS wobble of a Python process after a quiet window
PLAN_MS = 200.0
CPU_PER_IVR_CALL_MS = 10.0  # issue 15: the app's CPU per IVR call, on either store engine


def _fmt(value: float, digits: int = 1) -> str:
    if isinstance(value, float) and math.isnan(value):
        return "-"
    return f"{value:,.{digits}f}" if isinstance(value, float) else f"{value:,}"


def _ratio(b: float, a: float) -> str:
    if a == 0 or math.isnan(a) or math.isnan(b):
        return "-"
    return f"{b / a:.2f}"


@dataclass(frozen=True)
class Figure:
    name: str
    get: Callable[[Step], float]
    digits: int = 1


FIGURES = [
    Figure("calls attempted", lambda s: float(s.attempted), 0),
    Figure("answered", lambda s: float(s.answered), 0),
    Figure("failed", lambda s: float(s.failed), 0),
    Figure("peak calls at once", lambda s: float(s.peak_calls), 0),
    Figure("INVITE->200 p50 ms", lambda s: pct(s.answer_ms, 50)),
    Figure("INVITE->200 p95 ms", lambda s: pct(s.answer_ms, 95)),
    Figure("INVITE->200 p99 ms", lambda s: pct(s.answer_ms, 99)),
    Figure("own delay to operator p50 ms", lambda s: pct(s.delay_ms, 50) if s.phase == "operator" else math.nan),
    Figure("own delay to operator p95 ms", lambda s: pct(s.delay_ms, 95) if s.phase == "operator" else math.nan),
    Figure("own delay to operator p99 ms", lambda s: pct(s.delay_ms, 99) if s.phase == "operator" else math.nan),
    Figure("calls that never rang an operator", lambda s: float(s.operator_missing) if s.phase == "operator" else math.nan, 0),
    Figure("Asterisk CPU ms per call", lambda s: 1000 * s.asterisk_cpu_s / max(1, s.attempted), 2),
    Figure("app CPU ms per call", lambda s: 1000 * s.app_cpu_s / max(1, s.attempted) if s.system == "B" else math.nan, 2),
    Figure("of it, store thread ms per call", lambda s: 1000 * s.store_cpu_s / max(1, s.attempted) if s.system == "B" else math.nan, 2),
    Figure("store's share of app CPU %", lambda s: 100 * s.store_share if s.system == "B" else math.nan, 0),
    Figure("total CPU ms per call", lambda s: 1000 * (s.asterisk_cpu_s + s.app_cpu_s) / max(1, s.attempted), 2),
    Figure("app peak RSS MB", lambda s: s.app_rss_peak_kb / 1024 if s.system == "B" else math.nan),
    Figure("app RSS kB per active call", lambda s: s.app_kb_per_active_call),
    Figure("Asterisk peak RSS MB", lambda s: s.asterisk_rss_peak_kb / 1024),
    Figure("noise: CPUs busy, others' share %", lambda s: 100 * s.others_busy, 0),
    Figure("RTP ports refused", lambda s: float(s.rtp_refused) if s.rtp_refused else math.nan, 0),
    Figure("channels left behind", lambda s: float(s.left_channels) if s.left_channels else math.nan, 0),
]


def _pairs(steps: Iterable[Step], phase: str) -> list[tuple[int, Step | None, Step | None]]:
    by: dict[int, dict[str, Step]] = {}
    for s in steps:
        if s.phase == phase:
            by.setdefault(s.rate, {})[s.system] = s
    return [(rate, d.get("A"), d.get("B")) for rate, d in sorted(by.items())]


def _hold(bench: Bench, phase: str) -> float:
    return max((s.hold_s for s in bench.steps if s.phase == phase), default=0.0)


def table(bench: Bench) -> list[str]:
    out: list[str] = []
    titles = {
        "ivr": f"IVR load: callers stay {_hold(bench, 'ivr'):g} s in greeting and menu, then hang up",
        "operator": "To an operator: the caller presses 0 during the greeting, an operator answers",
    }
    for phase, title in titles.items():
        pairs = _pairs(bench.steps, phase)
        if not pairs:
            continue
        out.append(f"\n== {title} ==")
        out.append(f"{'rate':>6}  {'figure':36} {'A (dialplan)':>13} {'B (ivr112)':>13} {'B/A':>6}")
        for rate, a, b in pairs:
            for i, fig in enumerate(FIGURES):
                va = fig.get(a) if a else math.nan
                vb = fig.get(b) if b else math.nan
                if math.isnan(va) and math.isnan(vb):
                    continue
                label = f"{rate}/s" if i == 0 else ""
                out.append(f"{label:>6}  {fig.name:36} {_fmt(va, fig.digits):>13} {_fmt(vb, fig.digits):>13} {_ratio(vb, va):>6}")
            out.append("")
    return out


def knees(bench: Bench) -> list[str]:
    """Where each ladder stopped meeting the targets (issue 15: saturation, not a crash)."""
    out = [f"\n== Knee: the last step that met the targets (0 failed, answer p99 < {ANSWER_P99_MS:g} ms) =="]
    for phase, title in (("ivr", "IVR ladder"), ("operator", "operator ladder")):
        for system in SYSTEMS:
            found = knee(bench.steps, system, phase)
            if found is not None:
                out.append(f"  {title}, {found.describe()}")
    out += [f"  STOPPED: {why}" for why in bench.stopped]
    return out


ENGINE_FIGURES = [
    Figure("failed", lambda s: float(s.failed), 0),
    Figure("answer p99 ms", lambda s: pct(s.answer_ms, 99)),
    Figure("own delay to operator p99 ms", lambda s: pct(s.delay_ms, 99) if s.phase == "operator" else math.nan),
    Figure("calls that never rang an operator", lambda s: float(s.operator_missing) if s.phase == "operator" else math.nan, 0),
    Figure("app CPU ms per call", lambda s: 1000 * s.app_cpu_s / max(1, s.attempted) if s.system == "B" else math.nan, 2),
    Figure("store thread CPU ms per call", lambda s: 1000 * s.store_cpu_s / max(1, s.attempted) if s.system == "B" else math.nan, 2),
    Figure("store's share of app CPU %", lambda s: 100 * s.store_share if s.system == "B" else math.nan, 0),
    Figure("total CPU ms per call", lambda s: 1000 * (s.asterisk_cpu_s + s.app_cpu_s) / max(1, s.attempted), 2),
    Figure("noise: others' share of CPUs %", lambda s: 100 * s.others_busy, 0),
]


_SHORT = {"postgresql": "pg"}


def engines_table(steps: list[Step]) -> list[str]:
    """The store engines side by side: A, then B on each engine, with each B figure's ratio
    to A (same run) and the last engine's ratio to the first."""
    if not steps:
        return []
    names = list(dict.fromkeys(s.store for s in steps if s.system == "B"))
    out = ["\n== Store engines, one run: B on " + " and on ".join(names) + " beside A (x: B/A of the same run) =="]
    out.append(f"{'step':>14}  {'figure':30} {'A (dialplan)':>13}" + "".join(f" {'B ' + n:>18}" for n in names)
               + (f" {_SHORT.get(names[-1], names[-1]) + '/' + _SHORT.get(names[0], names[0]):>9}" if len(names) > 1 else ""))
    for phase in ("ivr", "operator"):
        a = next((s for s in steps if s.phase == phase and s.system == "A"), None)
        bs = {s.store: s for s in steps if s.phase == phase and s.system == "B"}
        if a is None and not bs:
            continue
        rate = (a or next(iter(bs.values()))).rate
        for i, fig in enumerate(ENGINE_FIGURES):
            va = fig.get(a) if a else math.nan
            vb = [fig.get(bs[n]) if n in bs else math.nan for n in names]
            if math.isnan(va) and all(math.isnan(v) for v in vb):
                continue
            label = f"{phase} {rate}/s" if i == 0 else ""
            cells = "".join(f" {_fmt(v, fig.digits) + (f' ({_ratio(v, va)}x)' if _ratio(v, va) != '-' else ''):>18}" for v in vb)
            last = f" {_ratio(vb[-1], vb[0]):>9}" if len(names) > 1 else ""
            out.append(f"{label:>14}  {fig.name:30} {_fmt(va, fig.digits):>13}{cells}{last}")
        out.append("")
    return out


def _held(steps: list[Step], system: str) -> int:
    """The most calls at once a system held in a step where no call failed."""
    return max((s.peak_calls for s in steps if s.system == system and s.failed == 0 and s.phase == "ivr"), default=0)


def targets(bench: Bench) -> list[tuple[str, str, bool | None]]:
    """Each target of issue 7: what it asks, what was measured, met (None: not measured)."""
    rows: list[tuple[str, str, bool | None]] = []
    low: list[tuple[int, Step, Step]] = [(r, a, b) for ph in ("ivr", "operator") for r, a, b in _pairs(bench.steps, ph)
                                         if r <= ANSWER_RATE_LIMIT and a is not None and b is not None]
    if low:
        worst = max(low, key=lambda t: pct(t[2].answer_ms, 99) / max(1e-9, pct(t[1].answer_ms, 99)))
        a99, b99 = pct(worst[1].answer_ms, 99), pct(worst[2].answer_ms, 99)
        rows.append((f"answer p99 B <= {ANSWER_P99_RATIO}x A (rates <= {ANSWER_RATE_LIMIT}/s, worst step)",
                     f"{b99:.1f} vs {a99:.1f} ms = {b99 / a99:.2f}x at {worst[2].phase} {worst[0]}/s",
                     b99 <= ANSWER_P99_RATIO * a99))
        top = max(pct(b.answer_ms, 99) for _, _, b in low)
        rows.append((f"answer p99 B < {ANSWER_P99_MS:g} ms up to {ANSWER_RATE_LIMIT}/s", f"worst {top:.1f} ms", top < ANSWER_P99_MS))
    ops = [s for s in bench.steps if s.system == "B" and s.phase == "operator"]
    if ops:
        worst_delay = max(pct(s.delay_ms, 99) for s in ops)
        missing = sum(s.operator_missing for s in ops)
        rows.append((f"own delay to the operator's ring p99 < {OWN_DELAY_P99_MS:g} ms",
                     f"worst {worst_delay:.0f} ms (A: {max(pct(s.delay_ms, 99) for s in bench.steps if s.system == 'A' and s.phase == 'operator'):.0f} ms)"
                     + (f", {missing} calls never rang" if missing else ""),
                     worst_delay < OWN_DELAY_P99_MS and missing == 0))
    held_a, held_b = _held(bench.steps, "A"), _held(bench.steps, "B")
    if held_a:
        ladder_top = max(s.peak_calls for s in bench.steps if s.phase == "ivr")
        rows.append((f"B holds >= {CONCURRENCY_SHARE:.0%} of A's calls at once, no failure (aim {CONCURRENCY_AIM})",
                     f"B {held_b}, A {held_a} = {held_b / held_a:.2f}" + (" (A held the ladder's top)" if held_a >= ladder_top else ""),
                     held_b >= CONCURRENCY_SHARE * held_a))
    mem = [s for s in bench.steps if s.system == "B" and s.phase == "ivr" and s.failed == 0 and s.peak_calls]
    if mem:
        top_step = max(mem, key=lambda s: s.peak_calls)
        kb = top_step.app_kb_per_active_call
        rows.append((f"app memory < {KB_PER_CALL:g} kB per active call", f"{kb:.1f} kB at {top_step.peak_calls} at once", kb < KB_PER_CALL))
    if len(bench.leak) >= 2:
        (c0, r0), (c1, r1) = bench.leak[0], bench.leak[-1]
        cm, rm = bench.leak[len(bench.leak) // 2]
        growth = r1 - r0
        rows.append((f"no growth after {c1:,} calls (RSS after a {GC_WINDOW_S:g} s quiet window)",
                     f"{r0 / 1024:.1f} MB after {c0:,} -> {r1 / 1024:.1f} MB after {c1:,}: {growth:+,} kB "
                     f"({1024 * growth / max(1, c1 - c0):+.0f} B/call; second half {1024 * (r1 - rm) / max(1, c1 - cm):+.0f} B/call)",
                     growth <= LEAK_TOLERANCE_KB))
    rows += cpu_targets(bench.engine_steps)
    pt = bench.plan_times
    if pt is not None:
        pv, rl = pt.median(pt.parse_validate_ms), pt.median(pt.reload_ms)
        rows.append((f"{pt.menus}-menu plan: parse + validate < {PLAN_MS:g} ms", f"median {pv:.0f} ms, max {max(pt.parse_validate_ms):.0f} ms", pv < PLAN_MS))
        rows.append((f"{pt.menus}-menu plan: live reload < {PLAN_MS:g} ms",
                     f"median {rl:.0f} ms, max {max(pt.reload_ms):.0f} ms (Kotim's own plan: {pt.median(pt.reload_small_ms):.0f} ms)", rl < PLAN_MS))
    return rows


def cpu_targets(steps: list[Step]) -> list[tuple[str, str, bool]]:
    """Issue 15: the app's CPU per IVR call on each store engine (the engines phase), with
    its ratio to the target and the store thread's part."""
    rows = []
    for step in steps:
        if step.system != "B" or step.phase != "ivr" or not step.attempted:
            continue
        ms = 1000 * step.app_cpu_s / step.attempted
        store = 1000 * step.store_cpu_s / step.attempted
        rows.append((f"app CPU <= {CPU_PER_IVR_CALL_MS:g} ms per IVR call on {step.store} (issue 15)",
                     f"{ms:.1f} ms = {ms / CPU_PER_IVR_CALL_MS:.2f}x the target at {step.rate}/s (store thread {store:.1f} ms, "
                     f"event loop and the rest {ms - store:.1f} ms; others took {100 * step.others_busy:.0f} % of the CPUs)",
                     ms <= CPU_PER_IVR_CALL_MS))
    return rows


def print_report(bench: Bench, noise: str) -> None:
    for line in [*table(bench), *engines_table(bench.engine_steps), *cluster_table(bench.cluster_steps, bench.cluster_note),
                 *knees(bench)]:
        print(line)
    print("== Targets (issues 7 and 15) ==")
    for what, measured, met in targets(bench):
        verdict = "n/a" if met is None else ("MET" if met else "MISSED")
        print(f"  [{verdict:6}] {what}: {measured}")
    if bench.leak:
        print("  leak run, app RSS after each chunk: " + ", ".join(f"{c:,}: {r / 1024:.1f} MB" for c, r in bench.leak))
    print(f"  noise: {noise}")


def write_csv(bench: Bench, out: Path, stamp: str) -> list[Path]:
    paths = []
    steps = out / f"bench-{stamp}-steps.csv"
    with steps.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["section", "system", "store", "phase", "rate", "hold_s", *[fig.name for fig in FIGURES], "load_avg_1m"])
        for section, group in (("ladder", bench.steps), ("engines", bench.engine_steps)):
            for s in group:
                w.writerow([section, s.system, s.store, s.phase, s.rate, s.hold_s,
                            *[_fmt(fig.get(s), 3).replace(",", "") for fig in FIGURES], f"{s.load_avg:.2f}"])
    paths.append(steps)
    if bench.cluster_steps:
        paths.append(write_cluster_csv(bench.cluster_steps, out / f"bench-{stamp}-cluster.csv"))
    if bench.leak:
        leak = out / f"bench-{stamp}-leak.csv"
        with leak.open("w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["calls", "app_rss_kb"])
            w.writerows(bench.leak)
        paths.append(leak)
    if bench.plan_times is not None:
        pt = bench.plan_times
        plan = out / f"bench-{stamp}-plan.csv"
        with plan.open("w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["menus", "options", "what", "ms"])
            w.writerows([(pt.menus, pt.options, "parse_validate", f"{v:.2f}") for v in pt.parse_validate_ms])
            w.writerows([(pt.menus, pt.options, "reload", f"{v:.2f}") for v in pt.reload_ms])
            w.writerows([("kotim", "", "reload", f"{v:.2f}") for v in pt.reload_small_ms])
        paths.append(plan)
    return paths


def draw(bench: Bench, path: Path) -> None:
    """Latency against load (answer, and own delay to the operator), A beside B; the leak run."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(16, 4.8))
    styles = {"A": ("tab:blue", "A plain dialplan"), "B": ("tab:red", "B ivr112")}
    for ax, phase, get, title in (
        (axes[0], "ivr", lambda s: s.answer_ms, "INVITE -> 200 OK (callers in the IVR)"),
        (axes[1], "operator", lambda s: s.delay_ms, "own delay to the operator's INVITE"),
    ):
        for system, (colour, label) in styles.items():
            pts = sorted((s.rate, s) for s in bench.steps if s.phase == phase and s.system == system)
            if not pts:
                continue
            rates = [r for r, _ in pts]
            for q, dash in ((50, ":"), (95, "--"), (99, "-")):
                ax.plot(rates, [pct(get(s), q) for _, s in pts], dash, color=colour, marker="o", label=f"{label} p{q}")  # type: ignore[no-untyped-call]
        ax.set_xlabel("new calls per second")
        ax.set_ylabel("ms (log scale)")
        ax.set_yscale("log")  # a noisy step's seconds would flatten everything else
        ax.set_title(title)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    if phase_steps := [s for s in bench.steps if s.phase == "ivr"]:
        ax2 = axes[0].twiny()
        ax2.set_xlim(axes[0].get_xlim())
        ax2.set_xticks(sorted({s.rate for s in phase_steps}))
        ax2.set_xticklabels([str(max(x.peak_calls for x in phase_steps if x.rate == r)) for r in sorted({s.rate for s in phase_steps})])
        ax2.set_xlabel("calls at once (peak)", fontsize=8)
    if bench.leak:
        axes[2].plot([c for c, _ in bench.leak], [r / 1024 for _, r in bench.leak], "-o", color="tab:red")
        axes[2].set_xlabel("calls through the app")
        axes[2].set_ylabel("app RSS MB (after a quiet window)")
        axes[2].set_title("leak run (B)")
        axes[2].grid(alpha=0.3)
    else:
        axes[2].axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
