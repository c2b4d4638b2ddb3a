"""YAML that remembers where each value came from, so a refused plan can say
`file:line:column: what is wrong; how to fix it` (Home Assistant style).
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple

import yaml

from ivr.yamlwords import explain


class Mark(NamedTuple):
    """A place in a source file; line and column count from 1. (A named tuple: a plan has
    tens of thousands of them and a tuple is made several times faster than a frozen
    dataclass.)"""

    file: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


class Map(dict[str, Any]):
    """A YAML mapping that keeps the mark of each key and of itself."""

    mark: Mark
    key_marks: dict[str, Mark]
    value_marks: dict[str, Mark]

    def at(self, key: str) -> Mark:
        """Where `key`'s value is, or the mapping itself when the key is absent."""
        return self.value_marks.get(key, self.mark)

    def key_at(self, key: str) -> Mark:
        return self.key_marks.get(key, self.mark)


class Seq(list[Any]):
    mark: Mark
    item_marks: list[Mark]


class YamlProblem(Exception):
    """The YAML itself is broken (syntax, duplicate key); carries where."""

    def __init__(self, mark: Mark, message: str) -> None:
        super().__init__(f"{mark}: {message}")
        self.mark = mark
        self.message = message

    def __str__(self) -> str:
        return f"{self.mark}: {self.message}"


def _mark(file: str, node: yaml.Node) -> Mark:
    return Mark(file, node.start_mark.line + 1, node.start_mark.column + 1)


# libyaml's parser and composer (PyYAML's wheels carry it) read a plan about ten times
# faster than PyYAML's pure-Python ones: a 500-menu plan in about a tenth of a second
# (issue 7's target: validate and reload under 200 ms). Its composer recurses in C with no
# depth limit, so the depth is checked first on its event stream, which is not recursive.
_Base: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_Base):  # type: ignore[misc,valid-type]
    source_name = "<plan>"
    values_built = 0


# A plan is a few hundred values; these bound what a hostile file can make the loader do
# (an alias that contains itself, or aliases of aliases that multiply: "billion laughs").
MAX_DEPTH = 64
MAX_VALUES = 100_000


_STR = "tag:yaml.org,2002:str"


def _build(loader: _Loader, node: yaml.Node, depth: int = 0, path: tuple[int, ...] = ()) -> Any:
    file = loader.source_name
    if node.tag == _STR and isinstance(node, yaml.ScalarNode):
        # Most of a plan is text: taken as it is, without the constructor's round trip.
        loader.values_built += 1
        if loader.values_built > MAX_VALUES:
            raise YamlProblem(_mark(file, node), f"more than {MAX_VALUES} values (aliases repeated over and over?); a plan needs far fewer")
        return node.value
    if isinstance(node, (yaml.MappingNode, yaml.SequenceNode)):
        if id(node) in path:
            raise YamlProblem(_mark(file, node), "an alias (*name) refers to the value that contains it; remove the loop")
        if depth >= MAX_DEPTH:
            raise YamlProblem(_mark(file, node), f"values nested more than {MAX_DEPTH} deep; a plan needs far fewer")
        path = (*path, id(node))
    loader.values_built += 1
    if loader.values_built > MAX_VALUES:
        raise YamlProblem(_mark(file, node), f"more than {MAX_VALUES} values (aliases repeated over and over?); a plan needs far fewer")
    if isinstance(node, yaml.MappingNode):
        loader.flatten_mapping(node)
        result = Map()
        result.mark = _mark(file, node)
        result.key_marks = {}
        result.value_marks = {}
        for key_node, value_node in node.value:
            key = _build(loader, key_node, depth + 1, path)
            if not isinstance(key, (str, int)) or isinstance(key, bool):
                raise YamlProblem(_mark(file, key_node), f"a key must be text, found {key!r}")
            key = str(key)
            if key in result:
                raise YamlProblem(_mark(file, key_node), f"key {key!r} appears twice in this mapping; keep one")
            result[key] = _build(loader, value_node, depth + 1, path)
            result.key_marks[key] = _mark(file, key_node)
            result.value_marks[key] = _mark(file, value_node)
        return result
    if isinstance(node, yaml.SequenceNode):
        seq = Seq(_build(loader, child, depth + 1, path) for child in node.value)
        seq.mark = _mark(file, node)
        seq.item_marks = [_mark(file, child) for child in node.value]
        return seq
    try:
        return loader.construct_object(node, deep=True)
    except (ValueError, OverflowError, TypeError) as exc:
        # PyYAML reads 2026-13-01 as a date and lets the ValueError out.
        raise YamlProblem(_mark(file, node), f"{str(node.value)[:60]!r} cannot be read ({exc}); put it in quotes to keep it as text") from None


