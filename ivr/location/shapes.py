"""Numbers and shapes of a location (RFC 5491 §5), shared by the PIDF-LO XML reader
(`ivr.location.pidf`) and the GEOLOC_PROFILE reader (`ivr.location.geoloc_profile`):
checked numbers, lengths in metres, positions, and each shape turned into a centre and a
radius of uncertainty. A shape that cannot be used raises `Skip`, naming it and why.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from ivr.location.geo import haversine_m

METRE_UOMS = {"", "urn:ogc:def:uom:epsg::9001", "m", "metre", "metres", "meter", "meters"}

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


class Skip(Exception):
    """One shape we cannot use; the message says which element and why."""


@dataclass(frozen=True)
class Geo:
    """One shape read: its centre, radius of uncertainty (None for a point), outline and notes."""

    latitude: float
    longitude: float
    radius_m: float | None
    shape: str
    polygon: tuple[tuple[float, float], ...] = ()
    detail: dict[str, str] = field(default_factory=dict)



def number(text: str, what: str) -> float:
    """A finite number; Skip naming `what` otherwise."""
    text = text.strip()
    if not _NUMBER.fullmatch(text):
        raise Skip(f"{what}: expected a number, found {clip(text)!r}")
    value = float(text)
    if not math.isfinite(value):
        raise Skip(f"{what}: {clip(text)!r} is too large to be a coordinate or a distance")
    return value


def length(text: str, uom: str, what: str) -> float:
    """A distance in metres (the only unit taken); Skip otherwise."""
    if uom.strip().lower() not in METRE_UOMS:
        raise Skip(f"{what}: unit {clip(uom)!r} is not metres; expected uom=\"urn:ogc:def:uom:EPSG::9001\"")
    value = number(text, what)
    if value < 0:
        raise Skip(f"{what}: a distance cannot be negative, found {value:g}")
    return value


def position(text: str, what: str) -> tuple[float, ...]:
    """"latitude longitude" with an optional altitude."""
    parts = text.split()
    if len(parts) not in (2, 3):
        raise Skip(f"{what}: expected \"latitude longitude\" (optionally altitude), found {clip(text)!r}")
    return tuple(number(p, what) for p in parts)


def position_list(text: str, dimension: int, what: str) -> list[tuple[float, ...]]:
    """A gml:posList: `dimension` numbers per position."""
    values = [number(p, what) for p in text.split()]
    if not values or len(values) % dimension:
        raise Skip(f"{what}: {len(values)} numbers do not make {dimension}-D positions")
    return [tuple(values[i : i + dimension]) for i in range(0, len(values), dimension)]


def _check(lat: float, lon: float, what: str) -> None:
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise Skip(f"{what}: latitude {lat:g}, longitude {lon:g} is not on Earth (|lat| ≤ 90, |lon| ≤ 180; latitude comes first)")


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


def build(kind: str, positions: list[tuple[float, ...]], lengths: dict[str, float], what: str) -> Geo:
    """The shape `kind` (a key of SHAPES) from its positions and lengths, checked to be on Earth."""
    shape, radius_key = SHAPES[kind]
    detail: dict[str, str] = {}
    if shape == "polygon":
        ring = [(p[0], p[1]) for p in positions]
        for lat, lon in ring:
            _check(lat, lon, what)
        if len(ring) > 1 and ring[0] == ring[-1]:
            ring.pop()
        if len(set(ring)) < 3:
            raise Skip(f"{what}: a polygon needs at least 3 distinct positions, found {len(set(ring))}")
        lat, lon = _centroid(ring)
        return Geo(lat, lon, max(haversine_m((lat, lon), p) for p in ring), shape, tuple(ring), detail)
    if len(positions) != 1:
        raise Skip(f"{what}: expected one centre position, found {len(positions)}")
    pos = positions[0]
    _check(pos[0], pos[1], what)
    if len(pos) == 3:
        detail["altitude_m"] = f"{pos[2]:g}"
    radius: float | None = None
    if radius_key is not None:
        if radius_key not in lengths:
            raise Skip(f"{what}: {kind} without its {radius_key}")
        radius = lengths[radius_key]
    if shape == "ellipse" and "semiminoraxis" in lengths:
        detail["semi_minor_m"] = f"{lengths['semiminoraxis']:g}"
    return Geo(pos[0], pos[1], radius, shape, (), detail)


def clip(text: str, limit: int = 60) -> str:
    """`text` cut to `limit` characters for an error message."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


def with_detail(geo: Geo, **more: str) -> Geo:
    """The same shape with `more` added to its notes."""
    return Geo(geo.latitude, geo.longitude, geo.radius_m, geo.shape, geo.polygon, {**geo.detail, **more})

