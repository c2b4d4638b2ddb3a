"""The serving cell from 3GPP P-Access-Network-Info (TS 24.229 §7.2A.4), and the regency's
cell table (a CSV the carriers give us) that turns a cell into a position and a radius.
The table is a plain dict in memory; the app stores its rows where it likes.
"""

from __future__ import annotations

import csv
import io
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ivr.location import Location, LocationParseError

INDONESIA_MCC = "510"  # its operators all use 2-digit MNCs
MAX_NAME = 200

# access-type → (radio, the parameters naming the cell, (area hex digits, cell hex digits) accepted)
ACCESS_TYPES: dict[str, tuple[str, tuple[str, ...], tuple[tuple[int, int], ...]]] = {
    "3gpp-e-utran": ("LTE", ("utran-cell-id-3gpp",), ((4, 7), (6, 7))),
    "3gpp-e-utran-fdd": ("LTE", ("utran-cell-id-3gpp",), ((4, 7), (6, 7))),
    "3gpp-e-utran-tdd": ("LTE", ("utran-cell-id-3gpp",), ((4, 7), (6, 7))),
    "3gpp-utran-fdd": ("UMTS", ("utran-cell-id-3gpp",), ((4, 7),)),
    "3gpp-utran-tdd": ("UMTS", ("utran-cell-id-3gpp",), ((4, 7),)),
    "3gpp-nr": ("NR", ("nrcgi", "utran-cell-id-3gpp"), ((6, 9), (4, 9))),
    "3gpp-nr-fdd": ("NR", ("nrcgi", "utran-cell-id-3gpp"), ((6, 9), (4, 9))),
    "3gpp-nr-tdd": ("NR", ("nrcgi", "utran-cell-id-3gpp"), ((6, 9), (4, 9))),
    "3gpp-nr-u-fdd": ("NR", ("nrcgi", "utran-cell-id-3gpp"), ((6, 9), (4, 9))),
    "3gpp-nr-u-tdd": ("NR", ("nrcgi", "utran-cell-id-3gpp"), ((6, 9), (4, 9))),
    "3gpp-geran": ("GSM", ("cgi-3gpp",), ((4, 4),)),
}
# Largest cell identity per radio: GSM CI 16 bits, UMTS UC-Id and LTE ECI 28 bits, NR NCI 36 bits.
MAX_CELL = {"GSM": 0xFFFF, "UMTS": 0xFFFFFFF, "LTE": 0xFFFFFFF, "NR": 0xFFFFFFFFF}
MAX_AREA = {"GSM": 0xFFFF, "UMTS": 0xFFFF, "LTE": 0xFFFFFF, "NR": 0xFFFFFF}
RADIO_NAMES = {"lte": "LTE", "4g": "LTE", "umts": "UMTS", "3g": "UMTS", "wcdma": "UMTS", "nr": "NR", "5g": "NR",
               "gsm": "GSM", "2g": "GSM"}

_HEX = re.compile(r"[0-9A-Fa-f]+")
_DIGITS = re.compile(r"[0-9]+")
_DECIMAL = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)")


@dataclass(frozen=True)
class CellId:
    """A serving cell: area is the TAC (LTE, NR) or LAC (UMTS, GSM); cell the ECI, UC-Id, NCI or CI."""

    radio: str  # LTE, UMTS, NR, GSM
    mcc: str
    mnc: str  # as a string: "01" and "001" are different networks
    area: int
    cell: int

    @property
    def key(self) -> str:
        """Canonical text for the cell table: "510-10-6699-12834021"."""
        return f"{self.mcc}-{self.mnc}-{self.area}-{self.cell}"


def _params(spec: str) -> tuple[str, dict[str, str], bool]:
    access_type, *rest = spec.split(";")
    params: dict[str, str] = {}
    network_provided = False
    for item in rest:
        name, sep, value = item.partition("=")
        name = name.strip().lower()
        if not sep:
            network_provided = network_provided or name == "network-provided"
            continue
        params.setdefault(name, value.strip().strip('"').strip())
    return access_type.strip().lower(), params, network_provided