# Far below what libyaml's C recursion can take, far above any plan.
C_SAFE_DEPTH = 1000


def _could_nest_deeper_than(text: str, limit: int) -> bool:
    """A cheap upper bound on nesting. A block collection nested in another starts further
    right, or at the same column once (a sequence under a key); a flow level needs a `[`
    or `{` of its own. So depth is at most twice the longest line plus those brackets."""
    longest = max((len(line) for line in text.splitlines()), default=0)
    return 2 * longest + text.count("[") + text.count("{") + 2 > limit


def _check_depth(text: str, source_name: str) -> None:
    if not _could_nest_deeper_than(text, C_SAFE_DEPTH):
        return  # _build refuses more than MAX_DEPTH with its own mark
    depth = 0
    for event in yaml.parse(text, Loader=_Base):
        if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            depth += 1
            if depth > MAX_DEPTH:
                line, column = (event.start_mark.line, event.start_mark.column) if event.start_mark else (0, 0)
                raise YamlProblem(Mark(source_name, line + 1, column + 1), f"values nested more than {MAX_DEPTH} deep; a plan needs far fewer")
        elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            depth -= 1


@contextmanager
def _without_gc() -> Iterator[None]:
    """The cyclic garbage collector paused while a plan is read: the tens of thousands of
    nodes and values made at once set it off again and again, each time walking all of
    them (more than half of a 500-menu plan's reading time). Nothing made here is garbage
    until the read is over; the collector's state is put back as it was."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def load_yaml(text: str, source_name: str) -> Any:
    """Parse one YAML document into Map/Seq/scalars; raise YamlProblem with its mark."""
    with _without_gc():
        return _load_yaml(text, source_name)


def _load_yaml(text: str, source_name: str) -> Any:
    try:
        # PyYAML's own reader checks the characters at once: a control character is refused here.
        yaml.reader.Reader(text)
    except yaml.reader.ReaderError as exc:
        line = text.count("\n", 0, exc.position) + 1
        raise YamlProblem(Mark(source_name, line, 1), f"not valid YAML: {exc.reason} (character #x{exc.character:04x}); remove it") from None
    loader = _Loader(text)
    loader.source_name = source_name
    try:
        _check_depth(text, source_name)
        node = loader.get_single_node()
        if node is None:
            empty = Map()
            empty.mark = Mark(source_name, 1, 1)
            empty.key_marks, empty.value_marks = {}, {}
            return empty
        return _build(loader, node)
    except yaml.MarkedYAMLError as exc:
        where = explain(exc, text)
        raise YamlProblem(Mark(source_name, where.line, where.column), f"not valid YAML: {where.message}") from None
    except yaml.YAMLError as exc:
        raise YamlProblem(Mark(source_name, 1, 1), f"not valid YAML: {exc}") from None
    except RecursionError:
        # PyYAML's composer recurses once per level: [[[[...]]]] thousands deep ends here.
        raise YamlProblem(Mark(source_name, 1, 1), f"not valid YAML: nested more than {MAX_DEPTH} deep; a plan needs far fewer") from None
    finally:
        loader.dispose()


def load_yaml_file(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise YamlProblem(Mark(str(path), 1, 1), f"cannot read the file: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise YamlProblem(Mark(str(path), 1, 1), "the file is not UTF-8 text; save it as UTF-8") from None
    return load_yaml(text, str(path))
