"""The plan: what one 112 service answers, says and where it sends calls, read from YAML.

`load_plan(path)` returns a frozen `Plan` or raises `PlanError` with every problem found
(`file:line:column: what is wrong; how to fix it`), collected in one pass.
The menu engine (`ivr.menu`), the simulator and the Asterisk renderer read the same objects.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ivr.errors import PlanError
from ivr.yamlsrc import Map, Mark, Seq, YamlProblem, load_yaml_file

NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")
NUMBER_RE = re.compile(r"^[0-9]{2,15}$")
LANGUAGES = ("id", "en")
QUEUE_STRATEGIES = ("ringall", "leastrecent", "fewestcalls", "random", "rrmemory", "linear", "wrandom")
TARGET_KINDS = ("queue", "menu", "agency", "language", "repeat")


@dataclass(frozen=True)
class Problem:
    mark: Mark
    message: str

    def __str__(self) -> str:
        return f"{self.mark}: {self.message}"


@dataclass(frozen=True)
class Target:
    """Where a step leads: kind is one of TARGET_KINDS, name the queue/menu/agency/language."""

    kind: str
    name: str = ""
    mark: Mark | None = field(default=None, compare=False)

    def __str__(self) -> str:
        return f"{self.kind}:{self.name}" if self.name else self.kind


@dataclass(frozen=True)
class Prompt:
    name: str
    text: dict[str, str]
    files: dict[str, str]
    mark: Mark | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Queue:
    name: str
    strategy: str = "ringall"
    ring_timeout: int = 15
    wrapup: int = 5
    max_wait: int = 0


@dataclass(frozen=True)
class Carrier:
    name: str
    match: tuple[str, ...]


@dataclass(frozen=True)
class Entry:
    """What every call hears first, and where it goes next."""

    greeting: tuple[str, ...]
    then: Target


@dataclass(frozen=True)
class Menu:
    name: str
    prompts: tuple[str, ...]
    options: dict[str, Target]
    timeout: float = 5.0
    retries: int = 1
    no_input: Target | None = None
    wrong_input: Target | None = None
    retry_prompts: tuple[str, ...] = ()
    mark: Mark | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Plan:
    id: str
    name: str
    source: str
    numbers: tuple[str, ...]
    languages: tuple[str, ...]
    prompts: dict[str, Prompt]
    entry: Entry
    queues: dict[str, Queue]
    menus: dict[str, Menu]
    carriers: tuple[Carrier, ...]

    @property
    def default_language(self) -> str:
        return self.languages[0]

    @property
    def default_queue(self) -> Queue:
        """The queue the fallback dialplan uses when the app is not there: the first one."""
        return next(iter(self.queues.values()))

    def prompt_names(self) -> list[str]:
        return sorted(self.prompts)


class _Reader:
    """Reads a Map against expectations, collecting problems instead of stopping."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def problem(self, mark: Mark, message: str) -> None:
        self.problems.append(Problem(mark, message))

    def mapping(self, parent: Map, key: str, *, required: bool = True) -> Map | None:
        value = parent.get(key)
        if value is None:
            if required:
                self.problem(parent.key_at(key) if key in parent else parent.mark, f"'{key}' is missing; add a '{key}:' section")
            return None
        if not isinstance(value, Map):
            self.problem(parent.at(key), f"'{key}' must be a mapping of name: value, found {type(value).__name__}")
            return None
        return value

    def keys(self, m: Map, allowed: tuple[str, ...], where: str) -> None:
        for key in m:
            if key not in allowed:
                self.problem(m.key_at(key), f"unknown key '{key}' in {where}; expected one of: {', '.join(allowed)}")

    def text(self, m: Map, key: str, *, default: str | None = None) -> str:
        value = m.get(key, default)
        if value is None:
            self.problem(m.mark, f"'{key}' is missing; add '{key}: ...'")
            return ""
        if not isinstance(value, (str, int)) or isinstance(value, bool):
            self.problem(m.at(key), f"'{key}' must be text, found {value!r}")
            return ""
        return str(value)

    def number(self, m: Map, key: str, default: float, *, low: float, high: float, integer: bool = False) -> float:
        value = m.get(key, default)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (integer and not isinstance(value, int)):
            kind = "a whole number" if integer else "a number"
            self.problem(m.at(key), f"'{key}' must be {kind}, found {value!r}")
            return default
        if not low <= value <= high:
            self.problem(m.at(key), f"'{key}' must be between {low:g} and {high:g}, found {value}")
            return default
        return float(value) if not integer else int(value)

    def names(self, m: Map, key: str, *, required: bool = True) -> tuple[tuple[str, Mark], ...]:
        value = m.get(key)
        if value is None:
            if required:
                self.problem(m.mark, f"'{key}' is missing; add '{key}: [name, ...]'")
            return ()
        if isinstance(value, str):
            return ((value, m.at(key)),)
        if not isinstance(value, Seq) or not all(isinstance(v, (str, int)) and not isinstance(v, bool) for v in value):
            self.problem(m.at(key), f"'{key}' must be a list of names, found {value!r}")
            return ()
        return tuple((str(v), mk) for v, mk in zip(value, value.item_marks, strict=True))

    def target(self, value: Any, mark: Mark, where: str) -> Target | None:
        if isinstance(value, str) and value in ("repeat",):
            return Target(value, "", mark)
        if not isinstance(value, Map) or len(value) != 1:
            self.problem(
                mark,
                f"{where} must be one of {{queue: NAME}}, {{menu: NAME}}, {{agency: NAME}}, {{language: id|en}} or repeat",
            )
            return None
        kind, name = next(iter(value.items()))
        if kind not in TARGET_KINDS or kind == "repeat":
            self.problem(value.key_at(kind), f"unknown destination '{kind}' in {where}; use queue, menu, agency or language")
            return None
        if not isinstance(name, str):
            self.problem(value.at(kind), f"{where}: '{kind}' needs a name, found {name!r}")
            return None
        return Target(kind, name, value.at(kind))


