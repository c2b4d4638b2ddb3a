"""The docs say what the code does (datasette's docs test): every plan key the parser accepts
is in docs/plan.md under its own section, every setting is in docs/settings.md with its real
default, and every block of tool output the docs quote is what the tool prints today.

A quoted block is marked in the Markdown, the line before its fence:
`<!-- tool-output: SCENARIO -->` or `<!-- tool-output: SCENARIO exit=1 -->`. Its `$ ` lines
are run in a scratch folder holding a copy of `dialplans/`, changed as SCENARIO says (see
SCENARIOS below); what follows each command is its expected output, stdout then stderr.
"""

from __future__ import annotations

import ast
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ivr.plan import QUEUE_STRATEGIES, TARGET_KINDS
from ivr.settings import PROJECT_DIR, load_settings, setting_fields

DOCS = PROJECT_DIR / "docs"
PLAN_DOC = DOCS / "plan.md"
SETTINGS_DOC = DOCS / "settings.md"
PARSER_DIR = PROJECT_DIR / "ivr"

# Where each `keys(map, allowed, where)` check of the plan parser sits in a plan, by the words
# of its `where` text with the names (f-string parts) and quotes left out. docs/plan.md names
# every key by this path: `agencies.<name>.trunks[].host`.
SECTIONS = {
    "the plan": "",
    "service": "service",
    "prompt": "prompts.<name>",
    "queue": "queues.<name>",
    "queue overflow": "queues.<name>.overflow",
    "menu": "menus.<name>",
    "entry": "entry",
    "a carrier": "carriers[]",
    "carrier callback": "carriers[].callback",
    "operators_first": "operators_first",
    "priority": "priority",
    "silent": "silent",
    "prank": "prank",
    "location": "location",
    "agency": "agencies.<name>",
    "agency trunk": "agencies.<name>.trunks[]",
}


@dataclass(frozen=True)
class KeyCheck:
    """One `keys()` call of the parser: the plan section it reads and the keys it accepts."""

    where: str
    keys: tuple[str, ...]
    at: str


def _str_tuple(node: ast.expr) -> tuple[str, ...] | None:
    if isinstance(node, ast.Tuple) and all(isinstance(e, ast.Constant) and isinstance(e.value, str) for e in node.elts):
        return tuple(e.value for e in node.elts if isinstance(e, ast.Constant) and isinstance(e.value, str))
    return None


def _where_words(node: ast.expr) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        text = node.value
    elif isinstance(node, ast.JoinedStr):
        text = "".join(v.value for v in node.values if isinstance(v, ast.Constant) and isinstance(v.value, str))
    else:
        return None
    return " ".join(text.replace("'", " ").split())


def _tuples_assigned(scope: ast.AST) -> dict[str, tuple[str, ...]]:
    """Names bound to a tuple of strings directly in this scope (not in nested functions)."""
    out: dict[str, tuple[str, ...]] = {}
    todo = list(ast.iter_child_nodes(scope))
    while todo:
        node = todo.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            continue
        if isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None:
            value = _str_tuple(node.value)
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for t in targets:
                if isinstance(t, ast.Name) and value is not None:
                    out[t.id] = value
        todo.extend(ast.iter_child_nodes(node))
    return out


def parser_key_checks() -> list[KeyCheck]:
    """Every `keys()` call in the parser's package, read from the source: the allowed keys are a
    tuple literal, or a name bound to one in the function, its module or another module."""
    modules = {p: ast.parse(p.read_text(), str(p)) for p in sorted(PARSER_DIR.rglob("*.py"))}
    package_wide: dict[str, tuple[str, ...]] = {}
    for tree in modules.values():
        package_wide.update(_tuples_assigned(tree))
    checks: list[KeyCheck] = []

    def visit(node: ast.AST, scopes: list[dict[str, tuple[str, ...]]], path: Path) -> None:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            scopes = [_tuples_assigned(node), *scopes]
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "keys"
            and len(node.args) + len(node.keywords) == 3
        ):
            at = f"{path.relative_to(PROJECT_DIR)}:{node.lineno}"
            allowed_node = node.args[1] if len(node.args) > 1 else next(k.value for k in node.keywords if k.arg == "allowed")
            where_node = node.args[2] if len(node.args) > 2 else next(k.value for k in node.keywords if k.arg == "where")
            allowed = _str_tuple(allowed_node)
            name = allowed_node.id if isinstance(allowed_node, ast.Name) else allowed_node.attr if isinstance(allowed_node, ast.Attribute) else None
            for scope in [*scopes, package_wide]:
                if allowed is None and name is not None:
                    allowed = scope.get(name)
            where = _where_words(where_node)
            assert allowed is not None and where is not None, (
                f"{at}: cannot read which keys this check allows; keep them a tuple of strings or a name bound to one"
            )
            checks.append(KeyCheck(where, allowed, at))
        for child in ast.iter_child_nodes(node):
            visit(child, scopes, path)

    for path, tree in modules.items():
        visit(tree, [_tuples_assigned(tree)], path)
    return checks


