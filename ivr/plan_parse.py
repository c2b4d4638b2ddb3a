"""Reading a plan document (YAML with marks) into the model of `ivr.plan`.

Every problem of shape or type is collected with its mark; references between parts are
checked afterwards by `ivr.validate`, on the model.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from ivr.agency_data import LOCATION_MODES
from ivr.location.geo import load_boundaries
from ivr.plan import (
    DIAL_RE,
    LANGUAGES,
    NAME_RE,
    NUMBER_RE,
    QUEUE_STRATEGIES,
    RESPONSE_TIMEOUT_S,
    TARGET_KINDS,
    Agency,
    Carrier,
    Entry,
    LocationPolicy,
    Menu,
    OperatorsFirst,
    Overflow,
    Plan,
    PrankPolicy,
    PriorityPolicy,
    Problem,
    Prompt,
    Queue,
    SilentPolicy,
    Target,
    Trunk,
)
from ivr.yamlsrc import Map, Mark, Seq


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


def parse(doc: Any, source: str) -> tuple[Plan | None, list[Problem]]:
    """Read a plan document into the model; problems of shape and type, all of them."""
    r = _Reader()
    if not isinstance(doc, Map):
        return None, [Problem(Mark(source, 1, 1), "a plan must be a YAML mapping with service, prompts, entry and queues")]
    r.keys(doc, ("service", "prompts", "entry", "queues", "menus", "agencies", "carriers", "location", "priority", "silent", "prank",
                 "operators_first"), "the plan")
    # Sections in the order their problems are listed; `languages` is read first, as every
    # prompt needs a text per service language.
    plan_id, name, numbers, languages = _service(r, doc)
    prompts = _prompts(r, doc, languages)
    queues = _queues(r, doc)
    agencies = _agencies(r, doc)
    menus = _menus(r, doc)
    entry = _entry(r, doc)
    carriers = _carriers(r, doc)
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
        agencies=agencies,
        carriers=carriers,
        location=_location(r, doc, source),
        priority=_priority(r, doc),
        silent=_silent(r, doc),
        prank=_prank(r, doc),
        operators_first=_operators_first(r, doc),
    )
    return plan, r.problems


def _service(r: _Reader, doc: Map) -> tuple[str, str, tuple[str, ...], tuple[str, ...]]:
    """service: id, name, numbers and languages (Bahasa Indonesia alone when unreadable)."""
    service = r.mapping(doc, "service")
    if service is None:
        return "", "", (), ("id",)
    r.keys(service, ("id", "name", "numbers", "languages"), "service")
    plan_id = r.text(service, "id")
    if plan_id and not NAME_RE.match(plan_id):
        r.problem(service.at("id"), f"service id {plan_id!r} must be lower-case letters, digits or '_' (it names files)")
    name = r.text(service, "name")
    return plan_id, name, _service_numbers(r, service), _service_languages(r, service)


def _service_numbers(r: _Reader, service: Map) -> tuple[str, ...]:
    nums = r.names(service, "numbers")
    for num, mk in nums:
        if not NUMBER_RE.match(num):
            r.problem(mk, f"number {num!r} must be 2 to 15 digits, like 112 or 110")
    if len({n for n, _ in nums}) != len(nums):
        r.problem(service.at("numbers"), "a number is listed twice in service.numbers")
    numbers = tuple(n for n, _ in nums)
    if numbers and "112" not in numbers:
        r.problem(service.at("numbers"), "service.numbers must include 112")
    return numbers


def _service_languages(r: _Reader, service: Map) -> tuple[str, ...]:
    langs = r.names(service, "languages")
    for lang, mk in langs:
        if lang not in LANGUAGES:
            r.problem(mk, f"language {lang!r} is not supported; use {' or '.join(LANGUAGES)}")
    if not langs:
        return ("id",)
    languages = tuple(lg for lg, _ in langs)
    if languages[0] != "id":
        r.problem(service.at("languages"), "Bahasa Indonesia comes first: start the list with 'id'")
    return languages


def _prompts(r: _Reader, doc: Map, languages: tuple[str, ...]) -> dict[str, Prompt]:
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
        texts = _prompt_texts(r, pval, pname, languages)
        prompts[pname] = Prompt(pname, texts, _prompt_files(r, pval, pname), pmap.key_at(pname))
    return prompts


def _prompt_texts(r: _Reader, pval: Map, pname: str, languages: tuple[str, ...]) -> dict[str, str]:
    texts: dict[str, str] = {}
    tmap = r.mapping(pval, "text")
    if tmap is None:
        return texts
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
    return texts


def _prompt_files(r: _Reader, pval: Map, pname: str) -> dict[str, str]:
    files: dict[str, str] = {}
    fmap = pval.get("file")
    if fmap is None:
        return files
    if not isinstance(fmap, Map):
        r.problem(pval.at("file"), f"prompt '{pname}': 'file' must map a language to a WAV path")
        return files
    for lang, f in fmap.items():
        if lang not in LANGUAGES or not isinstance(f, str):
            r.problem(fmap.key_at(lang), f"prompt '{pname}': file entries are language: path.wav")
        else:
            files[lang] = f
    return files


def _queues(r: _Reader, doc: Map) -> dict[str, Queue]:
    queues: dict[str, Queue] = {}
    qmap = r.mapping(doc, "queues")
    for qname, qval in (qmap or {}).items():
        assert qmap is not None
        if not NAME_RE.match(qname):
            r.problem(qmap.key_at(qname), f"queue name {qname!r} must be lower-case letters, digits or '_'")
        if not isinstance(qval, Map):
            r.problem(qmap.at(qname), f"queue '{qname}' must be a mapping (strategy, ring_timeout, wrapup, overflow)")
            continue
        queues[qname] = _queue(r, qval, qname, qmap.key_at(qname))
    if qmap is not None and not queues:
        r.problem(qmap.mark, "at least one operators' queue is needed: every call must be able to reach a person")
    return queues


def _queue(r: _Reader, qval: Map, qname: str, mark: Mark) -> Queue:
    r.keys(qval, ("strategy", "ring_timeout", "wrapup", "announce_position", "announce_every", "overflow"), f"queue '{qname}'")
    strategy = r.text(qval, "strategy", default="ringall")
    if strategy not in QUEUE_STRATEGIES:
        r.problem(qval.at("strategy"), f"queue '{qname}': strategy {strategy!r} is unknown; use one of {', '.join(QUEUE_STRATEGIES)}")
    announce = qval.get("announce_position", False)
    if not isinstance(announce, bool):
        r.problem(qval.at("announce_position"), f"queue '{qname}': announce_position must be true or false")
        announce = False
    overflow = _overflow(r, qval, qname)
    return Queue(
        qname,
        strategy,
        int(r.number(qval, "ring_timeout", 15, low=3, high=120, integer=True)),
        int(r.number(qval, "wrapup", 5, low=0, high=600, integer=True)),
        announce,
        overflow,
        announce_every=int(r.number(qval, "announce_every", 30, low=15, high=600, integer=True)),
        mark=mark,
    )


def _overflow(r: _Reader, qval: Map, qname: str) -> Overflow | None:
    omap_q = r.mapping(qval, "overflow", required=False)
    if omap_q is None:
        return None
    r.keys(omap_q, ("after", "to"), f"queue '{qname}' overflow")
    after = int(r.number(omap_q, "after", 60, low=5, high=3600, integer=True))
    if "to" not in omap_q:
        r.problem(omap_q.mark, f"queue '{qname}' overflow needs 'to': another queue or an agency (a backup centre)")
        return None
    to = r.target(omap_q.get("to"), omap_q.at("to"), f"queue '{qname}' overflow.to")
    return Overflow(after, to) if to is not None else None


def _menus(r: _Reader, doc: Map) -> dict[str, Menu]:
    menus: dict[str, Menu] = {}
    mmap = r.mapping(doc, "menus", required=False)
    for mname, mval in (mmap or {}).items():
        assert mmap is not None
        if not isinstance(mval, Map):
            r.problem(mmap.at(mname), f"menu '{mname}' must be a mapping with prompts and options")
            continue
        r.keys(
            mval,
            ("prompts", "options", "timeout", "no_input_retries", "wrong_input_retries", "no_input", "wrong_input", "retry_prompts"),
            f"menu '{mname}'",
        )
        options = _menu_options(r, mval, mname)
        nin = r.target(mval["no_input"], mval.at("no_input"), f"menu '{mname}' no_input") if "no_input" in mval else None
        win = r.target(mval["wrong_input"], mval.at("wrong_input"), f"menu '{mname}' wrong_input") if "wrong_input" in mval else None
        menus[mname] = Menu(
            name=mname,
            prompts=tuple(n for n, _ in r.names(mval, "prompts")),
            options=options,
            timeout=r.number(mval, "timeout", 5.0, low=1, high=30),
            no_input_retries=int(r.number(mval, "no_input_retries", 0, low=0, high=5, integer=True)),
            wrong_input_retries=int(r.number(mval, "wrong_input_retries", 1, low=0, high=5, integer=True)),
            no_input=nin,
            wrong_input=win,
            retry_prompts=tuple(n for n, _ in r.names(mval, "retry_prompts", required=False)),
            mark=mmap.key_at(mname),
        )
    return menus


def _menu_options(r: _Reader, mval: Map, mname: str) -> dict[str, Target]:
    options: dict[str, Target] = {}
    omap = r.mapping(mval, "options")
    if omap is None:
        return options
    for digit, oval in omap.items():
        if not re.fullmatch(r"[0-9*#]{1,4}", digit):
            r.problem(omap.key_at(digit), f"menu '{mname}': option {digit!r} must be digits, * or # (1 to 4 keys); quote it: '1'")
        t = r.target(oval, omap.at(digit), f"menu '{mname}' option {digit}")
        if t is not None:
            options[digit] = t
    for digit in options:
        longer = [o for o in options if o != digit and o.startswith(digit)]
        if longer:
            r.problem(
                omap.key_at(digit),
                f"menu '{mname}': option {digit!r} is the start of option {longer[0]!r}, so a caller pressing "
                f"{digit!r} would wait for a second key; change one of them",
            )
    return options


def _entry(r: _Reader, doc: Map) -> Entry:
    entry_map = r.mapping(doc, "entry")
    if entry_map is None:
        return Entry((), Target("queue", ""), doc.mark)
    r.keys(entry_map, ("greeting", "then"), "entry")
    then: Target | None = None
    if "then" in entry_map:
        then = r.target(entry_map.get("then"), entry_map.at("then"), "entry.then")
    else:
        r.problem(entry_map.mark, "entry.then is missing; say where a call goes after the greeting, e.g. {menu: main}")
    return Entry(tuple(n for n, _ in r.names(entry_map, "greeting")), then or Target("queue", ""), entry_map.at("greeting"))


def _carriers(r: _Reader, doc: Map) -> tuple[Carrier, ...]:
    cval = doc.get("carriers")
    if cval is None:
        return ()
    if not isinstance(cval, Seq):
        r.problem(doc.at("carriers"), "'carriers' must be a list of {name, match: [address/prefix, ...]}")
        return ()
    carriers: list[Carrier] = []
    for item, mk in zip(cval, cval.item_marks, strict=True):
        if not isinstance(item, Map):
            r.problem(mk, "a carrier must be a mapping with name and match")
            continue
        carriers.append(_carrier(r, item))
    return tuple(carriers)


def _carrier(r: _Reader, item: Map) -> Carrier:
    r.keys(item, ("name", "match", "callback"), "a carrier")
    cname = r.text(item, "name")
    cb_host, cb_port, cb_placeholder = "", 5060, False
    cb = r.mapping(item, "callback", required=False)
    if cb is not None:
        r.keys(cb, ("host", "port", "placeholder"), f"carrier '{cname}' callback")
        cb_host = r.text(cb, "host")
        if cb_host and not re.fullmatch(r"[A-Za-z0-9.:\-\[\]]+", cb_host):
            r.problem(cb.at("host"), f"carrier '{cname}': callback host {cb_host!r} must be an address or host name")
        cb_port = int(r.number(cb, "port", 5060, low=1, high=65535, integer=True))
        cb_placeholder = cb.get("placeholder", False) is True
    matches = r.names(item, "match")
    for addr, amk in matches:
        try:
            ipaddress.ip_network(addr, strict=False)
        except ValueError:
            r.problem(amk, f"carrier '{cname}': {addr!r} is not an address or address/prefix like 10.1.2.0/24")
    return Carrier(cname, tuple(a for a, _ in matches), cb_host, cb_port, cb_placeholder, item.key_at("match") if "match" in item else item.mark)


def _operators_first(r: _Reader, doc: Map) -> OperatorsFirst:
    """`operators_first: true`, or a mapping with `enabled` and `menus` (those a caller may be
    taken out of when an operator is free; every menu when left out)."""
    value = doc.get("operators_first")
    if value is None:
        return OperatorsFirst()
    if isinstance(value, bool):
        return OperatorsFirst(enabled=value)
    if not isinstance(value, Map):
        r.problem(doc.at("operators_first"), f"operators_first must be true, false or a mapping with enabled and menus, found {value!r}")
        return OperatorsFirst()
    r.keys(value, ("enabled", "menus"), "operators_first")
    enabled = value.get("enabled", True)
    if not isinstance(enabled, bool):
        r.problem(value.at("enabled"), f"operators_first.enabled must be true or false, found {enabled!r}")
        enabled = False
    menus = tuple(n for n, _ in r.names(value, "menus")) if "menus" in value else None
    return OperatorsFirst(enabled=enabled, menus=menus)


def _key(r: _Reader, m: Map, key: str, default: str, where: str) -> str:
    value = r.text(m, key, default=default)
    if not re.fullmatch(r"[0-9*#]", value):
        r.problem(m.at(key), f"{where}.{key} must be one key: 0-9, * or #; quote it: '5'")
        return default
    return value


def _priority(r: _Reader, doc: Map) -> PriorityPolicy:
    pmap = r.mapping(doc, "priority", required=False)
    if pmap is None:
        return PriorityPolicy()
    r.keys(pmap, ("urgent_agencies", "redial_minutes"), "priority")
    return PriorityPolicy(
        urgent_agencies=tuple(n for n, _ in r.names(pmap, "urgent_agencies", required=False)),
        redial_minutes=int(r.number(pmap, "redial_minutes", 15, low=0, high=1440, integer=True)),
    )


def _silent(r: _Reader, doc: Map) -> SilentPolicy:
    smap = r.mapping(doc, "silent", required=False)
    if smap is None:
        return SilentPolicy()
    r.keys(smap, ("prompt", "key", "presses", "timeout"), "silent")
    return SilentPolicy(
        prompt=r.text(smap, "prompt"),
        key=_key(r, smap, "key", "5", "silent"),
        presses=int(r.number(smap, "presses", 2, low=1, high=3, integer=True)),
        timeout=r.number(smap, "timeout", 8.0, low=3, high=30),
    )


def _prank(r: _Reader, doc: Map) -> PrankPolicy:
    pmap = r.mapping(doc, "prank", required=False)
    if pmap is None:
        return PrankPolicy()
    r.keys(pmap, ("prompt", "count", "window_hours", "block_hours", "key", "timeout"), "prank")
    return PrankPolicy(
        prompt=r.text(pmap, "prompt"),
        count=int(r.number(pmap, "count", 3, low=1, high=100, integer=True)),
        window_hours=int(r.number(pmap, "window_hours", 24, low=1, high=720, integer=True)),
        block_hours=int(r.number(pmap, "block_hours", 24, low=1, high=720, integer=True)),
        key=_key(r, pmap, "key", "0", "prank"),
        timeout=r.number(pmap, "timeout", 8.0, low=3, high=30),
    )


def _location(r: _Reader, doc: Map, source: str) -> LocationPolicy:
    lmap = r.mapping(doc, "location", required=False)
    if lmap is None:
        return LocationPolicy()
    keys = ("boundaries", "good_radius_m", "ask_prompt", "record_seconds", "silence_seconds", "aml_window_minutes", "repeat_hours",
            "dereference", "kecamatan_prompt", "kecamatan", "kecamatan_timeout")
    r.keys(lmap, keys, "location")
    dereference = lmap.get("dereference", False)
    if not isinstance(dereference, bool):
        r.problem(lmap.at("dereference"), "location.dereference must be true or false")
        dereference = False
    policy = LocationPolicy(
        boundaries=r.text(lmap, "boundaries", default=""),
        good_radius_m=r.number(lmap, "good_radius_m", 1000.0, low=1, high=100_000),
        ask_prompt=r.text(lmap, "ask_prompt", default=""),
        record_seconds=int(r.number(lmap, "record_seconds", 20, low=3, high=120, integer=True)),
        silence_seconds=int(r.number(lmap, "silence_seconds", 3, low=1, high=10, integer=True)),
        aml_window_minutes=int(r.number(lmap, "aml_window_minutes", 60, low=1, high=1440, integer=True)),
        repeat_hours=int(r.number(lmap, "repeat_hours", 24, low=0, high=720, integer=True)),
        dereference=dereference,
        kecamatan_prompt=r.text(lmap, "kecamatan_prompt", default=""),
        kecamatan=_kecamatan_numbers(r, lmap),
        kecamatan_timeout=r.number(lmap, "kecamatan_timeout", 5.0, low=1, high=20),
    )
    path = policy.boundaries_path(source)
    if path is not None and not path.exists():
        r.problem(lmap.at("boundaries"), f"location.boundaries file {path} does not exist; give a GeoJSON of the kecamatan")
        return policy
    if policy.kecamatan_prompt and not policy.kecamatan:
        r.problem(lmap.at("kecamatan_prompt"), "location.kecamatan_prompt needs location.kecamatan: the numbers a caller keys in, '1': Baamang, ...")
    if policy.kecamatan and path is None:
        r.problem(lmap.at("kecamatan"), "location.kecamatan needs location.boundaries, the GeoJSON that names the kecamatan")
    elif policy.kecamatan and path is not None:
        try:
            known = set(load_boundaries(path).names)
        except (OSError, ValueError) as exc:
            r.problem(lmap.at("boundaries"), f"location.boundaries file {path} is unusable: {exc}")
            return policy
        kmap = lmap["kecamatan"]
        for digits, name in policy.kecamatan.items():
            if name not in known:
                r.problem(kmap.at(digits), f"location.kecamatan {digits!r}: {name!r} is not a kecamatan in {path.name}; known: {', '.join(sorted(known))}")
    return policy


def _kecamatan_numbers(r: _Reader, lmap: Map) -> dict[str, str]:
    """location.kecamatan: keypad numbers (one or two digits) to kecamatan names."""
    kmap = r.mapping(lmap, "kecamatan", required=False)
    out: dict[str, str] = {}
    for digits, name in (kmap or {}).items():
        assert kmap is not None
        if not isinstance(digits, str) or not re.fullmatch(r"[0-9]{1,2}", digits):
            r.problem(kmap.key_at(digits), f"location.kecamatan: number {digits!r} must be one or two digits, quoted: '7'")
            continue
        if not isinstance(name, str) or not name.strip():
            r.problem(kmap.at(digits), f"location.kecamatan {digits!r} must name a kecamatan")
            continue
        out[digits] = name.strip()
    return out


def _agencies(r: _Reader, doc: Map) -> dict[str, Agency]:
    agencies: dict[str, Agency] = {}
    amap = r.mapping(doc, "agencies", required=False)
    for aname, aval in (amap or {}).items():
        assert amap is not None
        if not NAME_RE.match(aname):
            r.problem(amap.key_at(aname), f"agency name {aname!r} must be lower-case letters, digits or '_'")
        if not isinstance(aval, Map):
            r.problem(amap.at(aname), f"agency '{aname}' must be a mapping with label, trunks and on_failure")
            continue
        r.keys(aval, ("label", "trunks", "on_failure", "ring_timeout", "response_timeout", "location", "share_recordings"),
               f"agency '{aname}'")
        label = r.text(aval, "label", default=aname)
        default_ring = int(r.number(aval, "ring_timeout", 20, low=5, high=120, integer=True))
        default_response = r.number(aval, "response_timeout", RESPONSE_TIMEOUT_S, low=0.5, high=30)
        trunks: list[Trunk] = []
        tval = aval.get("trunks")
        if not isinstance(tval, Seq) or not tval:
            r.problem(aval.at("trunks") if "trunks" in aval else aval.mark, f"agency '{aname}' needs 'trunks': a list of {{host, port, number}}, tried in order")
        else:
            for item, mk in zip(tval, tval.item_marks, strict=True):
                if not isinstance(item, Map):
                    r.problem(mk, f"agency '{aname}': a trunk must be a mapping with host, port and number")
                    continue
                r.keys(item, ("host", "port", "number", "ring_timeout", "response_timeout", "username", "password", "transport", "placeholder"),
                       f"agency '{aname}' trunk")
                host = r.text(item, "host")
                if host and not re.fullmatch(r"[A-Za-z0-9.:\-\[\]]+", host):
                    r.problem(item.at("host"), f"agency '{aname}': trunk host {host!r} must be an address or host name")
                number = r.text(item, "number")
                if number and not DIAL_RE.match(number):
                    r.problem(item.at("number"), f"agency '{aname}': number to dial {number!r} must be digits (with + * #)")
                transport = r.text(item, "transport", default="udp")
                if transport not in ("udp", "tcp"):
                    r.problem(item.at("transport"), f"agency '{aname}': transport must be udp or tcp, found {transport!r}")
                placeholder = item.get("placeholder", False)
                trunks.append(
                    Trunk(
                        host=host,
                        port=int(r.number(item, "port", 5060, low=1, high=65535, integer=True)),
                        number=number,
                        ring_timeout=int(r.number(item, "ring_timeout", default_ring, low=5, high=120, integer=True)),
                        response_timeout=r.number(item, "response_timeout", default_response, low=0.5, high=30),
                        username=r.text(item, "username", default=""),
                        password=r.text(item, "password", default=""),
                        transport=transport,
                        placeholder=placeholder is True,
                        mark=mk,
                    )
                )
        on_failure = None
        if "on_failure" in aval:
            on_failure = r.target(aval["on_failure"], aval.at("on_failure"), f"agency '{aname}' on_failure")
        else:
            r.problem(
                amap.key_at(aname),
                f"agency '{aname}' has no on_failure rule; add 'on_failure: {{queue: operators}}' so a caller whose agency does not answer reaches a person",
            )
        location, recordings = _agency_data(r, aval, aname)
        agencies[aname] = Agency(aname, label, tuple(trunks), on_failure or Target("queue", ""), amap.key_at(aname),
                                 location=location, share_recordings=recordings)
    return agencies


def _agency_data(r: _Reader, aval: Map, aname: str) -> tuple[str, bool]:
    """What of the incident leaves the centre with a call to this agency (docs/agencies.md)."""
    location = aval.get("location", "value")
    if location not in LOCATION_MODES:
        r.problem(aval.at("location"), f"agency '{aname}': location must be one of {', '.join(LOCATION_MODES)}, found {location!r}")
        location = "value"
    recordings = aval.get("share_recordings", False)
    if not isinstance(recordings, bool):
        r.problem(aval.at("share_recordings"), f"agency '{aname}': share_recordings must be true or false (recordings are personal data)")
        recordings = False
    return str(location), recordings