def _parse(doc: Any, source: str) -> tuple[Plan | None, list[Problem]]:
    r = _Reader()
    if not isinstance(doc, Map):
        return None, [Problem(Mark(source, 1, 1), "a plan must be a YAML mapping with service, prompts, entry and queues")]
    r.keys(doc, ("service", "prompts", "entry", "queues", "menus", "carriers"), "the plan")

    service = r.mapping(doc, "service")
    plan_id, name = "", ""
    numbers: tuple[str, ...] = ()
    languages: tuple[str, ...] = ("id",)
    if service is not None:
        r.keys(service, ("id", "name", "numbers", "languages"), "service")
        plan_id = r.text(service, "id")
        if plan_id and not NAME_RE.match(plan_id):
            r.problem(service.at("id"), f"service id {plan_id!r} must be lower-case letters, digits or '_' (it names files)")
        name = r.text(service, "name")
        nums = r.names(service, "numbers")
        for num, mk in nums:
            if not NUMBER_RE.match(num):
                r.problem(mk, f"number {num!r} must be 2 to 15 digits, like 112 or 110")
        if len({n for n, _ in nums}) != len(nums):
            r.problem(service.at("numbers"), "a number is listed twice in service.numbers")
        numbers = tuple(n for n, _ in nums)
        if numbers and "112" not in numbers:
            r.problem(service.at("numbers"), "service.numbers must include 112")
        langs = r.names(service, "languages")
        for lang, mk in langs:
            if lang not in LANGUAGES:
                r.problem(mk, f"language {lang!r} is not supported; use {' or '.join(LANGUAGES)}")
        if langs:
            languages = tuple(lg for lg, _ in langs)
            if languages[0] != "id":
                r.problem(service.at("languages"), "Bahasa Indonesia comes first: start the list with 'id'")

    prompts: dict[str, Prompt] = {}
    pmap = r.mapping(doc, "prompts")
    for pname, pval in (pmap or {}).items():
        assert pmap is not None
        if not NAME_RE.match(pname):
            r.problem(pmap.key_at(pname), f"prompt name {pname!r} must be lower-case letters, digits or '_'")
        if not isinstance(pval, Map):
            r.problem(pmap.at(pname), f"prompt '{pname}' must be a mapping with 'text' per language")
            continue
        r.keys(pval, ("text", "file"), f"prompt '{pname}'")
        texts: dict[str, str] = {}
        tmap = r.mapping(pval, "text")
        if tmap is not None:
            for lang, t in tmap.items():
                if lang not in LANGUAGES:
                    r.problem(tmap.key_at(lang), f"prompt '{pname}': language {lang!r} is not supported; use id or en")
                elif not isinstance(t, str) or not t.strip():
                    r.problem(tmap.at(lang), f"prompt '{pname}': the {lang} text must be a non-empty sentence")
                else:
                    texts[lang] = t.strip()
            for lang in languages:
                if lang not in tmap:
                    r.problem(tmap.mark, f"prompt '{pname}' has no '{lang}' text; every prompt needs one per service language")
        files: dict[str, str] = {}
        fmap = pval.get("file")
        if fmap is not None:
            if not isinstance(fmap, Map):
                r.problem(pval.at("file"), f"prompt '{pname}': 'file' must map a language to a WAV path")
            else:
                for lang, f in fmap.items():
                    if lang not in LANGUAGES or not isinstance(f, str):
                        r.problem(fmap.key_at(lang), f"prompt '{pname}': file entries are language: path.wav")
                    else:
                        files[lang] = f
        prompts[pname] = Prompt(pname, texts, files, pmap.key_at(pname))

    queues: dict[str, Queue] = {}
    qmap = r.mapping(doc, "queues")
    for qname, qval in (qmap or {}).items():
        assert qmap is not None
        if not NAME_RE.match(qname):
            r.problem(qmap.key_at(qname), f"queue name {qname!r} must be lower-case letters, digits or '_'")
        if not isinstance(qval, Map):
            r.problem(qmap.at(qname), f"queue '{qname}' must be a mapping (strategy, ring_timeout, wrapup)")
            continue
        r.keys(qval, ("strategy", "ring_timeout", "wrapup", "max_wait"), f"queue '{qname}'")
        strategy = r.text(qval, "strategy", default="ringall")
        if strategy not in QUEUE_STRATEGIES:
            r.problem(qval.at("strategy"), f"queue '{qname}': strategy {strategy!r} is unknown; use one of {', '.join(QUEUE_STRATEGIES)}")
        queues[qname] = Queue(
            qname,
            strategy,
            int(r.number(qval, "ring_timeout", 15, low=3, high=120, integer=True)),
            int(r.number(qval, "wrapup", 5, low=0, high=600, integer=True)),
            int(r.number(qval, "max_wait", 0, low=0, high=3600, integer=True)),
        )
    if qmap is not None and not queues:
        r.problem(qmap.mark, "at least one operators' queue is needed: every call must be able to reach a person")

    menus: dict[str, Menu] = {}
    mmap = r.mapping(doc, "menus", required=False)
    for mname, mval in (mmap or {}).items():
        assert mmap is not None
        if not isinstance(mval, Map):
            r.problem(mmap.at(mname), f"menu '{mname}' must be a mapping with prompts and options")
            continue
        r.keys(mval, ("prompts", "options", "timeout", "retries", "no_input", "wrong_input", "retry_prompts"), f"menu '{mname}'")
        options: dict[str, Target] = {}
        omap = r.mapping(mval, "options")
        for digit, oval in (omap or {}).items():
            assert omap is not None
            if not re.fullmatch(r"[0-9*#]{1,4}", digit):
                r.problem(omap.key_at(digit), f"menu '{mname}': option {digit!r} must be digits, * or # (1 to 4 keys); quote it: '1'")
            t = r.target(oval, omap.at(digit), f"menu '{mname}' option {digit}")
            if t is not None:
                options[digit] = t
        for digit in options:
            longer = [o for o in options if o != digit and o.startswith(digit)]
            if longer and omap is not None:
                r.problem(
                    omap.key_at(digit),
                    f"menu '{mname}': option {digit!r} is the start of option {longer[0]!r}, so a caller pressing "
                    f"{digit!r} would wait for a second key; change one of them",
                )
        nin = r.target(mval["no_input"], mval.at("no_input"), f"menu '{mname}' no_input") if "no_input" in mval else None
        win = r.target(mval["wrong_input"], mval.at("wrong_input"), f"menu '{mname}' wrong_input") if "wrong_input" in mval else None
        menus[mname] = Menu(
            name=mname,
            prompts=tuple(n for n, _ in r.names(mval, "prompts")),
            options=options,
            timeout=r.number(mval, "timeout", 5.0, low=1, high=30),
            retries=int(r.number(mval, "retries", 1, low=0, high=5, integer=True)),
            no_input=nin,
            wrong_input=win,
            retry_prompts=tuple(n for n, _ in r.names(mval, "retry_prompts", required=False)),
            mark=mmap.key_at(mname),
        )

    entry_map = r.mapping(doc, "entry")
    entry = Entry((), Target("queue", ""))
    if entry_map is not None:
        r.keys(entry_map, ("greeting", "then"), "entry")
        then: Target | None = None
        if "then" in entry_map:
            then = r.target(entry_map.get("then"), entry_map.at("then"), "entry.then")
        else:
            r.problem(entry_map.mark, "entry.then is missing; say where a call goes after the greeting, e.g. {menu: main}")
        entry = Entry(tuple(n for n, _ in r.names(entry_map, "greeting")), then or Target("queue", ""))

    carriers: list[Carrier] = []
    cval = doc.get("carriers")
    if cval is not None:
        if not isinstance(cval, Seq):
            r.problem(doc.at("carriers"), "'carriers' must be a list of {name, match: [address/prefix, ...]}")
        else:
            for item, mk in zip(cval, cval.item_marks, strict=True):
                if not isinstance(item, Map):
                    r.problem(mk, "a carrier must be a mapping with name and match")
                    continue
                r.keys(item, ("name", "match"), "a carrier")
                cname = r.text(item, "name")
                matches = r.names(item, "match")
                for addr, amk in matches:
                    try:
                        ipaddress.ip_network(addr, strict=False)
                    except ValueError:
                        r.problem(amk, f"carrier '{cname}': {addr!r} is not an address or address/prefix like 10.1.2.0/24")
                carriers.append(Carrier(cname, tuple(a for a, _ in matches)))

    plan = Plan(
        id=plan_id,
        name=name,
        source=source,
        numbers=numbers,
        languages=languages,
        prompts=prompts,
        entry=entry,
        queues=queues,
        menus=menus,
        carriers=tuple(carriers),
    )
    if entry_map is not None:
        _check_references(plan, entry_map, r)
    return plan, r.problems


