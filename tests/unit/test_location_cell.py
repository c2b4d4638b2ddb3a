"""The serving cell from P-Access-Network-Info and the regency's cell table: every 3GPP radio's
cell id decodes, missing ones give None, broken ones a reason; a bad CSV row is named by file
and line and skipped while the good rows load."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ivr.location import LocationParseError
from ivr.location.cell import CellId, load_cell_csv, parse_pani


@pytest.mark.parametrize(("header", "cell"), [
    # The integration test's cell: MCC 510, MNC 10, TAC 0x1A2B, ECI 0x0C3D4E5.
    ("3GPP-E-UTRAN-FDD; utran-cell-id-3gpp=510101A2B0C3D4E5; network-provided", CellId("LTE", "510", "10", 0x1A2B, 0x0C3D4E5)),
    ("3GPP-E-UTRAN-TDD;utran-cell-id-3gpp=\"510101A2B0C3D4E5\"", CellId("LTE", "510", "10", 0x1A2B, 0x0C3D4E5)),
    ("3gpp-e-utran-fdd; UTRAN-CELL-ID-3GPP=510101a2b0c3d4e5", CellId("LTE", "510", "10", 0x1A2B, 0x0C3D4E5)),
    # DOMAIN.md's example is one hex digit short of the standard; read with a 6-digit ECI.
    ("3GPP-E-UTRAN-FDD; utran-cell-id-3gpp=5101000A1B2C3D4; network-provided", CellId("LTE", "510", "10", 0x00A1, 0xB2C3D4)),
    ("3GPP-UTRAN-FDD; utran-cell-id-3gpp=510011F4A0123ABC", CellId("UMTS", "510", "01", 0x1F4A, 0x0123ABC)),
    ("3GPP-UTRAN-TDD; utran-cell-id-3gpp=510011F4A0123ABC", CellId("UMTS", "510", "01", 0x1F4A, 0x0123ABC)),
    # NR: TAC 6 hex digits, NCI 9 hex digits (36 bits).
    ("3GPP-NR-FDD; utran-cell-id-3gpp=51010000A1B123456789", CellId("NR", "510", "10", 0x000A1B, 0x123456789)),
    ("3GPP-NR; nrcgi=51010000A1BF23456789", CellId("NR", "510", "10", 0x000A1B, 0xF23456789)),
    ("3GPP-GERAN; cgi-3gpp=51011004D1A2B", CellId("GSM", "510", "11", 0x004D, 0x1A2B)),
    # Outside Indonesia a 3-digit MNC is read when the length says so (T-Mobile US, 310-260).
    ("3GPP-E-UTRAN-FDD; utran-cell-id-3gpp=3102601A2B0C3D4E5", CellId("LTE", "310", "260", 0x1A2B, 0x0C3D4E5)),
    ("3GPP-E-UTRAN-FDD; utran-cell-id-3gpp=234301A2B0C3D4E5", CellId("LTE", "234", "30", 0x1A2B, 0x0C3D4E5)),
])
def test_each_radios_cell_id_decodes(header: str, cell: CellId) -> None:
    assert parse_pani(header) == cell


def test_the_key_is_the_canonical_text_the_cell_table_uses() -> None:
    cell = parse_pani("3GPP-E-UTRAN-FDD; utran-cell-id-3gpp=510101A2B0C3D4E5; network-provided")
    assert cell is not None and cell.key == "510-10-6699-12834021"
    assert CellId("LTE", "510", "01", 4096, 176305108).key == "510-01-4096-176305108"


def test_the_network_provided_value_is_preferred_over_the_handsets() -> None:
    header = ("3GPP-E-UTRAN-FDD; utran-cell-id-3gpp=510101A2B0C3D4E5, "
              "3GPP-E-UTRAN-FDD; utran-cell-id-3gpp=510100001000000F; network-provided")
    cell = parse_pani(header)
    assert cell is not None and (cell.area, cell.cell) == (1, 15)


@pytest.mark.parametrize("header", [
    "", "   ", "garbage", "IEEE-802.11; i-wlan-node-id=ffffffffffff", "ADSL; dsl-location=x",
    "3GPP-E-UTRAN-FDD", "3GPP-E-UTRAN-FDD; network-provided", "3GPP-E-UTRAN-FDD; utran-cell-id-3gpp=",
    "3GPP-E-UTRAN-FDD; utran-cell-id-3gpp=\"\"", "3GPP-GERAN; utran-cell-id-3gpp=51010000A1B0123456",
])
def test_a_header_naming_no_3gpp_cell_gives_none(header: str) -> None:
    assert parse_pani(header) is None


@pytest.mark.parametrize(("header", "message"), [
    ("3GPP-E-UTRAN-FDD; utran-cell-id-3gpp=ABC101A2B0C3D4E5", "3-digit MCC, found 'ABC'"),
    ("3GPP-E-UTRAN-FDD; utran-cell-id-3gpp=5101X1A2B0C3D4E5", "2-digit MNC"),
    ("3GPP-E-UTRAN-FDD; utran-cell-id-3gpp=51010ZZZZ0C3D4E5", "expected hexadecimal"),
    ("3GPP-E-UTRAN-FDD; utran-cell-id-3gpp=510101A2B0C3D4E5FFFF", "= 16 characters, found 20"),
    ("3GPP-E-UTRAN-FDD; utran-cell-id-3gpp=510101A2B", "= 16 characters, found 9"),
    ("3GPP-E-UTRAN-FDD; utran-cell-id-3gpp=51010", "expected hexadecimal"),
    ("3GPP-E-UTRAN-FDD; utran-cell-id-3gpp=51", "3-digit MCC"),
])
def test_a_cell_id_that_is_there_but_broken_is_refused_with_a_reason(header: str, message: str) -> None:
    with pytest.raises(LocationParseError, match=message):
        parse_pani(header)


@settings(max_examples=500)
@given(st.one_of(st.text(max_size=120), st.builds(lambda t, v: f"{t}; utran-cell-id-3gpp={v}; network-provided",
                                                   st.sampled_from(["3GPP-E-UTRAN-FDD", "3GPP-NR", "3GPP-UTRAN-TDD", "x"]),
                                                   st.text(alphabet="0123456789ABCDEFxyz;,=\" ", max_size=24))))
def test_any_header_gives_a_cell_none_or_a_location_parse_error(header: str) -> None:
    try:
        cell = parse_pani(header)
    except LocationParseError:
        return
    assert cell is None or (len(cell.mcc) == 3 and cell.area >= 0 and cell.cell >= 0)


@given(mnc=st.sampled_from(["01", "10", "11", "21", "89"]), tac=st.integers(0, 0xFFFF), eci=st.integers(0, 0xFFFFFFF),
       kind=st.sampled_from(["FDD", "TDD"]))
def test_a_generated_lte_cell_comes_back_as_sent(mnc: str, tac: int, eci: int, kind: str) -> None:
    cell = parse_pani(f"3GPP-E-UTRAN-{kind}; utran-cell-id-3gpp=510{mnc}{tac:04X}{eci:07X}; network-provided")
    assert cell == CellId("LTE", "510", mnc, tac, eci)


# The cell table ------------------------------------------------------------------------------------

GOOD = """radio,mcc,mnc,area,cell,lat,lon,radius_m,name
LTE,510,10,6699,12834021,-2.5402,112.9561,1800,Sampit Kota sektor 2
UMTS,510,01,8010,1193660,-2.4910,112.9790,2500,Baamang 3G
GSM,510,11,77,6699,-2.3100,112.8400,5000,
"""


def write(tmp_path: Path, text: str, name: str = "cells.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_a_good_table_loads_every_row_and_finds_a_serving_cell(tmp_path: Path) -> None:
    table, problems = load_cell_csv(write(tmp_path, GOOD))
    assert problems == [] and len(table) == 3
    cell = parse_pani("3GPP-E-UTRAN-FDD; utran-cell-id-3gpp=510101A2B0C3D4E5; network-provided")
    assert cell is not None
    loc = table.lookup(cell)
    assert loc is not None
    assert (loc.source, loc.shape, loc.method, loc.latitude, loc.longitude, loc.radius_m) == ("cell", "cell", "Cell", -2.5402, 112.9561, 1800)
    assert loc.detail == {"cell": "510-10-6699-12834021", "name": "Sampit Kota sektor 2", "radio": "LTE"}


def test_a_cell_missing_from_the_table_gives_none(tmp_path: Path) -> None:
    table, _ = load_cell_csv(write(tmp_path, GOOD))
    assert table.lookup(CellId("LTE", "510", "10", 1, 1)) is None


def test_rows_are_what_the_store_keeps(tmp_path: Path) -> None:
    table, _ = load_cell_csv(write(tmp_path, GOOD))
    rows = table.rows()
    assert rows[1] == {"key": "510-01-8010-1193660", "radio": "UMTS", "mcc": "510", "mnc": "01", "area": 8010, "cell": 1193660,
                       "latitude": -2.491, "longitude": 112.979, "radius_m": 2500.0, "name": "Baamang 3G"}


def test_bad_rows_are_named_by_file_and_line_and_skipped(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD + "\n".join([
        "CDMA,510,10,1,1,-2.5,112.9,100,radio unknown",
        "LTE,51,10,1,1,-2.5,112.9,100,short mcc",
        "LTE,510,1,1,1,-2.5,112.9,100,short mnc",
        "LTE,510,10,0x1A2B,1,-2.5,112.9,100,hex area",
        "LTE,510,10,1,1,-95,112.9,100,bad lat",
        "LTE,510,10,1,1,-2.5,east,100,bad lon",
        "LTE,510,10,1,1,-2.5,112.9,-1,negative radius",
        "GSM,510,10,1,70000,-2.5,112.9,100,cell too big for GSM",
        "LTE,510,10,6699,12834021,-2.6,112.9,900,same cell again",
        "LTE,510,10,1,1",
        "# a comment row",
        "LTE,510,10,2,2,-2.5,112.9,100,still good",
    ]) + "\n")
    table, problems = load_cell_csv(path)
    assert len(table) == 4
    assert problems == [
        f"{path}:5: radio 'CDMA' unknown; expected LTE, UMTS, NR or GSM",
        f"{path}:6: mcc '51' is not 3 digits",
        f"{path}:7: mnc '1' is not 2 or 3 digits (keep leading zeros: 01)",
        f"{path}:8: area '0x1A2B' is not a decimal number (hex 0x1A2B is written 6699)",
        f"{path}:9: lat '-95' is not a number from -90 to 90",
        f"{path}:10: lon 'east' is not a number from -180 to 180",
        f"{path}:11: radius_m '-1' is not a number from 0 to 100000",
        f"{path}:12: cell 70000 is larger than a GSM cell can be (65535)",
        f"{path}:13: cell 510-10-6699-12834021 is already on line 2; this row is skipped",
        f"{path}:14: 5 values, expected at least 8 (radio,mcc,mnc,area,cell,lat,lon,radius_m)",
    ]


def test_several_faults_in_one_row_are_all_named(tmp_path: Path) -> None:
    path = write(tmp_path, "radio,mcc,mnc,area,cell,lat,lon,radius_m\nLTE,5x0,10,1,1,-95,112.9,100\n")
    _, problems = load_cell_csv(path)
    assert problems == [f"{path}:2: mcc '5x0' is not 3 digits; lat '-95' is not a number from -90 to 90"]


def test_the_header_row_is_required(tmp_path: Path) -> None:
    path = write(tmp_path, "LTE,510,10,6699,12834021,-2.5402,112.9561,1800,Sampit\n")
    table, problems = load_cell_csv(path)
    assert len(table) == 0
    assert problems == [f"{path}:1: the header row lacks radio, mcc, mnc, area, cell, lat, lon, radius_m; "
                        "expected radio,mcc,mnc,area,cell,lat,lon,radius_m[,name]"]


def test_an_empty_file_says_what_it_should_hold(tmp_path: Path) -> None:
    path = write(tmp_path, "")
    table, problems = load_cell_csv(path)
    assert len(table) == 0 and problems == [f"{path}:1: empty: expected a header row radio,mcc,mnc,area,cell,lat,lon,radius_m[,name] "
                                            "and one row per cell"]


def test_a_spreadsheet_export_with_bom_reordered_columns_and_aliases_loads(tmp_path: Path) -> None:
    path = tmp_path / "cells.csv"
    path.write_bytes("\ufeffName,Radio,MCC,MNC,Area,Cell,Latitude,Longitude,Range\r\n"
                     "\"Sampit, sektor 2\",4G,510,10,6699,12834021,-2.5402,112.9561,1800\r\n".encode())
    table, problems = load_cell_csv(path)
    assert problems == []
    loc = table.lookup(CellId("LTE", "510", "10", 6699, 12834021))
    assert loc is not None and loc.detail["name"] == "Sampit, sektor 2"


def test_a_file_that_is_not_utf8_is_refused_at_the_first_bad_line(tmp_path: Path) -> None:
    path = tmp_path / "cells.csv"
    path.write_bytes(GOOD.encode() + b"LTE,510,10,1,1,-2.5,112.9,100,Pasar \xff\xfe\n" * 3000)
    table, problems = load_cell_csv(path)
    assert len(table) == 0
    assert problems == [f"{path}:5: not UTF-8 text (invalid start byte); save the file as UTF-8 CSV"]
