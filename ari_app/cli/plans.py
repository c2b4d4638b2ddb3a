"""The plans: prompts, validation, simulation, the graph, reload, the rendered Asterisk configuration."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ari_app.asterisk.layout import Layout
from ari_app.cli.common import _plans, _post_app, _secrets
from ivr import prompts
from ivr.errors import PlanError
from ivr.plan import load_plans
from ivr.settings import Settings


def cmd_prompts(args: argparse.Namespace, settings: Settings) -> int:
    plans = _plans(settings)
    if args.action == "build":
        made = prompts.build(plans.plans, settings.data_path, force=args.force)
        for pf in made:
            print(f"built {pf.plan_id}/{pf.language}/{pf.name}: {pf.path} ({prompts.duration(pf.path):.1f} s)")
        print(f"{len(made)} prompt file(s) built")
    files, problems = prompts.resolve_all(plans.plans, settings.data_path)
    for pf in files:
        kind = "built from text" if pf.built else "recorded"
        print(f"ok  {pf.plan_id}/{pf.language}/{pf.name}: {pf.path} ({kind}, {prompts.duration(pf.path):.1f} s)")
    for problem in problems:
        print(f"MISSING {problem}")
    return 1 if problems else 0


def cmd_validate(args: argparse.Namespace, settings: Settings) -> int:
    try:
        plans = _plans(settings, [Path(p) for p in args.paths])
    except PlanError as exc:
        for problem in exc.problems:
            print(problem)
        print(f"{len(exc.problems)} problem(s); nothing was changed", file=sys.stderr)
        return 1
    for plan in plans.plans:
        trunks = [t for a in plan.agencies.values() for t in a.trunks]
        placeholders = sum(1 for t in trunks if t.placeholder)
        print(
            f"{plan.source}: ok: plan '{plan.id}' ({plan.name}) answers {', '.join(plan.numbers)}; "
            f"{len(plan.menus)} menu(s), {len(plan.agencies)} agency(ies) with {len(trunks)} trunk(s), "
            f"{len(plan.queues)} queue(s), {len(plan.prompts)} prompt(s), languages {', '.join(plan.languages)}"
        )
        if placeholders:
            print(f"{plan.source}: note: {placeholders} trunk(s) still have placeholder addresses (placeholder: true)")
    return 0


def cmd_simulate(args: argparse.Namespace, settings: Settings) -> int:
    from ivr.simulate import render_text, simulate

    plans = load_plans([Path(p) for p in args.plans] or settings.plan_paths)
    if len(plans.plans) == 1:
        plan = plans.default
    elif args.carrier is None:
        carriers = sorted({c.name for p in plans.plans for c in p.carriers})
        print(f"{len(plans.plans)} plans: say which carrier the call comes through, --carrier NAME ({', '.join(carriers)})",
              file=sys.stderr)
        return 2
    else:
        # The plan Asterisk would hand the call to; none: the plan of that carrier (or the
        # default) tells why the call is refused.
        plan = plans.route(args.carrier, args.dial) or next(
            (p for p in plans.plans if args.carrier in {c.name for c in p.carriers}), plans.default)
    presses = [p.strip() for p in args.press.split(",")] if args.press else []
    sim = simulate(plan, dial=args.dial, presses=presses, language=args.lang, located=args.located, kecamatan=args.kecamatan,
                   silent_help=args.silent_help, carrier=args.carrier)
    print(render_text(sim))
    return 1 if sim.refused else 0


def cmd_graph(args: argparse.Namespace, settings: Settings) -> int:
    from ivr.graph import render as render_graph
    from ivr.plan import load_plan

    plan = load_plan(Path(args.plan))
    out = Path(args.output)
    render_graph(plan, out)
    print(f"graph of plan '{plan.id}' written to {out}")
    return 0


def cmd_reload(args: argparse.Namespace, settings: Settings) -> int:
    """Ask the running app to validate and switch to the configured plans."""
    body = _post_app(settings, "/api/reload", token=_secrets(settings).console_secret, timeout=60)
    if body is None:
        return 2
    if body.get("ok"):
        print(f"reloaded: now serving {', '.join(body.get('plans', []))}")
        return 0
    for problem in body.get("problems", []):
        print(problem)
    print(f"reload refused; still serving {', '.join(body.get('plans', []))}", file=sys.stderr)
    return 1


def cmd_render(args: argparse.Namespace, settings: Settings) -> int:
    from ari_app.asterisk.render import render, write_rendered

    paths = [Path(p) for p in args.paths] or settings.plan_paths
    plans = load_plans(paths)
    files = render(settings, _secrets(settings), plans, Layout(settings.root_path, settings.instance))
    out = Path(args.output)
    write_rendered(files, out)
    print(f"{len(files)} Asterisk config files written to {out} (they hold secrets: mode 0640)")
    return 0


def add_parsers(sub: Any) -> None:
    """The `prompts, validate, simulate, graph, reload, render` commands."""
    p = sub.add_parser("prompts", help="prompt WAV files")
    p.add_argument("action", choices=("build", "check"))
    p.add_argument("--force", action="store_true", help="rebuild every prompt made from text")
    p.set_defaults(func=cmd_prompts)

    p = sub.add_parser("validate", help="check plan files")
    p.add_argument("paths", nargs="*", help="plan files (default: the configured plan)")
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("simulate", help="walk a call through a plan without Asterisk")
    p.add_argument("plans", nargs="*", help="plan files (default: the configured plans); with several, --carrier picks the plan")
    p.add_argument("--dial", default="112", help="the number the caller dials (default 112)")
    p.add_argument("--press", default="", help="keys pressed at each menu, comma-separated: 2,1 (none: the caller stays silent)")
    p.add_argument("--lang", choices=("id", "en"), help="the language the call starts in")
    p.add_argument("--located", action="store_true", help="a precise position came with the call (no question where the caller is)")
    p.add_argument("--kecamatan", default="", metavar="KEYS", help="keys typed at the kecamatan list, e.g. 10# (none: silence there)")
    p.add_argument("--silent-help", action="store_true", help="a silent caller who presses the help key as the silent prompt asks")
    p.add_argument("--carrier", metavar="NAME", help="the carrier the call comes in through: with several plans, the plan that serves "
                   "the number through it answers; refused when none does")
    p.set_defaults(func=cmd_simulate)

    p = sub.add_parser("graph", help="draw the plan's menus and destinations (SVG, PNG or DOT)")
    p.add_argument("plan", help="the plan file")
    p.add_argument("-o", "--output", required=True, help="plan.svg, plan.png or plan.dot")
    p.set_defaults(func=cmd_graph)

    p = sub.add_parser("reload", help="have the running app validate and switch to the configured plans")
    p.set_defaults(func=cmd_reload)

    p = sub.add_parser("render", help="write the Asterisk configuration derived from the plans, to review and diff")
    p.add_argument("paths", nargs="*", help="plan files (default: the configured plans)")
    p.add_argument("-o", "--output", required=True, help="folder to write the .conf files into")
    p.set_defaults(func=cmd_render)
