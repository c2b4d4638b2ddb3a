"""PIDF-LO (RFC 4119, shapes of RFC 5491 §5, civic address of RFC 5139) into `Location`s, the
same from Asterisk's GEOLOC_PROFILE(location_info) text, and the PIDF part of a multipart
SIP body. Hostile XML (entities, DTDs, huge bodies) is refused by defusedxml, never expanded.

Each shape is read on its own: a shape with bad numbers or impossible coordinates is left out
and named; LocationParseError comes only when nothing usable remains.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import Message
from email.parser import BytesParser
from xml.etree.ElementTree import Element, ParseError

# No stubs for defusedxml in the venv; what we use is typed below (`_parse_xml`).
from defusedxml import DefusedXmlException  # type: ignore[import-untyped]
from defusedxml.ElementTree import fromstring  # type: ignore[import-untyped]

from ivr.location import Location, LocationParseError
from ivr.location.geo import haversine_m

PIDF_CONTENT_TYPE = "application/pidf+xml"
MAX_PIDF_BYTES = 64_000
MAX_MULTIPART_BYTES = 512_000
MAX_LOCATIONS = 50  # one document never needs more; bounds what a sender can make us store
MAX_GEOLOC_INFO_CHARS = 10_000
MAX_TEXT = 200  # longest civic part, method or id kept

NAMESPACE_PREFIXES = {
    "urn:ietf:params:xml:ns:pidf": "",
    "urn:ietf:params:xml:ns:pidf:data-model": "dm",
    "urn:ietf:params:xml:ns:pidf:geopriv10": "gp",
    "http://www.opengis.net/gml": "gml",
    "http://www.opengis.net/pidflo/1.0": "gs",
    "urn:ietf:params:xml:ns:pidf:geopriv10:civicAddr": "ca",
    "urn:ietf:params:xml:ns:pidf:geopriv10:civicLoc": "cl",  # RFC 4119's first civic schema
}
METRE_UOMS = {"", "urn:ogc:def:uom:epsg::9001", "m", "metre", "metres", "meter", "meters"}
OWNERS = ("tuple", "device", "person")

# RFC 5491 shape → (our shape, the length giving the radius of uncertainty)
SHAPES: dict[str, tuple[str, str | None]] = {
    "point": ("point", None),
    "circle": ("circle", "radius"),
    "sphere": ("circle", "radius"),
    "ellipse": ("ellipse", "semimajoraxis"),
    "ellipsoid": ("ellipse", "semimajoraxis"),
    # The circle of the outer radius holds the whole band: coarse but never too small.
    "arcband": ("circle", "outerradius"),
    "polygon": ("polygon", None),
    "prism": ("polygon", None),
}
LENGTHS = ("radius", "semimajoraxis", "semiminoraxis", "verticalaxis", "innerradius", "outerradius", "height")

_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d{1,3})?")
_DMS = re.compile(r"(\d{1,3}):(\d{1,2}):(\d{1,2}(?:\.\d+)?)([NSEW])")
_KEY = re.compile(r"[A-Za-z][A-Za-z0-9_-]*")


class _Skip(Exception):
    """One shape we cannot use; the message says which element and why."""


@dataclass(frozen=True)
class _Geo:
    latitude: float
    longitude: float
    radius_m: float | None
    shape: str
    polygon: tuple[tuple[float, float], ...] = ()
    detail: dict[str, str] = field(default_factory=dict)


# Numbers and shapes, shared by the XML and the GEOLOC_PROFILE readers ------------------------


def _number(text: str, what: str) -> float:
    text = text.strip()
    if not _NUMBER.fullmatch(text):
        raise _Skip(f"{what}: expected a number, found {_clip(text)!r}")
    value = float(text)
    if not math.isfinite(value):
        raise _Skip(f"{what}: {_clip(text)!r} is too large to be a coordinate or a distance")
    return value


def _length(text: str, uom: str, what: str) -> float:
    if uom.strip().lower() not in METRE_UOMS:
        raise _Skip(f"{what}: unit {_clip(uom)!r} is not metres; expected uom=\"urn:ogc:def:uom:EPSG::9001\"")
    value = _number(text, what)
    if value < 0:
        raise _Skip(f"{what}: a distance cannot be negative, found {value:g}")
    return value


def _position(text: str, what: str) -> tuple[float, ...]:
    parts = text.split()
    if len(parts) not in (2, 3):
        raise _Skip(f"{what}: expected \"latitude longitude\" (optionally altitude), found {_clip(text)!r}")
    return tuple(_number(p, what) for p in parts)


def _position_list(text: str, dimension: int, what: str) -> list[tuple[float, ...]]:
    values = [_number(p, what) for p in text.split()]
    if not values or len(values) % dimension:
        raise _Skip(f"{what}: {len(values)} numbers do not make {dimension}-D positions")
    return [tuple(values[i : i + dimension]) for i in range(0, len(values), dimension)]


def _check(lat: float, lon: float, what: str) -> None:
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise _Skip(f"{what}: latitude {lat:g}, longitude {lon:g} is not on Earth (|lat| ≤ 90, |lon| ≤ 180; latitude comes first)")


def _centroid(ring: list[tuple[float, float]]) -> tuple[float, float]:
    """Area centroid in the lat/lon plane (fine for the few kilometres a polygon spans);
    the mean of the vertices when the ring has no area."""
    area2 = cx = cy = 0.0
    n = len(ring)
    for i in range(n):
        (y1, x1), (y2, x2) = ring[i], ring[(i + 1) % n]
        cross = x1 * y2 - x2 * y1
        area2 += cross
        cx += (x1 + x2) * cross
        cy += (y1 + y2) * cross
    if abs(area2) < 1e-18:
        return sum(p[0] for p in ring) / n, sum(p[1] for p in ring) / n
    return cy / (3 * area2), cx / (3 * area2)


def _build(kind: str, positions: list[tuple[float, ...]], lengths: dict[str, float], what: str) -> _Geo:
    shape, radius_key = SHAPES[kind]
    detail: dict[str, str] = {}
    if shape == "polygon":
        ring = [(p[0], p[1]) for p in positions]
        for lat, lon in ring:
            _check(lat, lon, what)
        if len(ring) > 1 and ring[0] == ring[-1]:
            ring.pop()
        if len(set(ring)) < 3:
            raise _Skip(f"{what}: a polygon needs at least 3 distinct positions, found {len(set(ring))}")
        lat, lon = _centroid(ring)
        return _Geo(lat, lon, max(haversine_m((lat, lon), p) for p in ring), shape, tuple(ring), detail)
    if len(positions) != 1:
        raise _Skip(f"{what}: expected one centre position, found {len(positions)}")
    pos = positions[0]
    _check(pos[0], pos[1], what)
    if len(pos) == 3:
        detail["altitude_m"] = f"{pos[2]:g}"
    radius: float | None = None
    if radius_key is not None:
        if radius_key not in lengths:
            raise _Skip(f"{what}: {kind} without its {radius_key}")
        radius = lengths[radius_key]
    if shape == "ellipse" and "semiminoraxis" in lengths:
        detail["semi_minor_m"] = f"{lengths['semiminoraxis']:g}"
    return _Geo(pos[0], pos[1], radius, shape, (), detail)


def _clip(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _iso_time(text: str) -> str:
    """ISO 8601 time in UTC, or "" when the sender's time cannot be read (it is only a note)."""
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        return ""
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC).isoformat()


