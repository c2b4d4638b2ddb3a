"""Where the caller is: one model for every source of a position, and the parsers that
turn what carriers, handsets and people send into it. Pure: no sockets, no Asterisk.

Sources: PIDF-LO in the INVITE (by value, `pidf`), the Geolocation header by reference
(`reference`), the serving cell from P-Access-Network-Info looked up in the regency's cell
table (`cell`), Advanced Mobile Location by HTTPS or SMS (`aml_http`, `aml_sms`), a
kecamatan the caller chose by keypad (`keypad`), and the same number's last position
(`repeat`, a hint only).
"""

from __future__ import annotations

from dataclasses import dataclass, field

SOURCES = ("pidf", "reference", "cell", "aml_http", "aml_sms", "keypad", "repeat")


@dataclass(frozen=True)
class Location:
    """One position report. Latitude/longitude in WGS84 degrees; radius in metres is the
    uncertainty (the radius of a circle, or of the circle around a polygon or ellipse)."""

    source: str
    latitude: float | None = None
    longitude: float | None = None
    radius_m: float | None = None
    shape: str = "point"  # point, circle, ellipse, polygon, civic, cell, reference
    method: str = ""  # GPS, Wifi, Cell, Manual, ... as the sender said it
    confidence: float | None = None  # percent, as the sender said it
    measured_at: str = ""  # ISO time the position was taken, when the sender said
    civic: dict[str, str] = field(default_factory=dict)  # RFC 5139 civic address parts
    uri: str = ""  # Geolocation by reference
    polygon: tuple[tuple[float, float], ...] = ()  # (lat, lon) vertices for polygon shapes
    detail: dict[str, str] = field(default_factory=dict)  # IMEI, cell id, ... kept for the record

    @property
    def has_position(self) -> bool:
        return self.latitude is not None and self.longitude is not None


class LocationParseError(ValueError):
    """Location data that cannot be used; the message says what and where, for the log."""
