"""Plain geometry for the call taker's screen: which kecamatan a position falls in (from a
GeoJSON boundary file), distances, and one line that says where the caller is and how sure
we are. Pure: no GIS library, no network; polygons are small enough for ray casting.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ivr.location import Location, LocationParseError

EARTH_RADIUS_M = 6_371_008.8  # mean Earth radius (IUGG), good to ~0.3 % for distances
# How close to an edge (in degrees, about 1 cm) a point counts as on it: float noise only.
EDGE_TOLERANCE_DEG = 1e-7

LatLon = tuple[float, float]
Ring = tuple[LatLon, ...]


def haversine_m(a: LatLon, b: LatLon) -> float:
    """Great-circle distance in metres between two (lat, lon) points in degrees."""
    lat1, lon1 = math.radians(a[0]), math.radians(a[1])
    lat2, lon2 = math.radians(b[0]), math.radians(b[1])
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


def _on_segment(lat: float, lon: float, p: LatLon, q: LatLon) -> bool:
    (y1, x1), (y2, x2) = p, q
    if not (min(x1, x2) - EDGE_TOLERANCE_DEG <= lon <= max(x1, x2) + EDGE_TOLERANCE_DEG):
        return False
    if not (min(y1, y2) - EDGE_TOLERANCE_DEG <= lat <= max(y1, y2) + EDGE_TOLERANCE_DEG):
        return False
    length = math.hypot(x2 - x1, y2 - y1)
    if length == 0:
        return math.hypot(lon - x1, lat - y1) <= EDGE_TOLERANCE_DEG
    cross = (x2 - x1) * (lat - y1) - (y2 - y1) * (lon - x1)
    return abs(cross) / length <= EDGE_TOLERANCE_DEG


def on_boundary(lat: float, lon: float, ring: Sequence[LatLon]) -> bool:
    """True when (lat, lon) lies on an edge or a vertex of `ring`."""
    n = len(ring)
    return any(_on_segment(lat, lon, ring[i], ring[(i + 1) % n]) for i in range(n))


def _crosses(lat: float, lon: float, ring: Sequence[LatLon]) -> bool:
    """Ray casting towards +longitude: an odd number of crossings means inside."""
    inside = False
    n = len(ring)
    for i in range(n):
        (y1, x1), (y2, x2) = ring[i], ring[(i + 1) % n]
        if (y1 > lat) != (y2 > lat):
            x_at = x1 + (lat - y1) * (x2 - x1) / (y2 - y1)
            if lon < x_at:
                inside = not inside
    return inside


def point_in_polygon(lat: float, lon: float, ring: Sequence[LatLon]) -> bool:
    """True when (lat, lon) is inside `ring` ((lat, lon) vertices, closed or not) or on its edge."""
    if len(ring) < 3:
        return False
    return on_boundary(lat, lon, ring) or _crosses(lat, lon, ring)


@dataclass(frozen=True)
class Area:
    """One part of a kecamatan: an outer ring and its holes, all (lat, lon)."""

    exterior: Ring
    holes: tuple[Ring, ...] = ()

    def contains(self, lat: float, lon: float) -> bool:
        if not point_in_polygon(lat, lon, self.exterior):
            return False
        # A point on a hole's edge is on the area's boundary, so it is inside.
        return not any(_crosses(lat, lon, h) and not on_boundary(lat, lon, h) for h in self.holes)


@dataclass(frozen=True)
class Kecamatan:
    name: str
    areas: tuple[Area, ...]
    bbox: tuple[float, float, float, float]  # min lat, min lon, max lat, max lon
    properties: dict[str, Any] = field(default_factory=dict)

    def contains(self, lat: float, lon: float) -> bool:
        s, w, n, e = self.bbox
        if not (s - EDGE_TOLERANCE_DEG <= lat <= n + EDGE_TOLERANCE_DEG and w - EDGE_TOLERANCE_DEG <= lon <= e + EDGE_TOLERANCE_DEG):
            return False
        return any(a.contains(lat, lon) for a in self.areas)


@dataclass(frozen=True)
class Boundaries:
    """The kecamatan of a regency, in file order; the first one holding a point names it."""

    kecamatan: tuple[Kecamatan, ...]
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def names(self) -> list[str]:
        return [k.name for k in self.kecamatan]

    def locate(self, lat: float, lon: float) -> str | None:
        """Name of the kecamatan holding (lat, lon), or None when it is outside all of them."""
        if not (math.isfinite(lat) and math.isfinite(lon)):
            return None
        for k in self.kecamatan:
            if k.contains(lat, lon):
                return k.name
        return None


def _ring(raw: Any, where: str, problems: list[str]) -> Ring | None:
    if not isinstance(raw, list) or len(raw) < 3:
        problems.append(f"{where}: expected a ring of at least 3 [lon, lat] positions, found {_short(raw)}")
        return None
    out: list[LatLon] = []
    for i, pos in enumerate(raw):
        ok = isinstance(pos, list) and len(pos) >= 2 and all(isinstance(v, int | float) and not isinstance(v, bool) for v in pos[:2])
        if not ok:
            problems.append(f"{where}[{i}]: expected [lon, lat] numbers, found {_short(pos)}")
            return None
        lon, lat = float(pos[0]), float(pos[1])
        if not (math.isfinite(lat) and math.isfinite(lon) and -90 <= lat <= 90 and -180 <= lon <= 180):
            problems.append(f"{where}[{i}]: [{lon}, {lat}] is not a longitude, latitude pair (GeoJSON puts longitude first)")
            return None
        out.append((lat, lon))
    if out[0] == out[-1]:
        out.pop()
    if len(set(out)) < 3:
        problems.append(f"{where}: a ring needs at least 3 distinct positions")
        return None
    return tuple(out)


def _polygon(raw: Any, where: str, problems: list[str]) -> Area | None:
    if not isinstance(raw, list) or not raw:
        problems.append(f"{where}: expected a list of rings (outer ring first), found {_short(raw)}")
        return None
    rings = [_ring(r, f"{where}[{i}]", problems) for i, r in enumerate(raw)]
    if any(r is None for r in rings):
        return None
    outer, *holes = [r for r in rings if r is not None]
    return Area(outer, tuple(holes))


def _short(value: Any) -> str:
    text = json.dumps(value) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def load_boundaries(path: Path) -> Boundaries:
    """Read a GeoJSON FeatureCollection of Polygon/MultiPolygon kecamatan (name in properties
    "kecamatan" or "name"). Features without an area (points, lines) are left out; any broken
    area refuses the whole file with every problem named (LocationParseError)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise LocationParseError(f"{path}:{exc.lineno}:{exc.colno}: not JSON: {exc.msg}") from exc
    except UnicodeDecodeError as exc:
        raise LocationParseError(f"{path}: not UTF-8 text ({exc.reason})") from exc
    if not isinstance(data, dict) or data.get("type") != "FeatureCollection" or not isinstance(data.get("features"), list):
        raise LocationParseError(f"{path}: expected a GeoJSON FeatureCollection with a list of features")
    problems: list[str] = []
    found: list[Kecamatan] = []
    for n, feature in enumerate(data["features"]):
        where = f"{path}: feature {n}"
        if not isinstance(feature, dict):
            problems.append(f"{where}: expected a Feature object")
            continue
        geometry = feature.get("geometry")
        raw_props = feature.get("properties")
        props: dict[str, Any] = raw_props if isinstance(raw_props, dict) else {}
        if not isinstance(geometry, dict) or geometry.get("type") not in ("Polygon", "MultiPolygon"):
            continue  # capitals as points, rivers as lines: not areas, nothing to locate in
        name = props.get("kecamatan") or props.get("name")
        if not isinstance(name, str) or not name.strip():
            problems.append(f"{where}: no name; give it a \"kecamatan\" (or \"name\") property")
            continue
        where = f"{where} ({name})"
        coords = geometry.get("coordinates")
        parts = [coords] if geometry["type"] == "Polygon" else coords
        if not isinstance(parts, list) or not parts:
            problems.append(f"{where}: {geometry['type']} without coordinates")
            continue
        areas = [_polygon(p, f"{where} coordinates[{i}]" if geometry["type"] == "MultiPolygon" else f"{where} coordinates", problems)
                 for i, p in enumerate(parts)]
        if any(a is None for a in areas):
            continue
        good = tuple(a for a in areas if a is not None)
        lats = [p[0] for a in good for p in a.exterior]
        lons = [p[1] for a in good for p in a.exterior]
        found.append(Kecamatan(name.strip(), good, (min(lats), min(lons), max(lats), max(lons)), dict(props)))
    if problems:
        raise LocationParseError("kecamatan boundaries refused:\n" + "\n".join(problems))
    if not found:
        raise LocationParseError(f"{path}: no Polygon or MultiPolygon feature: nothing to locate a caller in")
    metadata = data.get("metadata")
    return Boundaries(tuple(found), dict(metadata) if isinstance(metadata, dict) else {})