# PIDF-LO XML ---------------------------------------------------------------------------------


def _local(el: Element) -> str:
    tag = el.tag if isinstance(el.tag, str) else ""
    return tag.rsplit("}", 1)[-1]


def _name(el: Element) -> str:
    """The element as a person reads it in the document: gml:pos, gs:radius, ..."""
    tag = el.tag if isinstance(el.tag, str) else "?"
    if tag.startswith("{"):
        ns, local = tag[1:].split("}", 1)
        prefix = NAMESPACE_PREFIXES.get(ns, "")
        return f"{prefix}:{local}" if prefix else local
    return tag


def _text(el: Element) -> str:
    return "".join(el.itertext()).strip()


def _child(el: Element, local: str) -> Element | None:
    return next((c for c in el if _local(c) == local), None)


def _srs(el: Element, what: str) -> int:
    """Dimension of the shape's coordinates from its srsName (EPSG 4326 is 2-D, 4979 is 3-D)."""
    srs = (el.get("srsName") or "").strip().lower()
    if not srs or srs.endswith("4326"):
        return 2
    if srs.endswith("4979"):
        return 3
    raise _Skip(f"{what}: srsName {_clip(srs)!r} is not WGS84 latitude/longitude; expected urn:ogc:def:crs:EPSG::4326")


def _dms(text: str, what: str) -> tuple[float, ...]:
    """RFC 4119's old gml:coordinates, "37:46:30N 122:25:10W"."""
    found = _DMS.findall(text)
    if len(found) != 2 or found[0][3] not in "NS" or found[1][3] not in "EW":
        raise _Skip(f"{what}: expected \"dd:mm:ssN ddd:mm:ssE\", found {_clip(text)!r}")
    out = []
    for d, m, s, hemi in found:
        value = int(d) + int(m) / 60 + float(s) / 3600
        out.append(-value if hemi in "SW" else value)
    return tuple(out)


