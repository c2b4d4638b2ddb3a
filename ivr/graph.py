"""Draw a plan as a Graphviz graph: the greeting, every step a caller can meet before the
menu (a prank warning, operators first, the location question, the kecamatan list, the
silent-caller prompt), each menu with what it says, the keys that lead on, and the agencies
and queues where calls end, with their overflow and on_failure. `to_dot` is pure; `render` runs
Debian's `dot` to make the SVG or PNG engineers review before a reload.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from ivr.errors import Ivr112Error
from ivr.plan import Menu, Plan, Target

# dot lays out a plan of a few dozen nodes in well under a second; a minute means it hangs.
DOT_TIMEOUT = 60.0
MENU_TEXT_CHARS = 60
FORMATS = {".svg": "svg", ".png": "png"}


class GraphError(Ivr112Error):
    """The graph could not be drawn: Graphviz missing or failing, or an output we cannot write."""


def quote(text: str) -> str:
    """`text` as a DOT double-quoted string: quotes and backslashes escaped, lines as `\\n`."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    lines = escaped.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return '"' + "\\n".join(lines) + '"'


def to_dot(plan: Plan) -> str:
    """The plan as a Graphviz digraph (UTF-8 text): entry, menus, agencies, queues and every way between them."""
    out = [
        f"digraph {quote(plan.id)} {{",
        f'  graph [charset="UTF-8", rankdir=LR, labelloc=t, fontname=Helvetica, label={quote(_title(plan))}];',
        "  node [fontname=Helvetica, fontsize=11];",
        "  edge [fontname=Helvetica, fontsize=10];",
    ]
    greeting = plan.entry.greeting
    entry_label = [f"call to {', '.join(plan.numbers)}"]
    if greeting:
        entry_label += [f"[{', '.join(greeting)}]", _excerpt(plan, greeting)]
    else:
        entry_label.append("(no greeting)")
    out.append(_node("entry", entry_label, shape="oval"))
    out += _before_the_menu(plan)

    for menu in plan.menus.values():
        out.append(_node(_id(Target("menu", menu.name)), _menu_label(plan, menu), shape="box", style="rounded"))
        for digit in sorted(menu.options):
            out.append(_option_edge(menu, digit, menu.options[digit]))
        if menu.no_input is not None:
            out.append(_edge(_id(Target("menu", menu.name)), menu.no_input, _after("no input", menu.no_input_retries), style="dashed"))
        if menu.wrong_input is not None:
            out.append(_edge(_id(Target("menu", menu.name)), menu.wrong_input, _after("wrong input", menu.wrong_input_retries), style="dashed"))

    for agency in plan.agencies.values():
        label = [f"agency {agency.name}", agency.label]
        label += [f"trunk {t.host}:{t.port} → {t.number}" + (" (placeholder)" if t.placeholder else "") for t in agency.trunks]
        placeholder = any(t.placeholder for t in agency.trunks)
        style = "filled,dashed" if placeholder else "filled"
        out.append(_node(_id(Target("agency", agency.name)), label, shape="box", style=style, fillcolor="#ffe8cc"))
        out.append(_edge(_id(Target("agency", agency.name)), agency.on_failure, "no trunk answers", style="dashed"))

    for queue in plan.queues.values():
        label = [f"queue {queue.name}", f"{queue.strategy}, rings {queue.ring_timeout} s"]
        out.append(_node(_id(Target("queue", queue.name)), label, shape="box", style="filled", fillcolor="#d8ecff"))
        if queue.overflow is not None:
            overflow = f"after {queue.overflow.after} s / nobody logged in"
            out.append(_edge(_id(Target("queue", queue.name)), queue.overflow.to, overflow, style="dashed"))
    out.append("}")
    return "\n".join(out) + "\n"


def _before_the_menu(plan: Plan) -> list[str]:
    """Every step between the greeting and the first menu a caller can meet: a prank-flagged
    number's warning, operators first, the question where the caller is (with its recording
    and the kecamatan list), and the silent-caller prompt."""
    out: list[str] = []
    then = plan.entry.then
    first = "entry"
    if plan.prank.prompt:
        p = plan.prank
        out.append(_node("prank", ["prank-flagged number", f"[{p.prompt}]", _excerpt(plan, (p.prompt,)),
                                   f"{p.key}: low priority; no key twice: call ends"], shape="box", style="filled", fillcolor="#f4f4f4"))
        out.append(_line("entry", "prank", f"classified prank {p.count}x in {p.window_hours} h", style="dotted"))
        out.append(_edge("prank", Target("queue", plan.default_queue.name), f"{p.key} (low priority)", style="dotted"))
    if plan.operators_first.enabled:
        out.append(_line("entry", _id(Target("queue", plan.default_queue.name)), "an operator is free: after the greeting",
                         color="#2a7a2a", fontcolor="#2a7a2a"))
    loc = plan.location
    if loc.ask_prompt:
        out.append(_node("ask_location", ["no precise position yet", f"[{loc.ask_prompt}]", _excerpt(plan, (loc.ask_prompt,)),
                                          f"records up to {loc.record_seconds} s"], shape="box", style="rounded,filled", fillcolor="#eef7ee"))
        out.append(_line(first, "ask_location", "after the greeting"))
        first = "ask_location"
        if loc.kecamatan_prompt and loc.kecamatan:
            out.append(_node("kecamatan", ["kecamatan by keypad (once)", f"[{loc.kecamatan_prompt}]",
                                           f"{len(loc.kecamatan)} kecamatan, {loc.kecamatan_timeout:g} s per key"],
                             shape="box", style="rounded,filled", fillcolor="#eef7ee"))
            out.append(_line("ask_location", "kecamatan", "after the recording"))
            first = "kecamatan"
    out.append(_edge(first, then, "" if first == "entry" else "then"))
    if plan.silent.prompt:
        sp = plan.silent
        out.append(_node("silent", ["silent caller (no key, no voice)", f"[{sp.prompt}]", _excerpt(plan, (sp.prompt,)),
                                    f"{sp.key} x{sp.presses}: urgent, needs help"], shape="box", style="rounded,filled", fillcolor="#fff4cc"))
        if then.kind == "menu" and then.name in plan.menus and plan.menus[then.name].no_input is not None:
            out.append(_line(_id(then), "silent", "nothing pressed or said", style="dashed"))
            out.append(_edge("silent", plan.menus[then.name].no_input or then, "help key, or nothing", style="dashed"))
    return out


