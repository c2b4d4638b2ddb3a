"""`python -m bench [--quick]`: start a private stack, run every phase, print the table,
write bench/out/bench-<time>-*.csv and bench-<time>.png. See `--help`."""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench import cluster
from bench.report import draw, print_report, write_csv
from bench.run import StackStuck, close_bench, open_bench

OUT = Path(__file__).resolve().parent / "out"


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    p.add_argument("--quick", action="store_true", help="a few minutes: fewer rates, shorter steps, 1,000 calls for the leak run")
    p.add_argument("--rates", type=_ints, help="new calls/s of the IVR load ladder (default 5,10,20,30; quick 5,20)")
    p.add_argument("--seconds", type=float, help="seconds of new calls per IVR step (default 20; quick 8)")
    p.add_argument("--hold", type=float, default=10.0, help="seconds an IVR-phase caller stays (capped below greeting + menu)")
    p.add_argument("--operator-rates", type=_ints, help="new calls/s that press 0 for an operator (default 2,5,10; quick 5)")
    p.add_argument("--operator-seconds", type=float, help="seconds of new calls per operator step (default 20; quick 8)")
    p.add_argument("--operators", type=int, default=48, help="SIPp operators logged in to the queue")
    p.add_argument("--engines", type=lambda t: [x for x in t.split(",") if x],
                   help="store engines B runs on side by side (default sqlite,postgresql; '' skips that phase)")
    p.add_argument("--engine-rates", type=_ints, help="IVR and operator new calls/s of the engines phase (default 20,5)")
    p.add_argument("--engine-seconds", type=float, help="seconds of new calls per engines step (default: --seconds)")
    p.add_argument("--cluster-rates", type=_ints,
                   help="new calls/s of the cluster phase, one node then two (default 10,15,20,30; quick 20; '' skips it)")
    p.add_argument("--cluster-seconds", type=float, help="seconds of new calls per cluster step (default 15; quick 8)")
    p.add_argument("--cluster-hold", type=float, default=cluster.HOLD_S, help="seconds a cluster-phase caller stays in the IVR")
    p.add_argument("--calls", type=int, help="calls of the leak run (default 10,000; quick 1,000; 0 skips it)")
    p.add_argument("--leak-rate", type=int, default=50, help="new calls/s of the leak run")
    p.add_argument("--menus", type=int, default=500, help="menus of the synthetic plan (0 skips the plan timing)")
    p.add_argument("--out", type=Path, default=OUT, help="where the CSV files and the PNG go")
    p.add_argument("--keep", action="store_true", help="keep the stack's temporary folder (SIPp logs, app log) and the Asterisk instance folder (its log)")
    args = p.parse_args(argv)
    quick = args.quick
    args.rates = args.rates or ([5, 20] if quick else [5, 10, 20, 30])
    args.seconds = args.seconds or (8.0 if quick else 20.0)
    args.operator_rates = args.operator_rates or ([5] if quick else [2, 5, 10])
    args.operator_seconds = args.operator_seconds or (8.0 if quick else 20.0)
    args.calls = (1000 if quick else 10_000) if args.calls is None else args.calls
    args.engines = ["sqlite", "postgresql"] if args.engines is None else args.engines
    unknown = set(args.engines) - {"sqlite", "postgresql"}
    if unknown:
        p.error(f"--engines: unknown {', '.join(sorted(unknown))}; use sqlite, postgresql or both")
    args.engine_rates = args.engine_rates or [20, 5]
    if len(args.engine_rates) != 2:
        p.error("--engine-rates takes two rates: IVR,operator (e.g. 20,5)")
    args.engine_seconds = args.engine_seconds or args.seconds
    args.cluster_rates = (cluster.QUICK_RATES if quick else cluster.RATES) if args.cluster_rates is None else args.cluster_rates
    args.cluster_seconds = args.cluster_seconds or (cluster.QUICK_SECONDS if quick else cluster.SECONDS)
    return args


def noise() -> str:
    """How busy the machine is besides us: load and other Asterisk instances running."""
    load = os.getloadavg()
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True, check=False).stdout
    others = sum(1 for line in ps.splitlines() if line.startswith("asterisk -f"))
    return f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} CPUs, {others} Asterisk instance(s) running"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    args.out.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    tmp = Path(tempfile.mkdtemp(prefix="ivr112-bench-"))
    started = time.monotonic()
    before = noise()
    print(f"ivr112 bench: stack in {tmp}; before: {before}", flush=True)
    bench = open_bench(tmp, args.operators)
    try:
        print(f"stack up in {time.monotonic() - started:.0f} s; prompts: greeting {bench.prompt_s['greeting']:.2f} s, "
              f"menu {bench.prompt_s['menu']:.2f} s", flush=True)
        phases: list[tuple[str, Callable[[], None]]] = [
            ("IVR ladder", lambda: bench.ivr_ladder(args.rates, args.seconds, args.hold)),
            ("operator ladder", lambda: bench.operator_ladder(args.operator_rates, args.operator_seconds)),
        ]
        if args.engines:
            ivr_rate, operator_rate = args.engine_rates
            phases.append(("store engines",
                           lambda: bench.engines(ivr_rate, operator_rate, args.engine_seconds, args.hold, args.engines)))
        if args.cluster_rates:
            phases.append(("cluster", lambda: bench.cluster(args.cluster_rates, args.cluster_seconds, args.cluster_hold)))
        if args.menus:
            phases.append(("500-menu plan", lambda: bench.plan_reload(args.menus)))
        if args.calls:
            phases.append(("leak run", lambda: bench.leak_run(args.calls, args.leak_rate, chunks=5)))
        for name, phase in phases:
            try:
                phase()
            except StackStuck as exc:  # past the stack's capacity: say so, go on with the next phase
                bench.stopped.append(f"{name}: {exc}")
                print(f"  {name} stopped: {exc}", flush=True)
    finally:
        after = noise()
        close_bench(bench, keep=args.keep)
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    print_report(bench, f"before: {before}; after: {after}")
    paths = write_csv(bench, args.out, stamp)
    png = args.out / f"bench-{stamp}.png"
    try:
        draw(bench, png)
        paths.append(png)
    except ModuleNotFoundError as exc:  # the figures are printed and in the CSV already: never lose them to a plot
        print(f"\nno PNG: {exc.name} is missing (`make bench` installs it with the bench extra: pip install -e '.[bench]')")
    print(f"\nwritten: {', '.join(str(p) for p in paths)} ({time.monotonic() - started:.0f} s in all)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
