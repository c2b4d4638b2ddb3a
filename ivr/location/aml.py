"""Advanced Mobile Location (ETSI TS 103 625) as the handset sends it, by SMS
(`A"ML=1;lt=...;lg=...`) or as HTTPS form fields, into one `AmlMessage`; and the caller's
number in one Indonesian form (081234...) so an AML message finds its call.

Missing fields are normal and tolerated; a position that is there but unreadable is refused.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from ivr.location import Location, LocationParseError

AML_SMS_MAX_CHARS = 1000
AML_HTTP_MAX_FIELDS = 200
MAX_VALUE_CHARS = 500  # a kept field value is clipped to this
MAX_NUMBER_DIGITS = 15  # E.164
MIN_NUMBER_DIGITS = 3  # the short codes: 112, 110
COUNTRY_CODE = "62"  # Indonesia

# The header as handsets write it, and as gateways have been seen to pass it on.
SMS_HEADERS = ('A"ML=', "AML=", "A”ML=", "A“ML=", "A'ML=")
POSITIONING_METHODS = {"G": "GPS", "W": "Wifi", "C": "Cell", "N": "None"}
HTTP_SOURCES = {"gps": "GPS", "gnss": "GPS", "wifi": "Wifi", "wlan": "Wifi", "cell": "Cell", "network": "Cell", "fused": "Fused"}

_DECIMAL = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)")
_DIGITS = re.compile(r"[0-9]+")
_NUMBER_NOISE = re.compile(r"[\s\-.()/]")


@dataclass(frozen=True)
class AmlMessage:
    """One AML message: the position (None when the handset had none) and who sent it."""

    location: Location | None
    number: str = ""  # the caller's number, normalised (081234...); "" when the message does not say
    imei: str = ""
    imsi: str = ""
    emergency_number: str = ""
    raw_fields: dict[str, str] = field(default_factory=dict)


def normalise_msisdn(number: str) -> str:
    """One form for an Indonesian number: "+62 812-3456", "6281234..", "tel:+6281234..;x=y",
    "sip:081234..@host" all become "081234..."; other countries keep "+CC..."; short codes
    (112) stay as they are. LocationParseError when it holds no phone number."""
    s = number.strip()
    if "<" in s and ">" in s[s.index("<") :]:
        s = s[s.index("<") + 1 : s.index(">", s.index("<"))]  # "Name" <sip:0812@host>
    for prefix in ("tel:", "sips:", "sip:"):
        if s.lower().startswith(prefix):
            s = s[len(prefix) :]
            break
    s = _NUMBER_NOISE.sub("", s.split("@", 1)[0].split(";", 1)[0])
    international = s.startswith(("+", "00"))
    digits = s[1:] if s.startswith("+") else s[2:] if s.startswith("00") else s
    if not _DIGITS.fullmatch(digits) or not MIN_NUMBER_DIGITS <= len(digits) <= MAX_NUMBER_DIGITS:
        raise LocationParseError(
            f"{_clip(number)!r} is not a phone number: expected {MIN_NUMBER_DIGITS} to {MAX_NUMBER_DIGITS} digits"
            " such as 081234567890 or +6281234567890"
        )
    if international and not digits.startswith(COUNTRY_CODE):
        return "+" + digits
    if international or (digits.startswith(COUNTRY_CODE) and len(digits) >= 9):
        # "+62 0812..." is a common slip: the trunk 0 never follows the country code.
        national = digits[len(COUNTRY_CODE) :].lstrip("0")
        if len(national) < MIN_NUMBER_DIGITS:
            raise LocationParseError(f"{_clip(number)!r} is not a phone number: too few digits after +{COUNTRY_CODE}")
        return "0" + national
    if digits.startswith("8") and 9 <= len(digits) <= 12:
        return "0" + digits  # a mobile number whose trunk 0 a gateway dropped
    return digits


def _clip(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _degrees(value: str, name: str, limit: float, what: str) -> float:
    text = value.strip()
    number = float(text) if _DECIMAL.fullmatch(text) else math.nan
    if not (math.isfinite(number) and -limit <= number <= limit):
        raise LocationParseError(f"{what}: {name}={_clip(value)!r} is not a {'latitude' if limit == 90 else 'longitude'} in degrees "
                                 f"(expected a decimal between -{limit:g} and {limit:g})")
    return number


def _metres(value: str) -> float | None:
    text = value.strip()
    if not _DECIMAL.fullmatch(text):
        return None
    number = float(text)
    return number if math.isfinite(number) and number >= 0 else None


def _percent(value: str) -> float | None:
    number = _metres(value)
    if number is None:
        return None
    if number < 1 or ("." in value and number <= 1):
        number *= 100  # a fraction (0.68), as some senders write it
    return number if number <= 100 else None


def _sms_time(value: str) -> str | None:
    try:
        when = datetime.strptime(value.strip(), "%Y%m%d%H%M%S").replace(tzinfo=UTC)
    except ValueError:
        return None
    return when.isoformat() if len(value.strip()) == 14 else None


def _http_time(value: str) -> str | None:
    text = value.strip()
    try:
        if _DIGITS.fullmatch(text):
            stamp = int(text)
            when = datetime.fromtimestamp(stamp / 1000 if stamp > 100_000_000_000 else stamp, UTC)
        else:
            when = datetime.fromisoformat(text)
            when = when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    except (ValueError, OverflowError, OSError):
        return None
    return when.isoformat()


def _position(latitude: str, longitude: str, *, lat_name: str, lon_name: str, what: str) -> tuple[float, float] | None:
    if not latitude.strip() or not longitude.strip():
        return None
    return _degrees(latitude, lat_name, 90, what), _degrees(longitude, lon_name, 180, what)


def parse_aml_sms(text: str) -> AmlMessage:
    """An AML SMS body (`A"ML=1;lt=-2.53297;lg=112.95012;rd=12;top=...;pm=G;...`). The
    sender's number is not in the text (the SMS gateway knows it): `number` is "".
    Readable extras that are broken (rd, top, lc) are left out and noted in the detail;
    a missing position gives location None; a broken one raises LocationParseError."""
    what = "AML SMS"
    if len(text) > AML_SMS_MAX_CHARS:
        raise LocationParseError(f"{what} of {len(text)} characters refused: an AML SMS is at most {AML_SMS_MAX_CHARS}")
    body = text.strip()
    header = next((h for h in SMS_HEADERS if body[: len(h)].upper() == h.upper()), None)
    if header is None:
        raise LocationParseError(f"{what}: expected it to start with A\"ML=, found {_clip(body)!r}")
    segments = body[len(header) :].split(";")
    fields: dict[str, str] = {"version": segments[0].strip()[:MAX_VALUE_CHARS]}
    ignored: list[str] = []
    for segment in segments[1:]:
        key, sep, value = segment.partition("=")
        key = key.strip().lower()
        if not segment.strip():
            continue
        if not sep or not key:
            ignored.append(_clip(segment.strip(), 20))
            continue
        fields.setdefault(key, value.strip()[:MAX_VALUE_CHARS])
    position = _position(fields.get("lt", ""), fields.get("lg", ""), lat_name="lt", lon_name="lg", what=what)
    location = None
    if position is not None:
        detail = {k: v for k in ("mcc", "mnc") if (v := fields.get(k, ""))}
        radius = _metres(fields["rd"]) if fields.get("rd") else None
        measured = _sms_time(fields["top"]) if fields.get("top") else ""
        confidence = _percent(fields["lc"]) if fields.get("lc") else None
        for key, bad in (("rd", radius is None), ("top", measured is None), ("lc", confidence is None)):
            if fields.get(key) and bad:
                ignored.append(f"{key}={_clip(fields[key], 20)}")
        if fields.get("ei"):
            detail["imei"] = fields["ei"]
        if ignored:
            detail["ignored"] = "; ".join(ignored)
        pm = fields.get("pm", "").strip()
        location = Location(
            source="aml_sms", latitude=position[0], longitude=position[1], radius_m=radius,
            shape="circle" if radius is not None else "point", method=POSITIONING_METHODS.get(pm.upper(), pm),
            confidence=confidence, measured_at=measured or "", detail=detail,
        )
    return AmlMessage(location=location, imei=fields.get("ei", ""), imsi=fields.get("si", ""), raw_fields=fields)


def parse_aml_http(fields: Mapping[str, str]) -> AmlMessage:
    """AML HTTPS form fields (emergency_number, time, location_latitude, location_longitude,
    location_accuracy, location_altitude, location_source, location_confidence, device_number,
    device_imei, device_imsi, ...). Missing fields are tolerated; a position or caller number
    that is there but unreadable raises LocationParseError naming the field."""
    what = "AML HTTPS"
    if len(fields) > AML_HTTP_MAX_FIELDS:
        raise LocationParseError(f"{what}: {len(fields)} fields refused (at most {AML_HTTP_MAX_FIELDS})")
    raw = {str(k).strip().lower(): str(v).strip()[:MAX_VALUE_CHARS] for k, v in fields.items()}
    got = {k: v for k, v in raw.items() if v}
    position = _position(got.get("location_latitude", ""), got.get("location_longitude", ""),
                         lat_name="location_latitude", lon_name="location_longitude", what=what)
    number = normalise_msisdn(got["device_number"]) if got.get("device_number") else ""
    location = None
    if position is not None:
        detail: dict[str, str] = {}
        ignored: list[str] = []
        radius = _metres(got["location_accuracy"]) if got.get("location_accuracy") else None
        confidence = _percent(got["location_confidence"]) if got.get("location_confidence") else None
        when_raw = got.get("location_time") or got.get("time") or ""
        measured = _http_time(when_raw) if when_raw else ""
        for key, value, bad in (("location_accuracy", got.get("location_accuracy"), radius is None),
                                ("location_confidence", got.get("location_confidence"), confidence is None),
                                ("time", when_raw, measured is None)):
            if value and bad:
                ignored.append(f"{key}={_clip(value, 20)}")
        altitude = got.get("location_altitude", "")
        if altitude and _DECIMAL.fullmatch(altitude):
            detail["altitude_m"] = altitude
        if got.get("device_imei"):
            detail["imei"] = got["device_imei"]
        if ignored:
            detail["ignored"] = "; ".join(ignored)
        source = got.get("location_source", "")
        location = Location(
            source="aml_http", latitude=position[0], longitude=position[1], radius_m=radius,
            shape="circle" if radius is not None else "point", method=HTTP_SOURCES.get(source.lower(), source),
            confidence=confidence, measured_at=measured or "", detail=detail,
        )
    return AmlMessage(location=location, number=number, imei=got.get("device_imei", ""), imsi=got.get("device_imsi", ""),
                      emergency_number=got.get("emergency_number", ""), raw_fields=raw)
