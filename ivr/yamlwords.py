"""YAML syntax errors in the words of someone editing a plan, with the fix and the line.

libyaml says "found character that cannot start any token" for a tab, and "did not find
expected key" two lines below a line indented one space too far. `explain` reads the text
around the place libyaml stopped and says what the editor did and what to do instead.
"""

from __future__ import annotations

import re
from typing import NamedTuple

import yaml


class Where(NamedTuple):
    line: int  # from 1
    column: int  # from 1
    message: str


def first_tab_indent(text: str) -> Where | None:
    """The first line indented with a tab (YAML allows spaces only), if any."""
    for number, line in enumerate(text.splitlines(), start=1):
        lead = line[: len(line) - len(line.lstrip(" \t"))]
        if "\t" in lead and line.strip() and not line.lstrip().startswith("#"):
            return Where(number, lead.index("\t") + 1, f"a tab at line {number}: indent with spaces (YAML does not allow tabs)")
    return None


def explain(exc: yaml.MarkedYAMLError, text: str) -> Where:
    """`exc` (PyYAML's or libyaml's) as a plain sentence at the line to fix."""
    lines = text.splitlines()
    mark = exc.problem_mark or exc.context_mark
    line, column = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
    problem = exc.problem or ""
    context = exc.context or ""
    opened = exc.context_mark.line + 1 if exc.context_mark is not None else line
    tab = first_tab_indent(text)
    if tab is not None and tab.line <= line:
        return tab  # libyaml may stop a line or two later, in other words
    if "cannot start any token" in problem:
        return _bad_character(lines, line, column)
    if "quoted scalar" in context:
        return _unclosed_quote(lines, opened) or Where(opened, 1, f"line {opened} opens a quote that is never closed; close it on the same line")
    if "flow sequence" in context or "flow mapping" in context:
        bracket, close = ("[", "]") if "sequence" in context else ("{", "}")
        column = exc.context_mark.column + 1 if exc.context_mark is not None else 1
        return Where(opened, column, f"line {opened} opens '{bracket}' without a matching '{close}' on that line, "
                                f"or an item lacks its comma; close it with '{close}' and separate items with ', '")
    if "mapping values are not allowed" in problem:
        return _stray_colon(lines, line, column)
    if "expected key" in problem or "block end" in problem or "'-' indicator" in problem:
        return _misaligned(lines, line)
    if "undefined alias" in problem:
        return Where(line, column, f"'*' at line {line} names an anchor (&name) that is not defined; put the text in quotes if the '*' is meant literally")
    return Where(line, column, f"not valid YAML at line {line}: {problem or context or exc}; compare it with the lines above it")


def _char(lines: list[str], line: int, column: int) -> str:
    text = lines[line - 1] if 0 < line <= len(lines) else ""
    return text[column - 1] if 0 < column <= len(text) else ""


def _bad_character(lines: list[str], line: int, column: int) -> Where:
    char = _char(lines, line, column)
    if char == "\t":
        return Where(line, column, f"a tab at line {line}: indent with spaces (YAML does not allow tabs)")
    return Where(line, column, f"line {line} has {char!r} where a value starts, which YAML reserves; put the value in quotes: \"{char}...\"")


def _content_before(lines: list[str], line: int) -> int:
    """The number of the last line before `line` with something other than a comment."""
    for number in range(line - 1, 0, -1):
        stripped = lines[number - 1].strip()
        if stripped and not stripped.startswith("#"):
            return number
    return 0


def _indent(text: str) -> int:
    return len(text) - len(text.lstrip(" "))


def _stray_colon(lines: list[str], line: int, column: int) -> Where:
    """A ':' where YAML cannot take one: the line before lacks its own ':', or a value holds ': '."""
    here = lines[line - 1] if 0 < line <= len(lines) else ""
    before = _content_before(lines, line)
    if before and ":" not in lines[before - 1] and not lines[before - 1].lstrip().startswith("-"):
        return Where(before, _indent(lines[before - 1]) + 1, f"line {before} has no ':' after its key; write it as 'key: value'")
    if before and _indent(here) > _indent(lines[before - 1]) and not lines[before - 1].rstrip().endswith(":"):
        return _misaligned(lines, line)
    return Where(line, column, f"line {line} has a second ': ' inside a value; put the value in quotes: key: \"a: b\"")


def _misaligned(lines: list[str], line: int) -> Where:
    """A line whose indentation fits no level around it (often the one above the mark)."""
    opened = _unclosed_quote(lines, line)
    if opened is not None:
        return opened
    before = _content_before(lines, line)
    here = lines[line - 1] if 0 < line <= len(lines) else ""
    if here.lstrip().startswith("- ") and before and not lines[before - 1].rstrip().endswith(":"):
        return Where(line, _indent(here) + 1, f"line {line} is a list item ('- ') among keys; indent it under the key it belongs to")
    if before:
        above = lines[before - 1]
        if _indent(above) != _indent(here) and not above.rstrip().endswith(":"):
            return Where(before, _indent(above) + 1,
                         f"lines {before} and {line} are indented differently ({_indent(above)} and {_indent(here)} spaces) but belong to "
                         f"the same section; start them in the same column, with spaces")
    return Where(line, _indent(here) + 1, f"line {line} is not indented like the other keys of its section; "
                                          "line it up with them, with spaces (2 per level)")


_QUOTED_VALUE = re.compile(r"""^\s*(?:- |[^\s#'"][^:#]*:\s+)(?P<value>(?P<quote>["']).*?)\s*(?:\s#.*)?$""")


def _unclosed_quote(lines: list[str], line: int) -> Where | None:
    """The first line up to `line` whose value opens a quote it does not close."""
    for number in range(1, min(line, len(lines)) + 1):
        m = _QUOTED_VALUE.match(lines[number - 1])
        if m is None:
            continue
        value, quote = m["value"], m["quote"]
        if len(value) < 2 or not value.endswith(quote):
            return Where(number, m.start("value") + 1, f"line {number} opens a quote ({quote}) that is never closed; "
                                                     f"end the text with {quote} on the same line")
    return None