_SOURCE_LABELS = {
    "id": {"pidf": "SIP PIDF-LO", "reference": "referensi SIP", "cell": "sel", "aml_http": "AML", "aml_sms": "AML",
           "keypad": "pilihan penelepon", "repeat": "lokasi terakhir nomor ini"},
    "en": {"pidf": "SIP PIDF-LO", "reference": "SIP reference", "cell": "cell", "aml_http": "AML", "aml_sms": "AML",
           "keypad": "caller's choice", "repeat": "this number's last position"},
}
_WORDS = {
    "id": {"outside": "di luar Kotim", "unknown": "posisi tidak diketahui", "by_reference": "lokasi lewat referensi",
           "no_cell": "sel {cell} tidak ada di tabel sel"},
    "en": {"outside": "outside Kotim", "unknown": "position unknown", "by_reference": "location by reference",
           "no_cell": "cell {cell} is not in the cell table"},
}
# The method says nothing more than the source label for these sources.
_METHOD_SAID_BY_SOURCE = {"cell", "keypad"}


def _radius_text(radius_m: float, lang: str) -> str:
    if radius_m < 1000:
        return f"±{round(radius_m)} m"
    km = f"{radius_m / 1000:.1f}"
    return f"±{km.replace('.', ',') if lang == 'id' else km} km"