def render(plan: Plan, out: Path) -> None:
    """Write the plan's graph to `out`: .svg or .png drawn by Graphviz `dot`, .dot as the graph text.

    Raises `GraphError` saying what to do when the suffix is unknown, the folder is missing,
    `dot` is not installed, or `dot` fails."""
    suffix = out.suffix.lower()
    if suffix != ".dot" and suffix not in FORMATS:
        raise GraphError(f"cannot draw plan '{plan.id}' into '{out}': the file name must end in .svg, .png or .dot, found {suffix or 'no suffix'}")
    if not out.parent.is_dir():
        raise GraphError(f"cannot write '{out}': the folder '{out.parent}' does not exist; create it or choose another output file")
    text = to_dot(plan)
    if suffix == ".dot":
        try:
            out.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise GraphError(f"cannot write '{out}': {exc.strerror or exc}") from None
        return
    dot = shutil.which("dot")
    if dot is None:
        raise GraphError(
            f"cannot draw '{out}': Graphviz's 'dot' command is not installed (not found on PATH); "
            "apt-get install graphviz or make deps, or write the graph text with a .dot file name"
        )
    try:
        done = subprocess.run(
            [dot, f"-T{FORMATS[suffix]}", "-o", str(out)],
            input=text.encode("utf-8"),
            capture_output=True,
            timeout=DOT_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise GraphError(f"{dot} did not finish drawing '{out}' within {DOT_TIMEOUT:g} s; write a .dot file and run dot by hand to see why") from None
    except OSError as exc:
        raise GraphError(f"cannot run {dot}: {exc.strerror or exc}; reinstall it with apt-get install graphviz") from None
    if done.returncode != 0:
        detail = done.stderr.decode("utf-8", "replace").strip() or "no message"
        raise GraphError(f"{dot} failed drawing '{out}' (exit status {done.returncode}): {detail}")


def _title(plan: Plan) -> str:
    return f"{plan.name} ({plan.id}), languages {', '.join(plan.languages)}"


def _id(target: Target) -> str:
    return f"{target.kind}:{target.name}"


def _node(node_id: str, label: list[str], **attrs: str) -> str:
    extra = "".join(f", {k}={quote(v)}" for k, v in attrs.items())
    return f"  {quote(node_id)} [label={quote(chr(10).join(label))}{extra}];"


def _edge(source: str, target: Target, label: str, **attrs: str) -> str:
    """An edge to a queue, agency or menu node."""
    return _line(source, _id(target), label, **attrs)


def _line(source: str, dest: str, label: str, **attrs: str) -> str:
    parts = [f"label={quote(label)}"] if label else []
    parts += [f"{k}={quote(v)}" for k, v in attrs.items()]
    tail = f" [{', '.join(parts)}]" if parts else ""
    return f"  {quote(source)} -> {quote(dest)}{tail};"


def _option_edge(menu: Menu, digit: str, target: Target) -> str:
    here = _id(Target("menu", menu.name))
    if target.kind == "language":
        # The flow replays the same menu in the new language, so the edge loops back.
        return _line(here, here, f"{digit}: switch to {target.name}", style="dashed")
    if target.kind == "repeat":
        return _line(here, here, f"{digit}: repeat")
    return _edge(here, target, digit)


def _after(what: str, retries: int) -> str:
    if retries == 0:
        return what
    return f"{what} (after {retries} {'retry' if retries == 1 else 'retries'})"


def _menu_label(plan: Plan, menu: Menu) -> list[str]:
    label = [f"menu {menu.name}", f"[{', '.join(menu.prompts)}]", _excerpt(plan, menu.prompts)]
    if menu.retry_prompts:
        label.append(f"on retry first [{', '.join(menu.retry_prompts)}]")
    label.append(f"waits {menu.timeout:g} s for a key")
    return label


def _excerpt(plan: Plan, prompts: tuple[str, ...]) -> str:
    """The start of what the prompts say in the plan's first language (Indonesian in Kotim)."""
    lang = plan.default_language
    text = " ".join(plan.prompts[n].text.get(lang, "") for n in prompts if n in plan.prompts).strip()
    if len(text) > MENU_TEXT_CHARS:
        cut = text[:MENU_TEXT_CHARS]
        text = (cut.rsplit(" ", 1)[0] if " " in cut else cut).rstrip(" ,.;:") + " …"
    return f"«{text}»" if text else "(no text)"