def _check_references(plan: Plan, entry_map: Map, r: _Reader) -> None:
    """Every named prompt, queue and menu exists, and every path can reach a person."""

    def prompt_refs(names: tuple[str, ...], mark: Mark | None, where: str) -> None:
        for n in names:
            if n not in plan.prompts:
                r.problem(mark or entry_map.mark, f"{where} plays prompt '{n}', which is not under 'prompts'; add it or fix the name")

    def target_ref(t: Target | None, where: str) -> None:
        if t is None:
            return
        mark = t.mark or entry_map.mark
        if t.kind == "queue" and t.name not in plan.queues:
            r.problem(mark, f"{where} leads to queue '{t.name}', which is not under 'queues'; known: {', '.join(plan.queues) or 'none'}")
        elif t.kind == "menu" and t.name not in plan.menus:
            r.problem(mark, f"{where} leads to menu '{t.name}', which is not under 'menus'; known: {', '.join(plan.menus) or 'none'}")
        elif t.kind == "language" and t.name not in plan.languages:
            r.problem(mark, f"{where} switches to language '{t.name}', which is not in service.languages")
        elif t.kind == "agency":
            r.problem(mark, f"{where} leads to agency '{t.name}', but this plan has no agencies section")

    prompt_refs(plan.entry.greeting, entry_map.at("greeting"), "entry.greeting")
    target_ref(plan.entry.then, "entry.then")
    for menu in plan.menus.values():
        prompt_refs(menu.prompts + menu.retry_prompts, menu.mark, f"menu '{menu.name}'")
        for digit, t in menu.options.items():
            target_ref(t, f"menu '{menu.name}' option {digit}")
        target_ref(menu.no_input, f"menu '{menu.name}' no_input")
        target_ref(menu.wrong_input, f"menu '{menu.name}' wrong_input")
        for rule, rule_target in (("no_input", menu.no_input), ("wrong_input", menu.wrong_input)):
            if rule_target is None:
                r.problem(menu.mark or entry_map.mark, f"menu '{menu.name}' has no {rule} rule; add '{rule}: {{queue: ...}}' so a caller always reaches a person")
            elif rule_target.kind in ("repeat", "language"):
                r.problem(
                    rule_target.mark or entry_map.mark,
                    f"menu '{menu.name}' {rule} must end at a person (a queue, an agency or another menu), not {rule_target}",
                )


def parse_plan(doc: Any, source: str) -> Plan:
    plan, problems = _parse(doc, source)
    if problems or plan is None:
        raise PlanError(list(problems))
    return plan


def load_plan(path: Path) -> Plan:
    """Read and check one plan file; raise PlanError listing every problem."""
    try:
        doc = load_yaml_file(path)
    except YamlProblem as exc:
        raise PlanError([Problem(exc.mark, exc.message)]) from None
    return parse_plan(doc, str(path))