def _decode(value: str, radio: str, layouts: tuple[tuple[int, int], ...], header: str) -> CellId:
    def broken(why: str) -> LocationParseError:
        return LocationParseError(f"P-Access-Network-Info {header!r}: {why}")

    mcc = value[:3]
    if not _DIGITS.fullmatch(mcc) or len(mcc) != 3:
        raise broken(f"the cell id must start with a 3-digit MCC, found {mcc!r}")
    tail = len(value) - 3
    sizes = {a + c for a, c in layouts}
    mnc_len = 2 if mcc == INDONESIA_MCC or (tail - 2) in sizes or (tail - 3) not in sizes else 3
    mnc, rest = value[3 : 3 + mnc_len], value[3 + mnc_len :]
    if not _DIGITS.fullmatch(mnc) or len(mnc) != mnc_len:
        raise broken(f"expected a {mnc_len}-digit MNC after MCC {mcc}, found {mnc!r}")
    if not _HEX.fullmatch(rest or "-"):
        raise broken(f"expected hexadecimal area and cell digits after {mcc}{mnc}, found {rest!r}")
    area_len = next((a for a, c in layouts if a + c == len(rest)), None)
    if area_len is None:
        # Lenient: the area as the standard's first digits, the cell shorter than usual.
        area_len, cell_max = layouts[0][0], layouts[0][1]
        if not 0 < len(rest) - area_len <= cell_max:
            area, cell = layouts[0]
            raise broken(f"expected MCC (3) MNC ({mnc_len}) area ({area} hex) cell ({cell} hex) = {3 + mnc_len + area + cell} characters,"
                         f" found {len(value)}")
    area, cell = int(rest[:area_len], 16), int(rest[area_len:], 16)
    if cell > MAX_CELL[radio]:
        raise broken(f"cell identity {cell} is larger than a {radio} cell can be")
    return CellId(radio, mcc, mnc, area, cell)


def parse_pani(header: str) -> CellId | None:
    """The serving cell named by a P-Access-Network-Info header, preferring the value the
    network provided over the handset's. None when the header names no 3GPP cell;
    LocationParseError when a cell id is there but cannot be decoded."""
    found: list[tuple[bool, CellId]] = []
    for spec in header.split(","):
        access_type, params, network_provided = _params(spec)
        known = ACCESS_TYPES.get(access_type)
        if known is None:
            continue
        radio, names, layouts = known
        value = next((params[n] for n in names if params.get(n)), "")
        if value:
            found.append((network_provided, _decode(value, radio, layouts, header[:120])))
    if not found:
        return None
    return next((c for provided, c in found if provided), found[0][1])


@dataclass(frozen=True)
class CellRow:
    radio: str
    mcc: str
    mnc: str
    area: int
    cell: int
    latitude: float
    longitude: float
    radius_m: float
    name: str = ""

    @property
    def key(self) -> str:
        return CellId(self.radio, self.mcc, self.mnc, self.area, self.cell).key


@dataclass(frozen=True)
class CellTable:
    """Cells by key; `rows()` is what the app's store keeps."""

    cells: dict[str, CellRow] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.cells)

    def lookup(self, cell_id: CellId) -> Location | None:
        """The cell's position and radius (source "cell"), or None when the table lacks it."""
        row = self.cells.get(cell_id.key)
        if row is None:
            return None
        return Location(source="cell", latitude=row.latitude, longitude=row.longitude, radius_m=row.radius_m, shape="cell",
                        method="Cell", detail={"cell": row.key, "name": row.name, "radio": row.radio})

    def rows(self) -> list[dict[str, Any]]:
        """key, radio, mcc, mnc, area, cell, latitude, longitude, radius_m, name per cell."""
        return [{"key": key, "radio": r.radio, "mcc": r.mcc, "mnc": r.mnc, "area": r.area, "cell": r.cell, "latitude": r.latitude,
                 "longitude": r.longitude, "radius_m": r.radius_m, "name": r.name} for key, r in self.cells.items()]


CSV_COLUMNS = ("radio", "mcc", "mnc", "area", "cell", "lat", "lon", "radius_m")
CSV_ALIASES = {"latitude": "lat", "longitude": "lon", "lng": "lon", "radius": "radius_m", "range": "radius_m"}


