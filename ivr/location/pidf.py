"""PIDF-LO (RFC 4119, shapes of RFC 5491 §5, civic address of RFC 5139) into `Location`s, and
the PIDF part of a multipart SIP body. Hostile XML (entities, DTDs, huge bodies) is refused by
defusedxml, never expanded. The numbers and shapes are read by `ivr.location.shapes`; the same
location as Asterisk's GEOLOC_PROFILE text, by `ivr.location.geoloc_profile`.

Each shape is read on its own: a shape with bad numbers or impossible coordinates is left out
and named; LocationParseError comes only when nothing usable remains.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from email.message import Message
from email.parser import BytesParser
from xml.etree.ElementTree import Element, ParseError

# No stubs for defusedxml in the venv; what we use is typed below (`_parse_xml`).
from defusedxml import DefusedXmlException  # type: ignore[import-untyped]
from defusedxml.ElementTree import fromstring  # type: ignore[import-untyped]

from ivr.location import Location, LocationParseError, shapes

PIDF_CONTENT_TYPE = "application/pidf+xml"
MAX_PIDF_BYTES = 64_000
MAX_MULTIPART_BYTES = 512_000
MAX_LOCATIONS = 50  # one document never needs more; bounds what a sender can make us store
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
OWNERS = ("tuple", "device", "person")

_DMS = re.compile(r"(\d{1,3}):(\d{1,2}):(\d{1,2}(?:\.\d+)?)([NSEW])")
_KEY = re.compile(r"[A-Za-z][A-Za-z0-9_-]*")


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
    raise shapes.Skip(f"{what}: srsName {shapes.clip(srs)!r} is not WGS84 latitude/longitude; expected urn:ogc:def:crs:EPSG::4326")


def _dms(text: str, what: str) -> tuple[float, ...]:
    """RFC 4119's old gml:coordinates, "37:46:30N 122:25:10W"."""
    found = _DMS.findall(text)
    if len(found) != 2 or found[0][3] not in "NS" or found[1][3] not in "EW":
        raise shapes.Skip(f"{what}: expected \"dd:mm:ssN ddd:mm:ssE\", found {shapes.clip(text)!r}")
    out = []
    for d, m, s, hemi in found:
        value = int(d) + int(m) / 60 + float(s) / 3600
        out.append(-value if hemi in "SW" else value)
    return tuple(out)


def _xml_shape(el: Element, where: str) -> shapes.Geo:
    kind = _local(el).lower()
    what = f"{where}{_name(el)}"
    dimension = _srs(el, what)
    lengths: dict[str, float] = {}
    positions: list[tuple[float, ...]] = []
    if shapes.SHAPES[kind][0] == "polygon":
        polygon = el if kind == "polygon" else next((d for d in el.iter() if _local(d) == "Polygon"), None)
        exterior = None if polygon is None else _child(polygon, "exterior")
        ring = None if exterior is None else _child(exterior, "LinearRing")
        if ring is None or polygon is None:
            raise shapes.Skip(f"{what}: no gml:exterior/gml:LinearRing")
        pos_list = _child(ring, "posList")
        if pos_list is not None:
            dim_attr = pos_list.get("srsDimension") or ring.get("srsDimension") or ""
            if dim_attr.strip() in ("2", "3"):
                dimension = int(dim_attr)
            positions = shapes.position_list(_text(pos_list), dimension, f"{what} {_name(pos_list)}")
        else:
            positions = [shapes.position(_text(p), f"{what} {_name(p)}") for p in ring if _local(p) == "pos"]
    else:
        pos = _child(el, "pos")
        coordinates = _child(el, "coordinates")
        if pos is not None:
            positions = [shapes.position(_text(pos), f"{what} {_name(pos)}")]
        elif coordinates is not None:
            positions = [_dms(_text(coordinates), f"{what} {_name(coordinates)}")]
        for c in el:
            if _local(c).lower() in shapes.LENGTHS:
                lengths[_local(c).lower()] = shapes.length(_text(c), c.get("uom") or "", f"{what} {_name(c)}")
    geo = shapes.build(kind, positions, lengths, what)
    return geo if kind in ("point", "circle", "ellipse", "polygon") else shapes.with_detail(geo, gml_shape=_local(el))



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
                read: list[shapes.Geo] = []
                civic: dict[str, str] = {}
                # RFC 4119 wrapped its gml:Point in a gml:location element.
                children = [s for c in info for s in (list(c) if _local(c) == "location" else [c])]
                for shape in children:
                    local = _local(shape)
                    if local == "civicAddress":
                        civic.update(_civic(shape))
                        if not civic:
                            problems.append(f"{where}{_name(shape)} has no address parts")
                    elif local.lower() in shapes.SHAPES:
                        try:
                            read.append(_xml_shape(shape, where))
                        except shapes.Skip as exc:
                            problems.append(str(exc))
                for geo in read:
                    found.append(Location(
                        source="pidf", latitude=geo.latitude, longitude=geo.longitude, radius_m=geo.radius_m, shape=geo.shape,
                        method=method, measured_at=measured_at, civic=dict(civic), polygon=geo.polygon, detail={**detail, **geo.detail},
                    ))
                if civic and not read:
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