def _civic_text(civic: dict[str, str]) -> str:
    road = " ".join(civic[k] for k in ("PRD", "RD", "A6", "STS", "POD") if civic.get(k))
    house = "".join(civic[k] for k in ("HNO", "HNS") if civic.get(k))
    parts = [civic.get("NAM", ""), civic.get("LMK", ""), f"{road} {house}".strip(), civic.get("A5", ""), civic.get("A4", ""),
             civic.get("A3", "")]
    return ", ".join(p for p in parts if p)


def describe(location: Location, kecamatan: str | None, *, lang: str = "id", boundaries_known: bool = True) -> str:
    """One line for the call taker: where (kecamatan), how precise, and from what source.
    "Kecamatan Baamang, ±25 m (AML, GPS)" in Indonesian; "Baamang district, ..." in English
    ("en"); any other language reads Indonesian. A position in no kecamatan reads "di luar
    Kotim", unless `boundaries_known` is False (no boundary file loaded): then nothing is said
    about the place rather than something wrong."""
    lang = "en" if lang.lower().startswith("en") else "id"
    words = _WORDS[lang]
    kecamatan = kecamatan or location.detail.get("kecamatan") or None
    parts: list[str] = []
    if kecamatan:
        parts.append(f"{kecamatan} district" if lang == "en" else f"Kecamatan {kecamatan}")
    elif location.has_position and boundaries_known:
        parts.append(words["outside"])
    if location.source == "cell" and not location.has_position and location.detail.get("cell"):
        parts.append(words["no_cell"].format(cell=location.detail["cell"]))
    civic = _civic_text(location.civic) if location.civic else ""
    if civic and not location.has_position:
        parts.append(civic)
    if location.uri and not location.has_position:
        parts.append(f"{words['by_reference']} {location.uri}")
    if location.radius_m is not None and location.has_position and math.isfinite(location.radius_m):
        parts.append(_radius_text(location.radius_m, lang))
    if not parts:
        parts.append(words["unknown"])
    label = _SOURCE_LABELS[lang].get(location.source, location.source)
    said = [label]
    method = location.method.strip()
    if method and method.lower() not in ("none", label.lower()) and location.source not in _METHOD_SAID_BY_SOURCE:
        said.append(method)
    return f"{', '.join(parts)} ({', '.join(said)})"
