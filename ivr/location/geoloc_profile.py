"""Asterisk's GEOLOC_PROFILE(location_info) text into a `Location`: the PIDF-LO of the INVITE
as Asterisk already read it, GML shape or civic address (RFC 4119, 5491, 5139)."""

from __future__ import annotations

import re

from ivr.location import Location, LocationParseError, shapes
from ivr.location.pidf import MAX_TEXT

MAX_GEOLOC_INFO_CHARS = 10_000

_KEY = re.compile(r"[A-Za-z][A-Za-z0-9_-]*")


def _pairs(text: str) -> list[tuple[str, str]]:
    """`key="value", key2="value, with comma"`: comma- or space-separated, values quoted or bare."""
    out: list[tuple[str, str]] = []
    i, n = 0, len(text)
    while i < n:
        while i < n and (text[i].isspace() or text[i] == ","):
            i += 1
        if i >= n:
            break
        key = _KEY.match(text, i)
        if key is None or key.end() >= n or text[key.end()] != "=":
            raise LocationParseError(f"GEOLOC_PROFILE location_info: expected key=\"value\" at character {i + 1}, found {shapes.clip(text[i:], 30)!r}")
        i = key.end() + 1
        if i < n and text[i] == '"':
            end = text.find('"', i + 1)
            if end < 0:
                raise LocationParseError(f"GEOLOC_PROFILE location_info: the value of {key.group()} has no closing quote")
            value, i = text[i + 1 : end], end + 1
        else:
            end = text.find(",", i)
            end = n if end < 0 else end
            value, i = text[i:end].strip(), end
        out.append((key.group(), value))
    return out


def _unit_split(value: str) -> tuple[str, str]:
    """'25' → ('25', ''); '25 urn:ogc:def:uom:EPSG::9001' → ('25', 'urn:...')."""
    number, _, unit = value.strip().partition(" ")
    return number, unit.strip()


def parse_geoloc_profile(location_info: str, *, format: str, method: str) -> Location | None:
    """The position Asterisk read from the INVITE's PIDF-LO (source "pidf"), from
    GEOLOC_PROFILE(location_info) with its format ("GML" or "civicAddress") and method.
    None when there is nothing to read or it is a URI (the Geolocation header carries those);
    LocationParseError when the text or its numbers are broken."""
    if len(location_info) > MAX_GEOLOC_INFO_CHARS:
        raise LocationParseError(f"GEOLOC_PROFILE location_info of {len(location_info)} characters refused (at most {MAX_GEOLOC_INFO_CHARS})")
    if not location_info.strip():
        return None
    pairs = _pairs(location_info)
    keys = {k.lower() for k, _ in pairs}
    fmt = format.strip().lower()
    if not fmt:
        fmt = "gml" if "shape" in keys else "uri" if keys == {"uri"} else "civicaddress"
    method = method.strip()[:MAX_TEXT]
    if fmt == "uri":
        return None
    if fmt == "civicaddress":
        civic = {k: v.strip()[:MAX_TEXT] for k, v in pairs if v.strip() and k.lower() != "lang"}
        if not civic:
            return None
        return Location(source="pidf", shape="civic", method=method, civic=civic, detail={"via": "GEOLOC_PROFILE"})
    if fmt != "gml":
        raise LocationParseError(f"GEOLOC_PROFILE format {shapes.clip(format)!r} unknown; expected GML, civicAddress or URI")
    return _geoloc_gml(pairs, method)


def _geoloc_gml(pairs: list[tuple[str, str]], method: str) -> Location:
    """GEOLOC_PROFILE's GML shape (shape=..., pos=..., radius=...) as a Location."""
    shape = next((v for k, v in pairs if k.lower() == "shape"), "").strip()
    if shape.lower() not in shapes.SHAPES:
        raise LocationParseError(f"GEOLOC_PROFILE location_info: shape {shapes.clip(shape)!r} unknown; expected one of Point, Circle, Ellipse, Polygon, ...")
    crs = next((v for k, v in pairs if k.lower() == "crs"), "").strip().lower()
    if crs not in ("", "2d", "3d", "unknown"):
        raise LocationParseError(f"GEOLOC_PROFILE location_info: crs {shapes.clip(crs)!r} unknown; expected 2d or 3d")
    try:
        positions, lengths = _gml_figures(pairs, crs)
        geo = shapes.build(shape.lower(), positions, lengths, f"GEOLOC_PROFILE {shape}")
    except shapes.Skip as exc:
        raise LocationParseError(str(exc)) from exc
    detail = {"via": "GEOLOC_PROFILE", **geo.detail}
    if shape.lower() not in ("point", "circle", "ellipse", "polygon"):
        detail["gml_shape"] = shape
    return Location(source="pidf", latitude=geo.latitude, longitude=geo.longitude, radius_m=geo.radius_m, shape=geo.shape,
                    method=method, polygon=geo.polygon, detail=detail)


def _gml_figures(pairs: list[tuple[str, str]], crs: str) -> tuple[list[tuple[float, ...]], dict[str, float]]:
    """The positions and lengths (radius, axes, ...) among GEOLOC_PROFILE's pairs."""
    positions: list[tuple[float, ...]] = []
    lengths: dict[str, float] = {}
    for key, value in pairs:
        k = key.lower()
        if k in ("pos", "pos3d"):
            positions.append(shapes.position(value, key))
        elif k in ("poslist", "points"):
            positions.extend(shapes.position_list(value, 3 if crs == "3d" else 2, key))
        elif k in shapes.LENGTHS:
            number, unit = _unit_split(value)
            lengths[k] = shapes.length(number, unit, key)
    return positions, lengths
