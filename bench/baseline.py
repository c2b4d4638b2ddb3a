"""System A of the benchmark: the same IVR as plain Asterisk dialplan, no app.

Answer, the greeting and the main menu (a key during the greeting counts at once, as in
the app), then the same operators' queue the app uses. The call is recorded with
MixMonitor as the real plan context does, so A and B differ only by the app. Written into
the instance folder as extensions_bench.conf, which extensions.conf `#tryinclude`s; the
baseline's number is added to the carrier's context there, so callers reach it exactly as
they reach 112.
"""

from __future__ import annotations

import os
import shutil

from ari_app.asterisk.layout import Layout
from ari_app.asterisk.render import AGENCY_CONTEXT, QUEUE_CONTEXT, agency_exten, call_recording_name, carrier_context
from ivr.plan import Plan, Target

BASELINE_CONTEXT = "ivr112-bench-baseline"
MENU_CONTEXT = "ivr112-bench-menu"
BASELINE_FILE = "extensions_bench.conf"


def _goto(plan: Plan, target: Target) -> str:
    if target.kind == "agency":
        return f"Goto({AGENCY_CONTEXT},{agency_exten(plan, target.name)},1)"
    name = target.name if target.kind == "queue" else plan.default_queue.name
    return f"Goto({QUEUE_CONTEXT},{plan.asterisk_queue(name)},1)"


def render_baseline(plan: Plan, layout: Layout, number: str) -> str:
    """The dialplan of system A for `plan`'s greeting and entry menu, reached by `number`."""
    menu = plan.menus[plan.entry.then.name]
    lang = plan.default_language
    prompts = "&".join(layout.sound(plan.id, lang, p) for p in (*plan.entry.greeting, *menu.prompts))
    person = menu.no_input or Target("queue", plan.default_queue.name)
    lines = [
        "; Written by `python -m bench` (issue 7): the IVR as plain dialplan, system A.",
        f"[{BASELINE_CONTEXT}]",
        f"exten => _X.,1,Set(CHANNEL(language)={lang})",
        f" same => n,Set(__IVR112_PLAN={plan.id})",
        f" same => n,MixMonitor({layout.recordings}/{call_recording_name('${UNIQUEID}')}.wav)",
        " same => n,Answer()",
        f" same => n,Goto({MENU_CONTEXT},s,1)",
        "",
        # Its own context: each key is a whole extension, so a key is acted on at once.
        f"[{MENU_CONTEXT}]",
        f"exten => s,1,Background({prompts})",
        f" same => n,WaitExten({menu.timeout:g})",
    ]
    for key, target in sorted(menu.options.items()):
        if target.kind == "language":
            lines.append(f"exten => {key},1,Set(CHANNEL(language)={target.name})")
            lines.append(" same => n,Goto(s,1)")
        elif target.kind in ("queue", "agency"):
            lines.append(f"exten => {key},1,{_goto(plan, target)}")
    lines.append(f"exten => t,1,{_goto(plan, person)}")
    lines.append(f"exten => i,1,{_goto(plan, menu.wrong_input or person)}")
    lines.append("")
    for carrier in plan.carriers:
        lines.append(f"[{carrier_context(carrier.name)}](+)")
        lines.append(f"exten => {number},1,Goto({BASELINE_CONTEXT},{number},1)")
    return "\n".join(lines) + "\n"


def install_baseline(plan: Plan, layout: Layout, number: str) -> None:
    """Write the baseline beside the rendered extensions.conf, with its owner and mode."""
    etc = layout.host(layout.etc)
    path = etc / BASELINE_FILE
    path.write_text(render_baseline(plan, layout, number), encoding="utf-8")
    ref = etc / "extensions.conf"
    shutil.copymode(ref, path)
    st = ref.stat()
    if os.geteuid() == 0:
        os.chown(path, st.st_uid, st.st_gid)
