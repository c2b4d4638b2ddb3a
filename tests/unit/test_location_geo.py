"""Which kecamatan a caller is in and how the call taker reads it: point-in-polygon at its edge
cases, boundary files with holes and several parts, one line in Indonesian or English, and the
coarse Kotim boundary file we ship (17 kecamatan, Sampit where it should be, honest metadata)."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from ivr.location import Location, LocationParseError
from ivr.location.geo import Boundaries, describe, haversine_m, load_boundaries, point_in_polygon

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "dialplans" / "kotim-kecamatan.geojson"
KOTIM_KECAMATAN = {
    "Antang Kalang", "Baamang", "Bukit Santuai", "Cempaga", "Cempaga Hulu", "Kota Besi", "Mentawa Baru Ketapang",
    "Mentaya Hilir Selatan", "Mentaya Hilir Utara", "Mentaya Hulu", "Parenggean", "Pulau Hanaut", "Seranau", "Telaga Antang",
    "Telawang", "Teluk Sampit", "Tualan Hulu",
}
SAMPIT = (-2.5330, 112.9500)

SQUARE = [(0.0, 0.0), (0.0, 10.0), (10.0, 10.0), (10.0, 0.0)]  # (lat, lon)
# A "U" open to the north: the notch between the arms is outside.
U_SHAPE = [(0.0, 0.0), (0.0, 9.0), (9.0, 9.0), (9.0, 6.0), (3.0, 6.0), (3.0, 3.0), (9.0, 3.0), (9.0, 0.0)]


# Point in polygon --------------------------------------------------------------------------------


@pytest.mark.parametrize(("lat", "lon", "inside"), [
    (5, 5, True), (0.001, 9.999, True),
    (-1, 5, False), (5, 11, False), (11, 11, False), (5, -0.0001, False),
    (0, 0, True), (10, 10, True), (0, 10, True),  # vertices
    (0, 5, True), (10, 5, True), (5, 0, True), (5, 10, True),  # edges
])
def test_a_square_holds_its_inside_its_edges_and_its_vertices(lat: float, lon: float, inside: bool) -> None:
    assert point_in_polygon(lat, lon, SQUARE) is inside
    assert point_in_polygon(lat, lon, [*SQUARE, SQUARE[0]]) is inside  # closed ring, same answer
    assert point_in_polygon(lat, lon, SQUARE[::-1]) is inside  # either winding


def test_a_diagonal_edge_counts_as_inside() -> None:
    triangle = [(0.0, 0.0), (10.0, 10.0), (0.0, 10.0)]
    assert point_in_polygon(5.0, 5.0, triangle)
    assert point_in_polygon(-2.53, 112.95, [(-2.6, 112.9), (-2.46, 113.0), (-2.6, 113.0)])  # on the diagonal (-2.53 = mid)
    assert not point_in_polygon(5.1, 5.0, triangle)


@pytest.mark.parametrize(("lat", "lon", "inside"), [
    (1, 1, True), (6, 1.5, True), (6, 7.5, True),  # the base and both arms
    (6, 4.5, False), (8.9, 4.5, False),  # in the notch
    (3, 4.5, True), (6, 3, True), (6, 6, True),  # the notch's edges
    (9, 1.5, True), (9, 4.5, False),  # the arms' tops on the ray through two vertices
])
def test_a_concave_polygon_leaves_its_notch_outside(lat: float, lon: float, inside: bool) -> None:
    assert point_in_polygon(lat, lon, U_SHAPE) is inside


def test_a_ray_through_a_vertex_is_counted_once() -> None:
    diamond = [(0.0, 5.0), (5.0, 10.0), (10.0, 5.0), (5.0, 0.0)]
    assert point_in_polygon(5.0, 5.0, diamond)  # the ray passes through the vertex (5, 10)
    assert not point_in_polygon(5.0, -1.0, diamond)  # the ray passes through both side vertices
    assert not point_in_polygon(10.0, 4.0, diamond)  # level with the top vertex, outside


def test_a_ring_of_fewer_than_three_points_holds_nothing() -> None:
    assert not point_in_polygon(0, 0, [])
    assert not point_in_polygon(0, 0, [(0.0, 0.0), (1.0, 1.0)])


@given(st.floats(-20, 20, allow_nan=False), st.floats(-20, 20, allow_nan=False))
def test_point_in_polygon_agrees_with_the_squares_own_bounds(lat: float, lon: float) -> None:
    near_edge = min(abs(lat), abs(lat - 10), abs(lon), abs(lon - 10)) <= 1e-6  # float noise counts as on the edge
    assume(not near_edge or (0 <= lat <= 10 and 0 <= lon <= 10))
    assert point_in_polygon(lat, lon, SQUARE) is (0 <= lat <= 10 and 0 <= lon <= 10) or near_edge


# Distances ----------------------------------------------------------------------------------------


def test_haversine_gives_known_distances() -> None:
    assert haversine_m(SAMPIT, SAMPIT) == 0
    assert haversine_m((0, 0), (1, 0)) == pytest.approx(111_195, rel=1e-3)  # one degree of latitude
    assert haversine_m((0, 0), (0, 180)) == pytest.approx(20_015_087, rel=1e-3)  # half the equator
    # Sampit to Palangka Raya: about 113 km as the crow flies (some 220 km by road).
    assert 105_000 < haversine_m(SAMPIT, (-2.2096, 113.9108)) < 120_000


@given(st.tuples(st.floats(-90, 90), st.floats(-180, 180)), st.tuples(st.floats(-90, 90), st.floats(-180, 180)))
def test_haversine_is_symmetric_and_bounded(a: tuple[float, float], b: tuple[float, float]) -> None:
    assert haversine_m(a, b) == pytest.approx(haversine_m(b, a))
    assert 0 <= haversine_m(a, b) <= math.pi * 6_371_008.8 + 1  # half the mean circumference


# Boundary files ------------------------------------------------------------------------------------


def geojson(tmp_path: Path, features: list[dict[str, Any]], name: str = "b.geojson") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}), encoding="utf-8")
    return path


def polygon(props: dict[str, Any], *rings: list[tuple[float, float]]) -> dict[str, Any]:
    """A Polygon feature from (lat, lon) rings, written [lon, lat] as GeoJSON has it."""
    return {"type": "Feature", "properties": props,
            "geometry": {"type": "Polygon", "coordinates": [[[lon, lat] for lat, lon in [*r, r[0]]] for r in rings]}}


def test_a_hole_is_outside_but_its_edge_is_inside(tmp_path: Path) -> None:
    outer = [(0.0, 0.0), (0.0, 10.0), (10.0, 10.0), (10.0, 0.0)]
    hole = [(4.0, 4.0), (4.0, 6.0), (6.0, 6.0), (6.0, 4.0)]
    bounds = load_boundaries(geojson(tmp_path, [polygon({"kecamatan": "Donut"}, outer, hole),
                                                polygon({"kecamatan": "Island"}, [(4.5, 4.5), (4.5, 5.5), (5.5, 5.5), (5.5, 4.5)])]))
    assert bounds.locate(2, 2) == "Donut"
    assert bounds.locate(4.2, 4.2) is None  # in the hole, not on the island
    assert bounds.locate(5, 5) == "Island"
    assert bounds.locate(4, 5) == "Donut"  # on the hole's edge
    assert bounds.locate(20, 20) is None


def test_a_multipolygon_kecamatan_with_islands_and_a_name_property(tmp_path: Path) -> None:
    feature = {"type": "Feature", "properties": {"name": "Pulau Hanaut"}, "geometry": {"type": "MultiPolygon", "coordinates": [
        [[[113.0, -2.9], [113.1, -2.9], [113.1, -2.8], [113.0, -2.8], [113.0, -2.9]]],
        [[[113.2, -2.9], [113.3, -2.9], [113.3, -2.8], [113.2, -2.9]]],
    ]}}
    capital = {"type": "Feature", "properties": {"name": "Bapinang"}, "geometry": {"type": "Point", "coordinates": [113.05, -2.85]}}
    bounds = load_boundaries(geojson(tmp_path, [feature, capital]))
    assert bounds.names == ["Pulau Hanaut"]  # the point is no area and is left out
    assert bounds.locate(-2.85, 113.05) == "Pulau Hanaut"
    assert bounds.locate(-2.88, 113.28) == "Pulau Hanaut"
    assert bounds.locate(-2.85, 113.15) is None
    assert bounds.locate(float("nan"), 113.05) is None


def test_every_broken_feature_is_named_and_the_file_refused(tmp_path: Path) -> None:
    path = geojson(tmp_path, [
        polygon({"kecamatan": "Baamang"}, [(-2.5, 112.9), (-2.5, 113.0), (-2.4, 113.0)]),
        {"type": "Feature", "properties": {}, "geometry": {"type": "Polygon", "coordinates": [[[1, 1], [2, 2], [1, 2], [1, 1]]]}},
        {"type": "Feature", "properties": {"kecamatan": "Swapped"},
         "geometry": {"type": "Polygon", "coordinates": [[[-2.5, 112.9], [-2.5, 113.0], [-2.4, 113.0], [-2.5, 112.9]]]}},
        {"type": "Feature", "properties": {"kecamatan": "Words"}, "geometry": {"type": "Polygon", "coordinates": [[["a", "b"]] * 4]}},
        {"type": "Feature", "properties": {"kecamatan": "Line"}, "geometry": {"type": "Polygon", "coordinates": [[[1, 1], [2, 2], [1, 1]]]}},
    ])
    with pytest.raises(LocationParseError) as caught:
        load_boundaries(path)
    assert str(caught.value).splitlines() == [
        "kecamatan boundaries refused:",
        f"{path}: feature 1: no name; give it a \"kecamatan\" (or \"name\") property",
        f"{path}: feature 2 (Swapped) coordinates[0][0]: [-2.5, 112.9] is not a longitude, latitude pair (GeoJSON puts longitude first)",
        f"{path}: feature 3 (Words) coordinates[0][0]: expected [lon, lat] numbers, found [\"a\", \"b\"]",
        f"{path}: feature 4 (Line) coordinates[0]: a ring needs at least 3 distinct positions",
    ]


@pytest.mark.parametrize(("text", "message"), [
    ("{", "b.geojson:1:2: not JSON"),
    ('{"type": "Feature"}', "expected a GeoJSON FeatureCollection"),
    ('{"type": "FeatureCollection", "features": []}', "no Polygon or MultiPolygon feature"),
])
def test_a_file_that_is_no_boundary_collection_says_so(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "b.geojson"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(LocationParseError, match=message):
        load_boundaries(path)


# What the call taker reads ---------------------------------------------------------------------------


def loc(source: str, **kw: Any) -> Location:
    return Location(source=source, **kw)


@pytest.mark.parametrize(("location", "kecamatan", "lang", "text"), [
    (loc("aml_http", latitude=-2.49, longitude=112.98, radius_m=25, method="GPS"), "Baamang", "id", "Kecamatan Baamang, ±25 m (AML, GPS)"),
    (loc("aml_sms", latitude=-2.49, longitude=112.98, radius_m=25, method="GPS"), "Baamang", "en", "Baamang district, ±25 m (AML, GPS)"),
    (loc("pidf", latitude=-2.533, longitude=112.95, radius_m=25.4, method="A-GPS"), "Mentawa Baru Ketapang", "id",
     "Kecamatan Mentawa Baru Ketapang, ±25 m (SIP PIDF-LO, A-GPS)"),
    (loc("pidf", latitude=-2.533, longitude=112.95), "Mentawa Baru Ketapang", "id", "Kecamatan Mentawa Baru Ketapang (SIP PIDF-LO)"),
    (loc("cell", latitude=-2.54, longitude=112.95, radius_m=1800, method="Cell"), "Mentawa Baru Ketapang", "id",
     "Kecamatan Mentawa Baru Ketapang, ±1,8 km (sel)"),
    (loc("cell", latitude=-2.54, longitude=112.95, radius_m=1800, method="Cell"), "Mentawa Baru Ketapang", "en",
     "Mentawa Baru Ketapang district, ±1.8 km (cell)"),
    (loc("aml_http", latitude=-3.5, longitude=112.95, radius_m=10, method="Wifi"), None, "id", "di luar Kotim, ±10 m (AML, Wifi)"),
    (loc("aml_http", latitude=-3.5, longitude=112.95, radius_m=10, method="Wifi"), None, "en", "outside Kotim, ±10 m (AML, Wifi)"),
    (loc("keypad", detail={"kecamatan": "Seranau"}), None, "id", "Kecamatan Seranau (pilihan penelepon)"),
    (loc("keypad", detail={"kecamatan": "Seranau"}), None, "en", "Seranau district (caller's choice)"),
    (loc("repeat", latitude=-2.49, longitude=112.98, radius_m=25, method="GPS"), "Baamang", "id",
     "Kecamatan Baamang, ±25 m (lokasi terakhir nomor ini, GPS)"),
    (loc("repeat", latitude=-2.49, longitude=112.98, radius_m=25, method="GPS"), "Baamang", "en",
     "Baamang district, ±25 m (this number's last position, GPS)"),
    (loc("pidf", shape="civic", civic={"A3": "Sampit", "RD": "Jalan Ahmad Yani", "HNO": "12"}, method="Manual"), None, "id",
     "Jalan Ahmad Yani 12, Sampit (SIP PIDF-LO, Manual)"),
    (loc("cell", shape="cell", method="Cell", detail={"cell": "510-10-1-1", "found": "no"}), None, "id",
     "sel 510-10-1-1 tidak ada di tabel sel (sel)"),
    (loc("cell", shape="cell", method="Cell", detail={"cell": "510-10-1-1", "found": "no"}), None, "en",
     "cell 510-10-1-1 is not in the cell table (cell)"),
    (loc("cell", shape="cell", method="Cell"), None, "id", "posisi tidak diketahui (sel)"),
    (loc("aml_sms", latitude=-2.49, longitude=112.98, method="None"), "Baamang", "jv", "Kecamatan Baamang (AML)"),
    (loc("reference", shape="reference", uri="https://lis.example/1"), None, "en", "location by reference https://lis.example/1 (SIP reference)"),
])
def test_the_call_taker_reads_where_how_sure_and_from_what(location: Location, kecamatan: str | None, lang: str, text: str) -> None:
    assert describe(location, kecamatan, lang=lang) == text


def test_without_a_boundary_file_a_position_is_not_called_outside_kotim() -> None:
    location = loc("aml_http", latitude=-2.49, longitude=112.98, radius_m=25, method="GPS")
    assert describe(location, None, boundaries_known=False) == "±25 m (AML, GPS)"
    assert describe(loc("pidf"), None, boundaries_known=False) == "posisi tidak diketahui (SIP PIDF-LO)"


# The shipped Kotim boundaries ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def kotim() -> Boundaries:
    return load_boundaries(SHIPPED)


@pytest.fixture(scope="module")
def tool() -> Any:
    """tools/make_kotim_kecamatan.py, imported from its path (tools/ is no package)."""
    spec = importlib.util.spec_from_file_location("make_kotim_kecamatan", ROOT / "tools" / "make_kotim_kecamatan.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_shipped_file_holds_kotims_17_kecamatan_spelled_as_in_the_domain(kotim: Boundaries) -> None:
    assert len(kotim.names) == 17
    assert set(kotim.names) == KOTIM_KECAMATAN


def test_sampit_centre_is_in_mentawa_baru_ketapang_and_its_north_east_in_baamang(kotim: Boundaries) -> None:
    assert kotim.locate(*SAMPIT) == "Mentawa Baru Ketapang"
    assert kotim.locate(-2.49, 112.98) == "Baamang"
    assert kotim.locate(-2.56, 112.99) == "Seranau"  # across the Mentaya
    assert kotim.locate(-3.4, 112.95) is None  # in the Java Sea
    assert kotim.locate(-2.5, 111.5) is None  # Kotawaringin Barat


def test_every_capital_lies_in_its_own_cell(kotim: Boundaries) -> None:
    for k in kotim.kecamatan:
        assert kotim.locate(k.properties["capital_lat"], k.properties["capital_lon"]) == k.name
        assert isinstance(k.properties["capital"], str) and k.properties["capital"]


def test_the_cells_cover_the_regency_outline_without_gaps(kotim: Boundaries, tool: Any) -> None:
    checked = 0
    for i in range(45):
        for j in range(27):
            lat, lon = -3.19 + i * 0.05, 112.21 + j * 0.05  # off the outline's edges, which rounding moves
            if point_in_polygon(lat, lon, tool.OUTLINE):
                checked += 1
                assert kotim.locate(lat, lon) is not None, (lat, lon)
    assert checked > 800


def test_the_metadata_says_the_file_is_coarse_and_how_to_replace_it(kotim: Boundaries) -> None:
    meta = kotim.metadata
    assert "Voronoi" in meta["source"] and "NOT surveyed" in meta["source"] and "tools/make_kotim_kecamatan.py" in meta["source"]
    assert "several kilometres" in meta["accuracy"]
    assert "BIG" in meta["replace_with"] and "BPS" in meta["replace_with"] and "'kecamatan' property" in meta["replace_with"]


def test_the_shipped_file_is_exactly_what_the_tool_makes(tool: Any) -> None:
    assert tool.render(tool.build()) == SHIPPED.read_text(encoding="utf-8")