def _xml_shape(el: Element, where: str) -> _Geo:
    kind = _local(el).lower()
    what = f"{where}{_name(el)}"
    dimension = _srs(el, what)
    lengths: dict[str, float] = {}
    positions: list[tuple[float, ...]] = []
    if SHAPES[kind][0] == "polygon":
        polygon = el if kind == "polygon" else next((d for d in el.iter() if _local(d) == "Polygon"), None)
        exterior = None if polygon is None else _child(polygon, "exterior")
        ring = None if exterior is None else _child(exterior, "LinearRing")
        if ring is None or polygon is None:
            raise _Skip(f"{what}: no gml:exterior/gml:LinearRing")
        pos_list = _child(ring, "posList")
        if pos_list is not None:
            dim_attr = pos_list.get("srsDimension") or ring.get("srsDimension") or ""
            if dim_attr.strip() in ("2", "3"):
                dimension = int(dim_attr)
            positions = _position_list(_text(pos_list), dimension, f"{what} {_name(pos_list)}")
        else:
            positions = [_position(_text(p), f"{what} {_name(p)}") for p in ring if _local(p) == "pos"]
    else:
        pos = _child(el, "pos")
        coordinates = _child(el, "coordinates")
        if pos is not None:
            positions = [_position(_text(pos), f"{what} {_name(pos)}")]
        elif coordinates is not None:
            positions = [_dms(_text(coordinates), f"{what} {_name(coordinates)}")]
        for c in el:
            if _local(c).lower() in LENGTHS:
                lengths[_local(c).lower()] = _length(_text(c), c.get("uom") or "", f"{what} {_name(c)}")
    geo = _build(kind, positions, lengths, what)
    return geo if kind in ("point", "circle", "ellipse", "polygon") else _with(geo, gml_shape=_local(el))


def _with(geo: _Geo, **more: str) -> _Geo:
    return _Geo(geo.latitude, geo.longitude, geo.radius_m, geo.shape, geo.polygon, {**geo.detail, **more})


def _civic(el: Element) -> dict[str, str]:
    out: dict[str, str] = {}
    for c in el:
        key, value = _local(c), _text(c)
        if value and _KEY.fullmatch(key) and len(out) < 60:
            out[key] = value[:MAX_TEXT]
    return out


