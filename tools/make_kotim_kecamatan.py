"""Make dialplans/kotim-kecamatan.geojson: a COARSE stand-in for Kotim's kecamatan boundaries,
made without internet as Voronoi cells around approximate kecamatan capitals, clipped to a
rough outline of the regency. Replace it with BIG/BPS boundaries as soon as they are at hand.

Run: python tools/make_kotim_kecamatan.py [--output PATH]. Deterministic; stdlib only.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

# (kecamatan, capital, lat, lon): approximate positions from general knowledge of the regency
# (Sampit about -2.53, 112.95 on the west bank of the Mentaya), NOT surveyed. The three town
# kecamatan are placed so Sampit's centre falls in Mentawa Baru Ketapang, the town's north-east
# in Baamang, and the east bank in Seranau.
CAPITALS: list[tuple[str, str, float, float]] = [
    ("Mentawa Baru Ketapang", "Sampit (Ketapang)", -2.5400, 112.9350),
    ("Baamang", "Baamang Tengah", -2.5050, 112.9650),
    ("Seranau", "Mentaya Seberang", -2.5550, 112.9850),
    ("Mentaya Hilir Utara", "Bagendang", -2.7000, 112.9700),
    ("Pulau Hanaut", "Bapinang", -2.8500, 113.0500),
    ("Mentaya Hilir Selatan", "Samuda", -2.9700, 112.9800),
    ("Teluk Sampit", "Ujung Pandaran", -3.1000, 112.8800),
    ("Kota Besi", "Kota Besi Hilir", -2.2800, 112.8200),
    ("Telawang", "Kenyala", -2.4000, 112.6200),
    ("Cempaga", "Cempaka Mulia", -2.3500, 113.0500),
    ("Cempaga Hulu", "Pundu", -2.1000, 113.2000),
    ("Parenggean", "Parenggean", -1.9800, 112.7500),
    ("Tualan Hulu", "Luwuk Sampun", -1.7200, 112.8500),
    ("Mentaya Hulu", "Kuala Kuayan", -1.8300, 112.5500),
    ("Telaga Antang", "Tumbang Mangkup", -1.6000, 112.5000),
    ("Antang Kalang", "Tumbang Kalang", -1.4000, 112.4500),
    ("Bukit Santuai", "Tumbang Penyahuan", -1.2000, 112.3000),
]

# A convex outline of the regency, (lat, lon) clockwise from the north-west: lat -3.2 to -1.0
# (the Java Sea south of about -3.2), lon 112.2 to 113.5. Rough on purpose.
OUTLINE: list[tuple[float, float]] = [
    (-1.00, 112.20),
    (-1.00, 112.80),
    (-2.00, 113.50),
    (-3.20, 113.50),
    (-3.20, 112.50),
    (-2.30, 112.20),
]

LAT0 = -2.3  # the regency's middle latitude: east-west degrees shrink by cos(LAT0)
DIGITS = 6  # about 0.1 m: far finer than the cells are right

Point = tuple[float, float]  # planar (x = lon·cos(LAT0), y = lat)


def to_plane(lat: float, lon: float) -> Point:
    return lon * math.cos(math.radians(LAT0)), lat


def from_plane(p: Point) -> tuple[float, float]:
    return p[1], p[0] / math.cos(math.radians(LAT0))


def clip(polygon: list[Point], normal: Point, offset: float) -> list[Point]:
    """Sutherland-Hodgman against one half-plane: keep points with normal·p <= offset."""
    def side(p: Point) -> float:
        return normal[0] * p[0] + normal[1] * p[1] - offset

    out: list[Point] = []
    for i, cur in enumerate(polygon):
        nxt = polygon[(i + 1) % len(polygon)]
        a, b = side(cur), side(nxt)
        if a <= 0:
            out.append(cur)
        if (a <= 0) != (b <= 0):
            t = a / (a - b)
            out.append((cur[0] + t * (nxt[0] - cur[0]), cur[1] + t * (nxt[1] - cur[1])))
    return out


def voronoi_cell(i: int, sites: list[Point], bounds: list[Point]) -> list[Point]:
    """The part of `bounds` nearer to sites[i] than to any other site."""
    cell = list(bounds)
    si = sites[i]
    for j, sj in enumerate(sites):
        if j == i:
            continue
        # |p - si|² <= |p - sj|²  ⇔  (sj - si)·p <= (|sj|² - |si|²) / 2
        normal = (sj[0] - si[0], sj[1] - si[1])
        offset = (sj[0] ** 2 + sj[1] ** 2 - si[0] ** 2 - si[1] ** 2) / 2
        cell = clip(cell, normal, offset)
    return cell


def signed_area(ring: list[tuple[float, float]]) -> float:
    """Shoelace over (lon, lat): positive when counter-clockwise (GeoJSON's exterior order)."""
    return sum(ring[k][0] * ring[(k + 1) % len(ring)][1] - ring[(k + 1) % len(ring)][0] * ring[k][1] for k in range(len(ring))) / 2


def is_convex(outline: list[tuple[float, float]]) -> bool:
    n = len(outline)
    signs = set()
    for k in range(n):
        (y1, x1), (y2, x2), (y3, x3) = outline[k], outline[(k + 1) % n], outline[(k + 2) % n]
        cross = (x2 - x1) * (y3 - y2) - (y2 - y1) * (x3 - x2)
        signs.add(cross > 0)
    return len(signs) == 1


def build() -> dict[str, object]:
    assert is_convex(OUTLINE), "the outline must stay convex for half-plane clipping to be exact"
    sites = [to_plane(lat, lon) for _, _, lat, lon in CAPITALS]
    bounds = [to_plane(lat, lon) for lat, lon in OUTLINE]
    features = []
    for i, (name, capital, lat, lon) in enumerate(CAPITALS):
        cell = [from_plane(p) for p in voronoi_cell(i, sites, bounds)]
        ring = [(round(lo, DIGITS), round(la, DIGITS)) for la, lo in cell]  # GeoJSON: [lon, lat]
        if signed_area(ring) < 0:
            ring.reverse()
        ring.append(ring[0])
        features.append({
            "type": "Feature",
            "properties": {"kecamatan": name, "capital": capital, "capital_lat": lat, "capital_lon": lon},
            "geometry": {"type": "Polygon", "coordinates": [[list(p) for p in ring]]},
        })
    return {
        "type": "FeatureCollection",
        "metadata": {
            "source": "Voronoi cells around approximate kecamatan capitals; made by tools/make_kotim_kecamatan.py; NOT surveyed boundaries",
            "accuracy": "several kilometres; cells near borders may name the wrong kecamatan",
            "replace_with": "official BIG (Badan Informasi Geospasial) or BPS kecamatan boundaries as a GeoJSON FeatureCollection of "
                            "Polygon/MultiPolygon features, each with a 'kecamatan' property spelled as in the plan; point the plan's "
                            "location.boundaries at it",
            "regency": "Kabupaten Kotawaringin Timur (Kotim), Kalimantan Tengah",
            "outline": "convex approximation of the regency, lat -3.2 to -1.0, lon 112.2 to 113.5; the coast taken as lat -3.2",
        },
        "features": features,
    }


def render(data: dict[str, object]) -> str:
    """JSON with one feature per line: small diffs when a capital moves."""
    features = data["features"]
    assert isinstance(features, list)
    head = ",\n".join(f" {json.dumps(k)}: {json.dumps(v, ensure_ascii=False)}" for k, v in data.items() if k != "features")
    body = ",\n".join("  " + json.dumps(f, ensure_ascii=False) for f in features)
    return "{\n" + head + ',\n "features": [\n' + body + "\n ]\n}\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--output", default=str(Path(__file__).resolve().parent.parent / "dialplans" / "kotim-kecamatan.geojson"))
    args = parser.parse_args()
    data = build()
    text = render(data)
    Path(args.output).write_text(text, encoding="utf-8")
    print(f"{len(CAPITALS)} kecamatan written to {args.output} (coarse Voronoi cells, not surveyed boundaries)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
