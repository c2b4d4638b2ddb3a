"""`python -m bench.shift`: a shift of Kotim's 112 traffic against the real stack, run with
operators_first on and off at once (one stack each, the same callers), to show the time
from a caller's INVITE to a person's answer. See `--help` and README, "A person within
15 s: make shift".

The callers (bench/traffic.py): Poisson arrivals at a chosen rate (default Kotim's peak
hour, 9.0 calls), a mix after DOMAIN.md's Indonesian figures, each a SIPp of its own.
The people: two SIPp operators logged in to Kotim's ring-all queue, answering after
3-8 s each, talking 3 s to 4 min by kind, and a SIPp on every agency trunk. An arm
written `on:browser` has its two operators in Chromium pages instead, answering with the
console's browser phone in the same way (bench/shift_browser.py), e.g. `--arms
on,on:browser` to compare them on the same callers.

Time is compressed only where it cannot change the outcome: when no call is in progress
and the operators are out of their wrap-up, the next caller arrives at once instead of
waiting out the Poisson gap (bench/shift_arm.py says why that is safe). Everything a
caller lives through (the IVR, the ringing, the answer delays, the talk) runs in real
time. The table reports the compression factor (shift time over wall time).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench.answer_stats import ALL, WITHIN_S, by_kind
from bench.shift_arm import Arm, close_arm, open_arm
from bench.shift_report import agrees, draw, outcomes, page_check, table, write_csv
from bench.traffic import KINDS, MIX, RATES, Call, shift

OUT = Path(__file__).resolve().parent / "out"
GUARD_S = 420  # a caller nobody hangs up on leaves after this (longer than the queue's 120 s overflow + 240 s talk)
TARGET_PCT = 90.0


def _rate(text: str) -> float:
    return RATES[text] if text in RATES else float(text)


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.shift", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rate", type=_rate, default=RATES["peak"],
                   help=f"calls an hour, or 'peak' ({RATES['peak']:.1f}, the default) or 'flood' ({RATES['flood']:.1f})")
    p.add_argument("--minutes", type=float, default=60.0, help="length of the shift (default 60)")
    p.add_argument("--calls", type=int, help="exactly this many callers (the shift runs on past --minutes if needed)")
    p.add_argument("--seed", type=int, default=112, help="the shift's random seed (callers, kinds, delays, talk times)")
    p.add_argument("--arms", default="on,off",
                   help="operators_first values to run side by side (default on,off); on:browser or off:browser: "
                        "the operators answer in Chromium pages (the console's browser phone)")
    p.add_argument("--out", type=Path, default=OUT, help="where the CSV and the PNG go")
    p.add_argument("--keep", action="store_true", help="keep the stacks' folders (SIPp logs, app and Asterisk logs)")
    args = p.parse_args(argv)
    args.arms = [_arm(a.strip()) for a in args.arms.split(",") if a.strip()]
    return args


def _arm(text: str) -> tuple[bool, bool]:
    """(operators_first, browser operators) of an --arms item: on, off, on:browser, off:browser."""
    first, _, phones = text.partition(":")
    if first not in ("on", "off") or phones not in ("", "browser", "sipp"):
        raise SystemExit(f"--arms: {text!r} is not on, off, on:browser or off:browser")
    return first == "on", phones == "browser"


def _run_arm(arm: Arm, calls: list[Call], errors: list[BaseException]) -> None:
    try:
        arm.run(calls, guard_ms=GUARD_S * 1000)
        arm.collect()
    except BaseException as exc:  # reported by the main thread
        errors.append(exc)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    args.out.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    calls = shift(seed=args.seed, per_hour=args.rate, minutes=args.minutes, calls=args.calls)
    kinds = ", ".join(f"{sum(c.kind == k for c in calls)} {k}" for k in KINDS)
    print(f"ivr112 shift: {len(calls)} callers over {calls[-1].arrival_s / 60 if calls else 0:.0f} min at {args.rate:.1f}/h "
          f"(seed {args.seed}): {kinds}", flush=True)
    tmp = Path(tempfile.mkdtemp(prefix="ivr112-shift-"))
    started = time.monotonic()
    load0 = os.getloadavg()
    arms: list[Arm] = []
    errors: list[BaseException] = []
    try:
        for index, (on, browser) in enumerate(args.arms):
            name = ("on" if on else "off") + ("browser" if browser else "")
            arms.append(open_arm(tmp / name, name, operators_first=on, index=index, person_timeout=4 * 3600, browser=browser))
        print(f"stacks up in {time.monotonic() - started:.0f} s; running the shift on each", flush=True)
        threads = [threading.Thread(target=_run_arm, args=(arm, calls, errors), name=f"arm-{arm.name}") for arm in arms]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        for arm in arms:
            close_arm(arm, keep=args.keep)
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    if errors:
        raise errors[0]
    load1 = os.getloadavg()
    print()
    print(f"Time to a person: {len(calls)} callers, {args.rate:.1f}/h, seed {args.seed}; 2 operators (SIPp, or Chromium "
          "pages for the browser arms) answering after 3-8 s, "
          f"Kotim's plan (ring-all queue, {arms[0].wrapup_s:.0f} s wrap-up)")
    for line in table(arms):
        print(line)
    print()
    for arm in arms:
        whole = by_kind(outcomes(arm), KINDS)[ALL]
        met = "met" if whole.within_15s_pct >= TARGET_PCT else "MISSED"
        print(f"{arm.label}: {whole.within_15s_pct:.0f} % of answered callers reached a "
              f"person within {WITHIN_S[0]:.0f} s (target {TARGET_PCT:.0f} %: {met}); shift {arm.sim_s / 60:.1f} min in "
              f"{arm.wall_s / 60:.1f} min of wall time (compression x{arm.sim_s / max(arm.wall_s, 1e-9):.1f})")
        print(f" the supervisor's page for the shift (GET /api/figures) {'agrees' if agrees(arm) else 'DISAGREES'} with SIPp:")
        for line in page_check(arm):
            print(line)
    print(f"\nmix: {', '.join(f'{k} {v:.0%}' for k, v in MIX.items())}; load average {load0[0]:.2f} before, {load1[0]:.2f} after, "
          f"on {os.cpu_count()} CPUs")
    csv_path = args.out / f"shift-{stamp}.csv"
    png = args.out / f"shift-{stamp}.png"
    write_csv(arms, csv_path)
    draw(arms, png, f"Kotim 112, a shift of {len(calls)} callers at {args.rate:.1f}/h, 2 operators (seed {args.seed})")
    print(f"written: {csv_path}, {png} ({time.monotonic() - started:.0f} s in all)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