def documented_key_paths() -> list[str]:
    """The first cell of every key table row in docs/plan.md: `| `silent.presses` | ...`."""
    return re.findall(r"^\| `([^`\s]+)` \|", PLAN_DOC.read_text(), flags=re.MULTILINE)


def accepted_key_paths() -> set[str]:
    paths: set[str] = set()
    for check in parser_key_checks():
        prefix = SECTIONS[check.where]
        paths.update(f"{prefix}.{k}" if prefix else k for k in check.keys)
    return paths


def test_the_parser_checks_keys_in_every_section_the_docs_know() -> None:
    checks = parser_key_checks()
    found = {c.where for c in checks}
    unknown = sorted(f"{c.at}: '{c.where}'" for c in checks if c.where not in SECTIONS)
    assert unknown == [], "a new plan section: add its `where` words to SECTIONS and document its keys in docs/plan.md"
    # A parser refactor that renamed keys() would make every check below pass on nothing.
    assert found == set(SECTIONS)


def test_every_plan_key_is_documented_in_its_own_section() -> None:
    documented = set(documented_key_paths())
    missing = sorted(accepted_key_paths() - documented)
    assert missing == [], "add a row for each of these to docs/plan.md"


def test_every_documented_plan_key_is_one_the_parser_accepts() -> None:
    accepted = accepted_key_paths()
    wrong = []
    for path in documented_key_paths():
        known = path
        while known.endswith(">") and "." in known:  # `location.kecamatan.<number>`: a value's own names
            known = known.rsplit(".", 1)[0]
        if known not in accepted and known not in SECTIONS.values():
            wrong.append(path)
    assert wrong == [], "docs/plan.md documents keys the plan parser refuses"


def test_every_queue_strategy_and_target_kind_is_documented() -> None:
    text = PLAN_DOC.read_text()
    # Destinations are written `{queue: NAME}`, `{agency: NAME}`, ... or the bare word `repeat`.
    kinds = [kind if kind == "repeat" else f"{{{kind}: " for kind in TARGET_KINDS]
    missing = [w for w in (*QUEUE_STRATEGIES, *kinds) if f"`{w}" not in text]
    assert missing == []


def _default_cell(value: Any) -> str:
    if value in ("", ()):
        return "empty"
    if isinstance(value, tuple):
        return "`[" + ", ".join(str(getattr(v, "name", v)) for v in value) + "]`"
    return f"`{value}`"


def settings_rows() -> dict[str, str]:
    """docs/settings.md's table: setting name to its default cell."""
    rows = re.findall(r"^\| `([a-z_0-9]+)` \| ([^|]+) \|", SETTINGS_DOC.read_text(), flags=re.MULTILINE)
    return {name: default.strip() for name, default in rows}


def test_every_setting_is_documented_with_the_default_it_really_has() -> None:
    rows = settings_rows()
    effective = load_settings(environ={})
    wrong = {
        f.name: (rows.get(f.name, "not documented"), _default_cell(getattr(effective, f.name)))
        for f in setting_fields()
        if rows.get(f.name) != _default_cell(getattr(effective, f.name))
    }
    assert wrong == {}, "docs/settings.md: setting: (documented default, real default)"


def test_every_documented_setting_exists() -> None:
    names = {f.name for f in setting_fields()}
    assert sorted(set(settings_rows()) - names) == []


# --- Tool output quoted in the docs ---------------------------------------------------


def _plan_copy(work: Path) -> Path:
    shutil.copytree(PROJECT_DIR / "dialplans", work / "dialplans")
    return work / "dialplans" / "kotim.yaml"


def _kotim(work: Path) -> None:
    _plan_copy(work)


def _edit_once(plan: Path, old: str, new: str) -> None:
    text = plan.read_text()
    assert text.count(old) == 1, f"the doc example's edit {old!r} no longer applies to dialplans/kotim.yaml; update the example and this edit"
    plan.write_text(text.replace(old, new))