def _parse_xml(xml: bytes | str, max_bytes: int) -> Element:
    size = len(xml.encode("utf-8", "surrogatepass")) if isinstance(xml, str) else len(xml)
    if size > max_bytes:
        raise LocationParseError(f"PIDF-LO of {size} bytes refused: more than the {max_bytes} bytes a location document needs")
    if not xml.strip():
        raise LocationParseError("PIDF-LO is empty: expected a <presence> document")
    try:
        root: Element = fromstring(xml, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        raise LocationParseError(f"PIDF-LO refused: it declares a DTD or entities ({type(exc).__name__}); a PIDF-LO needs neither") from exc
    except ParseError as exc:
        raise LocationParseError(f"PIDF-LO is not well-formed XML: {exc}") from exc
    except (ValueError, LookupError, UnicodeError) as exc:  # unknown or lying encoding declarations
        raise LocationParseError(f"PIDF-LO cannot be read as XML text: {exc}") from exc
    if _local(root) != "presence":
        raise LocationParseError(f"expected a PIDF <presence> document, found <{_name(root)}>")
    return root


def parse_pidf(xml: bytes | str, *, max_bytes: int = MAX_PIDF_BYTES) -> list[Location]:
    """Every usable position in a PIDF-LO document, in document order (source "pidf"): one per
    geodetic shape, carrying the civic address given beside it, or a civic-only Location
    (shape "civic"). Raises LocationParseError when nothing usable is in it."""
    root = _parse_xml(xml, max_bytes)
    entity = (root.get("entity") or "")[:MAX_TEXT]
    found: list[Location] = []
    problems: list[str] = []
    geoprivs = 0
    for owner in root:
        kind = _local(owner)
        if kind not in OWNERS:
            continue
        owner_id = (owner.get("id") or "")[:MAX_TEXT]
        where = f"{kind} {owner_id!r}: " if owner_id else f"{kind}: "
        timestamp = _child(owner, "timestamp")
        measured_at = _iso_time(_text(timestamp)) if timestamp is not None else ""
        device_id = _child(owner, "deviceID")
        detail = {"element": kind, "id": owner_id, "entity": entity, "device_id": _text(device_id)[:MAX_TEXT] if device_id is not None else ""}
        detail = {k: v for k, v in detail.items() if v}
        for geopriv in (g for g in owner.iter() if _local(g) == "geopriv"):
            geoprivs += 1
            method_el = _child(geopriv, "method")
            method = _text(method_el)[:MAX_TEXT] if method_el is not None else ""
            for info in (i for i in geopriv if _local(i) == "location-info"):
                shapes: list[_Geo] = []
                civic: dict[str, str] = {}
                # RFC 4119 wrapped its gml:Point in a gml:location element.
                children = [s for c in info for s in (list(c) if _local(c) == "location" else [c])]
                for shape in children:
                    local = _local(shape)
                    if local == "civicAddress":
                        civic.update(_civic(shape))
                        if not civic:
                            problems.append(f"{where}{_name(shape)} has no address parts")
                    elif local.lower() in SHAPES:
                        try:
                            shapes.append(_xml_shape(shape, where))
                        except _Skip as exc:
                            problems.append(str(exc))
                for geo in shapes:
                    found.append(Location(
                        source="pidf", latitude=geo.latitude, longitude=geo.longitude, radius_m=geo.radius_m, shape=geo.shape,
                        method=method, measured_at=measured_at, civic=dict(civic), polygon=geo.polygon, detail={**detail, **geo.detail},
                    ))
                if civic and not shapes:
                    found.append(Location(source="pidf", shape="civic", method=method, measured_at=measured_at, civic=civic,
                                          detail=dict(detail)))
    if found:
        return found[:MAX_LOCATIONS]
    if problems:
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        raise LocationParseError("no usable location in the PIDF-LO: " + "; ".join(problems[:3]) + more)
    if not geoprivs:
        raise LocationParseError("the PIDF document carries no location: no gp:geopriv in any tuple, dm:device or dm:person")
    raise LocationParseError("the PIDF-LO has gp:geopriv but no shape or ca:civicAddress in its gp:location-info")


# Asterisk's GEOLOC_PROFILE(location_info) ----------------------------------------------------


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
            raise LocationParseError(f"GEOLOC_PROFILE location_info: expected key=\"value\" at character {i + 1}, found {_clip(text[i:], 30)!r}")
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
        raise LocationParseError(f"GEOLOC_PROFILE format {_clip(format)!r} unknown; expected GML, civicAddress or URI")
    return _geoloc_gml(pairs, method)


def _geoloc_gml(pairs: list[tuple[str, str]], method: str) -> Location:
    """GEOLOC_PROFILE's GML shape (shape=..., pos=..., radius=...) as a Location."""
    shape = next((v for k, v in pairs if k.lower() == "shape"), "").strip()
    if shape.lower() not in SHAPES:
        raise LocationParseError(f"GEOLOC_PROFILE location_info: shape {_clip(shape)!r} unknown; expected one of Point, Circle, Ellipse, Polygon, ...")
    crs = next((v for k, v in pairs if k.lower() == "crs"), "").strip().lower()
    if crs not in ("", "2d", "3d", "unknown"):
        raise LocationParseError(f"GEOLOC_PROFILE location_info: crs {_clip(crs)!r} unknown; expected 2d or 3d")
    try:
        positions, lengths = _gml_figures(pairs, crs)
        geo = _build(shape.lower(), positions, lengths, f"GEOLOC_PROFILE {shape}")
    except _Skip as exc:
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
            positions.append(_position(value, key))
        elif k in ("poslist", "points"):
            positions.extend(_position_list(value, 3 if crs == "3d" else 2, key))
        elif k in LENGTHS:
            number, unit = _unit_split(value)
            lengths[k] = _length(number, unit, key)
    return positions, lengths


# Multipart SIP bodies -------------------------------------------------------------------------


def multipart_pidf(body: bytes, content_type: str, *, max_bytes: int = MAX_MULTIPART_BYTES) -> bytes | None:
    """The application/pidf+xml part of a SIP body (the body itself when it is one), or None
    when there is none. Transfer encodings (base64, quoted-printable) are undone."""
    if len(body) > max_bytes:
        raise LocationParseError(f"SIP body of {len(body)} bytes refused (at most {max_bytes})")
    ctype = content_type.split(";", 1)[0].strip().lower()
    if ctype == PIDF_CONTENT_TYPE:
        return body
    if not ctype.startswith("multipart/"):
        return None
    header = " ".join(content_type.split())  # no CR/LF: the header must stay one line
    message: Message = BytesParser().parsebytes(b"Content-Type: " + header.encode("utf-8", "replace") + b"\r\n\r\n" + body)
    for part in message.walk():
        if part.get_content_type() == PIDF_CONTENT_TYPE:
            payload = part.get_payload(decode=True)
            if isinstance(payload, bytes) and payload.strip():
                return payload
    return None
