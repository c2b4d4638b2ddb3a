"""Reading a plan document (YAML with marks) into the model of `ivr.plan`.

Every problem of shape or type is collected with its mark; references between parts are
checked afterwards by `ivr.validate`, on the model.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from ivr import plan_agencies
from ivr import plan_policies as policies
from ivr.plan import (
    LANGUAGES,
    NAME_RE,
    NUMBER_RE,
    QUEUE_STRATEGIES,
    Carrier,
    Entry,
    Menu,
    Overflow,
    Plan,
    Problem,
    Prompt,
    Queue,
    Target,
)
from ivr.plan_reader import PlanReader
from ivr.yamlsrc import Map, Mark, Seq


def parse(doc: Any, source: str) -> tuple[Plan | None, list[Problem]]:
    """Read a plan document into the model; problems of shape and type, all of them."""
    r = PlanReader()
    if not isinstance(doc, Map):
        return None, [Problem(Mark(source, 1, 1), "a plan must be a YAML mapping with service, prompts, entry and queues")]
    r.keys(doc, ("service", "prompts", "entry", "queues", "menus", "agencies", "carriers", "location", "priority", "silent", "prank",
                 "operators_first"), "the plan")
    # Sections in the order their problems are listed; `languages` is read first, as every
    # prompt needs a text per service language.
    plan_id, name, numbers, languages = _service(r, doc)
    prompts = _prompts(r, doc, languages)
    queues = _queues(r, doc)
    agencies = plan_agencies.agencies(r, doc)
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
        location=policies.location(r, doc, source),
        priority=policies.priority(r, doc),
        silent=policies.silent(r, doc),
        prank=policies.prank(r, doc),
        operators_first=policies.operators_first(r, doc),
    )
    return plan, r.problems


def _service(r: PlanReader, doc: Map) -> tuple[str, str, tuple[str, ...], tuple[str, ...]]:
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


def _service_numbers(r: PlanReader, service: Map) -> tuple[str, ...]:
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


def _service_languages(r: PlanReader, service: Map) -> tuple[str, ...]:
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


def _prompts(r: PlanReader, doc: Map, languages: tuple[str, ...]) -> dict[str, Prompt]:
    prompts: dict[str, Prompt] = {}
    for pname, pval, where in r.named(doc, "prompts", "prompt", "'text' per language"):
        r.keys(pval, ("text", "file"), f"prompt '{pname}'")
        texts = _prompt_texts(r, pval, pname, languages)
        prompts[pname] = Prompt(pname, texts, _prompt_files(r, pval, pname), where)
    return prompts


def _prompt_texts(r: PlanReader, pval: Map, pname: str, languages: tuple[str, ...]) -> dict[str, str]:
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


def _prompt_files(r: PlanReader, pval: Map, pname: str) -> dict[str, str]:
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


def _queues(r: PlanReader, doc: Map) -> dict[str, Queue]:
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


def _queue(r: PlanReader, qval: Map, qname: str, mark: Mark) -> Queue:
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


def _overflow(r: PlanReader, qval: Map, qname: str) -> Overflow | None:
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


def _menus(r: PlanReader, doc: Map) -> dict[str, Menu]:
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


def _menu_options(r: PlanReader, mval: Map, mname: str) -> dict[str, Target]:
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


def _entry(r: PlanReader, doc: Map) -> Entry:
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


def _carriers(r: PlanReader, doc: Map) -> tuple[Carrier, ...]:
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


def _carrier(r: PlanReader, item: Map) -> Carrier:
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