def _polisi(work: Path) -> None:
    """The main menu's option 1 mistyped: police becomes polisi."""
    _edit_once(_plan_copy(work), '"1": {agency: police}', '"1": {agency: polisi}')


def _tab(work: Path) -> None:
    """The main menu's timeout indented with a tab."""
    _edit_once(_plan_copy(work), "\n    timeout: 4\n", "\n\ttimeout: 4\n")


def _own_sip(work: Path) -> None:
    """Police trunk 2 pointed at this centre's own SIP port."""
    _edit_once(_plan_copy(work), "{host: 127.0.0.1, port: 5072,", "{host: 127.0.0.1, port: 5060,")


def _server(work: Path) -> None:
    """A server with one call in its store (the README's "Going live": backup has something to take)."""
    from ari_app.store import open_store

    _plan_copy(work)
    store = open_store(work / "var")
    store.open_incident(channel_id="golive.1", plan_id="kotim", caller_number="081234567890", called_number="112")
    store.close()


SCENARIOS: dict[str, Callable[[Path], None]] = {
    "kotim": _kotim, "polisi": _polisi, "tab": _tab, "own_sip": _own_sip, "server": _server,
}

BLOCK_RE = re.compile(r"<!-- tool-output: (?P<scenario>\S+)(?: exit=(?P<exit>\d+))? -->\n```[a-z]*\n(?P<body>.*?)```", re.DOTALL)


@dataclass(frozen=True)
class QuotedRun:
    doc: str
    scenario: str
    exit_code: int
    commands: tuple[tuple[str, str], ...]  # (command, expected output)


def quoted_runs() -> Iterator[QuotedRun]:
    for doc in [PROJECT_DIR / "README.md", *sorted(DOCS.glob("*.md"))]:
        for m in BLOCK_RE.finditer(doc.read_text()):
            parts = re.split(r"^\$ (.*)\n", m["body"], flags=re.MULTILINE)
            assert parts[0] == "", f"{doc.name}: a tool-output block starts with its `$ ` command"
            commands = tuple((parts[i], parts[i + 1]) for i in range(1, len(parts), 2))
            yield QuotedRun(doc.name, m["scenario"], int(m["exit"] or 0), commands)


def _ivr112() -> list[str]:
    script = Path(sys.executable).parent / "ivr112"
    return [str(script)] if script.exists() else [sys.executable, "-c", "import sys; from ari_app.cli import main; sys.exit(main())"]


def _clean(text: str) -> str:
    """Trailing blanks gone, and a backup's name without its time (it is made when the test runs)."""
    text = re.sub(r"ivr112-backup-\d{8}-\d{6}", "ivr112-backup-<UTC time>", text)
    return "\n".join(line.rstrip() for line in text.strip("\n").splitlines())


def test_the_docs_quote_the_tool_where_a_reader_first_needs_it() -> None:
    runs = {(r.doc, r.scenario) for r in quoted_runs()}
    assert ("README.md", "kotim") in runs  # the first call, as the tool walks it
    assert ("plan.md", "polisi") in runs  # the example error of "edit, check, try"
    assert ("README.md", "server") in runs  # going live: install, firewall, backup
    assert ("carrier.md", "kotim") in runs  # the carrier's test call, walked through the plan


@pytest.mark.parametrize("run", list(quoted_runs()), ids=lambda r: f"{r.doc}-{r.scenario}-{r.commands[0][0]}")
def test_tool_output_quoted_in_the_docs_is_what_the_tool_prints(run: QuotedRun, tmp_path: Path) -> None:
    assert run.scenario in SCENARIOS, f"{run.doc}: unknown scenario {run.scenario!r}; known: {', '.join(SCENARIOS)}"
    SCENARIOS[run.scenario](tmp_path)
    env = {k: v for k, v in os.environ.items() if not k.startswith("IVR112_")}
    env["IVR112_DATA_DIR"] = str(tmp_path / "var")  # never the project's own store or secrets
    for command, expected in run.commands:
        argv = shlex.split(command, comments=True)
        assert argv[0] in ("ivr112", ".venv/bin/ivr112"), f"{run.doc}: only ivr112 commands are run: {command}"
        done = subprocess.run([*_ivr112(), *argv[1:]], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60, check=False)
        assert _clean(done.stdout + done.stderr) == _clean(expected), f"{run.doc}: `{command}` prints something else now"
        assert done.returncode == (run.exit_code if command == run.commands[-1][0] else 0)
