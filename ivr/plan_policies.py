"""The plan's policy sections: where the caller is (location), who goes first (priority),
silent and prank-flagged callers, operators first. Read into `ivr.plan` policies."""

from __future__ import annotations

import re

from ivr.location.geo import load_boundaries
from ivr.plan import (
    LocationPolicy,
    OperatorsFirst,
    PrankPolicy,
    PriorityPolicy,
    SilentPolicy,
)
from ivr.plan_reader import PlanReader
from ivr.yamlsrc import Map


def operators_first(r: PlanReader, doc: Map) -> OperatorsFirst:
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


def _key(r: PlanReader, m: Map, key: str, default: str, where: str) -> str:
    value = r.text(m, key, default=default)
    if not re.fullmatch(r"[0-9*#]", value):
        r.problem(m.at(key), f"{where}.{key} must be one key: 0-9, * or #; quote it: '5'")
        return default
    return value


def priority(r: PlanReader, doc: Map) -> PriorityPolicy:
    pmap = r.mapping(doc, "priority", required=False)
    if pmap is None:
        return PriorityPolicy()
    r.keys(pmap, ("urgent_agencies", "redial_minutes"), "priority")
    return PriorityPolicy(
        urgent_agencies=tuple(n for n, _ in r.names(pmap, "urgent_agencies", required=False)),
        redial_minutes=int(r.number(pmap, "redial_minutes", 15, low=0, high=1440, integer=True)),
    )


def silent(r: PlanReader, doc: Map) -> SilentPolicy:
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


def prank(r: PlanReader, doc: Map) -> PrankPolicy:
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


def location(r: PlanReader, doc: Map, source: str) -> LocationPolicy:
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


def _kecamatan_numbers(r: PlanReader, lmap: Map) -> dict[str, str]:
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