def _row(values: dict[str, str]) -> tuple[CellRow | None, list[str]]:
    wrong: list[str] = []
    radio = RADIO_NAMES.get(values["radio"].strip().lower())
    if radio is None:
        wrong.append(f"radio {values['radio']!r} unknown; expected LTE, UMTS, NR or GSM")
    mcc, mnc = values["mcc"].strip(), values["mnc"].strip()
    if not (_DIGITS.fullmatch(mcc) and len(mcc) == 3):
        wrong.append(f"mcc {mcc!r} is not 3 digits")
    if not (_DIGITS.fullmatch(mnc) and len(mnc) in (2, 3)):
        wrong.append(f"mnc {mnc!r} is not 2 or 3 digits (keep leading zeros: 01)")
    elif mcc == INDONESIA_MCC and len(mnc) != 2:
        wrong.append(f"mnc {mnc!r}: Indonesian networks (MCC 510) have 2-digit MNCs")
    ints: dict[str, int] = {}
    for col, limits in (("area", MAX_AREA), ("cell", MAX_CELL)):
        text = values[col].strip()
        if not _DIGITS.fullmatch(text):
            wrong.append(f"{col} {text!r} is not a decimal number (hex 0x1A2B is written 6699)")
        elif radio is not None and int(text) > limits[radio]:
            wrong.append(f"{col} {text} is larger than a {radio} {col} can be ({limits[radio]})")
        else:
            ints[col] = int(text)
    floats: dict[str, float] = {}
    for col, low, high in (("lat", -90, 90), ("lon", -180, 180), ("radius_m", 0, 100_000)):
        text = values[col].strip()
        number = float(text) if _DECIMAL.fullmatch(text) else math.nan
        if not low <= number <= high:
            wrong.append(f"{col} {text!r} is not a number from {low} to {high}")
        else:
            floats[col] = number
    if wrong or radio is None:
        return None, wrong
    name = values.get("name", "").strip()[:MAX_NAME]
    return CellRow(radio, mcc, mnc, ints["area"], ints["cell"], floats["lat"], floats["lon"], floats["radius_m"], name), []


def load_cell_csv(path: Path) -> tuple[CellTable, list[str]]:
    """Read a cell table CSV with a header row (radio,mcc,mnc,area,cell,lat,lon,radius_m[,name]).
    Returns the table of good rows and one `file:line: what is wrong` per row left out."""
    cells: dict[str, CellRow] = {}
    first_line: dict[str, int] = {}
    problems: list[str] = []
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        return CellTable(), [f"{path}:{line}: not UTF-8 text ({exc.reason}); save the file as UTF-8 CSV"]
    reader = csv.reader(io.StringIO(text, newline=""))
    columns: list[str] | None = None
    try:
        for record in reader:
            line = reader.line_num
            if not any(v.strip() for v in record) or record[0].lstrip().startswith("#"):
                continue
            if columns is None:
                columns = [CSV_ALIASES.get(c.strip().lower(), c.strip().lower()) for c in record]
                missing = [c for c in CSV_COLUMNS if c not in columns]
                if missing:
                    problems.append(f"{path}:{line}: the header row lacks {', '.join(missing)}; expected {','.join(CSV_COLUMNS)}[,name]")
                    return CellTable(), problems
                continue
            if len(record) < len(CSV_COLUMNS):
                problems.append(f"{path}:{line}: {len(record)} values, expected at least {len(CSV_COLUMNS)} ({','.join(CSV_COLUMNS)})")
                continue
            values = dict(zip(columns, record, strict=False))
            if any(c not in values for c in CSV_COLUMNS):
                problems.append(f"{path}:{line}: {len(record)} values do not reach every column of the header")
                continue
            row, wrong = _row(values)
            if row is None:
                problems.append(f"{path}:{line}: " + "; ".join(wrong))
            elif row.key in cells:
                problems.append(f"{path}:{line}: cell {row.key} is already on line {first_line[row.key]}; this row is skipped")
            else:
                cells[row.key] = row
                first_line[row.key] = line
    except csv.Error as exc:
        problems.append(f"{path}:{reader.line_num}: not readable as CSV ({exc}); rows after it are not loaded")
    if columns is None:
        problems.append(f"{path}:1: empty: expected a header row {','.join(CSV_COLUMNS)}[,name] and one row per cell")
    return CellTable(cells), problems
