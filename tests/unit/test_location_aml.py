"""Advanced Mobile Location as handsets send it (ETSI TS 103 625): the SMS and HTTPS forms give
the fix, missing fields are fine, broken positions are refused with a reason, and callers'
numbers in every common spelling become one."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ivr.location import LocationParseError
from ivr.location.aml import AML_SMS_MAX_CHARS, normalise_msisdn, parse_aml_http, parse_aml_sms

KOTIM_SMS = 'A"ML=1;lt=-2.53297;lg=112.95012;rd=12;top=20261128060000;lc=68;pm=G;si=510101234567890;ei=356938035643809;mcc=510;mnc=10;ml=124'
# The form of the first UK deployment, as published with the specification.
UK_SMS = 'A"ML=1;lt=+55.74317;lg=-4.26881;rd=50;top=20130717141935;lc=90;pm=W;si=234302543446355;ei=356708041746734;mcc=234;mnc=30;ml=124'


def test_a_kotim_aml_sms_gives_the_gps_fix_with_radius_time_and_confidence() -> None:
    message = parse_aml_sms(KOTIM_SMS)
    loc = message.location
    assert loc is not None
    assert (loc.source, loc.latitude, loc.longitude, loc.radius_m, loc.shape) == ("aml_sms", -2.53297, 112.95012, 12, "circle")
    assert (loc.method, loc.confidence, loc.measured_at) == ("GPS", 68, "2026-11-28T06:00:00+00:00")
    assert (message.imei, message.imsi, message.number) == ("356938035643809", "510101234567890", "")
    assert loc.detail == {"mcc": "510", "mnc": "10", "imei": "356938035643809"}
    assert message.raw_fields["version"] == "1" and message.raw_fields["ml"] == "124"


def test_the_published_uk_form_with_plus_signs_and_wifi_is_read() -> None:
    loc = parse_aml_sms(UK_SMS).location
    assert loc is not None and (loc.latitude, loc.longitude, loc.method, loc.radius_m) == (55.74317, -4.26881, "Wifi", 50)


@pytest.mark.parametrize("text", [
    KOTIM_SMS.replace('A"ML=', "AML="),
    "  \n" + KOTIM_SMS + "\r\n",
    KOTIM_SMS.replace(";", " ; "),
    KOTIM_SMS.replace('A"ML=', "a\"ml="),
    KOTIM_SMS.replace('A"ML=', "A”ML="),  # a phone's smart quote
    KOTIM_SMS + ";",
])
def test_header_spellings_and_whitespace_are_tolerated(text: str) -> None:
    loc = parse_aml_sms(text).location
    assert loc is not None and (loc.latitude, loc.longitude) == (-2.53297, 112.95012)


def test_a_handset_without_a_fix_sends_no_position_and_that_is_not_an_error() -> None:
    message = parse_aml_sms('A"ML=1;lt=;lg=;rd=;top=20261128060000;lc=;pm=N;si=510101234567890;ei=356938035643809;mcc=510;mnc=10;ml=99')
    assert message.location is None
    assert message.imei == "356938035643809"


def test_missing_fields_are_tolerated() -> None:
    loc = parse_aml_sms('A"ML=1;lt=-2.5;lg=112.9').location
    assert loc is not None
    assert (loc.radius_m, loc.shape, loc.method, loc.confidence, loc.measured_at) == (None, "point", "", None, "")
    assert parse_aml_sms('A"ML=1').location is None
    assert parse_aml_sms('A"ML=1;lt=-2.5').location is None  # no longitude: no position


def test_broken_extras_are_left_out_and_noted_while_the_position_is_kept() -> None:
    loc = parse_aml_sms('A"ML=1;lt=-2.5;lg=112.9;rd=abc;top=2026-11-28;lc=250;junk;pm=Q').location
    assert loc is not None
    assert (loc.radius_m, loc.measured_at, loc.confidence, loc.method) == (None, "", None, "Q")
    assert loc.detail["ignored"] == "junk; rd=abc; top=2026-11-28; lc=250"


@pytest.mark.parametrize(("text", "message"), [
    ("hello, where are you?", "expected it to start with A\"ML="),
    ("", "expected it to start with A\"ML="),
    ('A"ML=1;lt=xx;lg=112.9', "lt='xx' is not a latitude"),
    ('A"ML=1;lt=-2.5;lg=east', "lg='east' is not a longitude"),
    ('A"ML=1;lt=95;lg=112.9', "between -90 and 90"),
    ('A"ML=1;lt=-2.5;lg=-181', "between -180 and 180"),
    ('A"ML=1;lt=nan;lg=112.9', "not a latitude"),
    ('A"ML=1;lt=1e3;lg=112.9', "not a latitude"),
    ('A"ML=1;lt=-2.5;lg=112.9;' + "x" * AML_SMS_MAX_CHARS, "refused"),
])
def test_garbage_sms_text_is_refused_with_a_clear_reason(text: str, message: str) -> None:
    with pytest.raises(LocationParseError, match=message):
        parse_aml_sms(text)


@settings(max_examples=500)
@given(st.text(max_size=300))
def test_any_text_gives_an_aml_message_or_a_location_parse_error(text: str) -> None:
    try:
        message = parse_aml_sms(text)
    except LocationParseError:
        return
    if message.location is not None:
        assert message.location.latitude is not None and abs(message.location.latitude) <= 90


@settings(max_examples=300)
@given(st.lists(st.sampled_from(["lt", "lg", "rd", "top", "lc", "pm", "si", "ei", "ml", "", "=", ";"]), max_size=8),
       st.lists(st.sampled_from(["-2.5", "112.9", "abc", "", "1e9", "20261128060000", "G", "+", "."]), max_size=8))
def test_aml_shaped_text_never_escapes_as_another_error(keys: list[str], values: list[str]) -> None:
    text = 'A"ML=1;' + ";".join(f"{k}={v}" for k, v in zip(keys, values, strict=False))
    try:
        parse_aml_sms(text)
    except LocationParseError:
        pass


@given(
    lat=st.decimals(-90, 90, places=5), lon=st.decimals(-180, 180, places=5), rd=st.integers(0, 100_000),
    when=st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31)),
    lc=st.integers(1, 100), pm=st.sampled_from(["G", "W", "C"]), imei=st.from_regex(r"[0-9]{15}", fullmatch=True),
    imsi=st.from_regex(r"510[0-9]{12}", fullmatch=True),
)
@settings(max_examples=200)
def test_an_sms_built_from_valid_values_comes_back_as_sent(lat: Decimal, lon: Decimal, rd: int, when: datetime, lc: int, pm: str, imei: str,
                                                            imsi: str) -> None:
    lat_text = f"{lat:+.5f}"
    top = when.strftime("%Y%m%d%H%M%S")
    text = f'A"ML=1;lt={lat_text};lg={lon:.5f};rd={rd};top={top};lc={lc};pm={pm};si={imsi};ei={imei};mcc=510;mnc=10;ml=0'
    message = parse_aml_sms(text)
    loc = message.location
    assert loc is not None
    assert (loc.latitude, loc.longitude, loc.radius_m, loc.confidence) == (float(lat), float(lon), rd, lc)
    assert loc.measured_at == when.replace(microsecond=0).isoformat() + "+00:00"
    assert loc.method == {"G": "GPS", "W": "Wifi", "C": "Cell"}[pm]
    assert (message.imei, message.imsi) == (imei, imsi)


# HTTPS -----------------------------------------------------------------------------------------

FORM = {
    "v": "3", "emergency_number": "112", "source": "sms", "time": "2026-11-28T06:00:00Z", "location_latitude": "-2.4900",
    "location_longitude": "112.9800", "location_accuracy": "12", "location_altitude": "18.5", "location_source": "GPS",
    "location_confidence": "68", "device_number": "+6281250004003", "device_imei": "356938035643809", "device_imsi": "510101234567890",
    "device_model": "Pixel 7",
}


def test_an_aml_https_form_gives_the_fix_and_the_callers_number_in_local_form() -> None:
    message = parse_aml_http(FORM)
    loc = message.location
    assert loc is not None
    assert (loc.source, loc.latitude, loc.longitude, loc.radius_m, loc.method, loc.confidence) == ("aml_http", -2.49, 112.98, 12, "GPS", 68)
    assert loc.measured_at == "2026-11-28T06:00:00+00:00"
    assert loc.detail == {"altitude_m": "18.5", "imei": "356938035643809"}
    assert (message.number, message.emergency_number, message.imei, message.imsi) == ("081250004003", "112", "356938035643809",
                                                                                      "510101234567890")
    assert message.raw_fields["device_model"] == "Pixel 7"


def test_time_in_epoch_milliseconds_and_a_fractional_confidence_are_understood() -> None:
    loc = parse_aml_http({**FORM, "time": "1795845600000", "location_confidence": "0.68", "location_source": "wifi"}).location
    assert loc is not None
    assert (loc.measured_at, loc.confidence, loc.method) == ("2026-11-28T06:00:00+00:00", 68, "Wifi")


def test_the_position_time_is_preferred_over_the_message_time() -> None:
    loc = parse_aml_http({**FORM, "location_time": "1795845540000"}).location
    assert loc is not None and loc.measured_at == "2026-11-28T05:59:00+00:00"


def test_an_https_form_with_almost_nothing_in_it_is_tolerated() -> None:
    message = parse_aml_http({"emergency_number": "112"})
    assert (message.location, message.number, message.emergency_number) == (None, "", "112")
    assert parse_aml_http({}).location is None
    assert parse_aml_http({"location_latitude": "-2.49", "location_longitude": ""}).location is None


@pytest.mark.parametrize(("change", "message"), [
    ({"location_latitude": "south"}, "location_latitude='south' is not a latitude"),
    ({"location_longitude": "999"}, "location_longitude='999' is not a longitude"),
    ({"device_number": "anonymous"}, "'anonymous' is not a phone number"),
])
def test_a_broken_position_or_number_is_refused_naming_the_field(change: dict[str, str], message: str) -> None:
    with pytest.raises(LocationParseError, match=message):
        parse_aml_http({**FORM, **change})


def test_broken_accuracy_or_time_is_left_out_and_noted() -> None:
    loc = parse_aml_http({**FORM, "location_accuracy": "-5", "time": "yesterday"}).location
    assert loc is not None and (loc.radius_m, loc.shape, loc.measured_at) == (None, "point", "")
    assert loc.detail["ignored"] == "location_accuracy=-5; time=yesterday"


@settings(max_examples=300)
@given(st.dictionaries(st.sampled_from(list(FORM) + ["location_time", "x"]), st.text(max_size=30), max_size=14))
def test_any_form_gives_an_aml_message_or_a_location_parse_error(fields: dict[str, str]) -> None:
    try:
        parse_aml_http(fields)
    except LocationParseError:
        pass


# Callers' numbers ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("raw", "normal"), [
    ("+6281234567890", "081234567890"),
    ("6281234567890", "081234567890"),
    ("081234567890", "081234567890"),
    ("+62 812-3456-7890", "081234567890"),
    ("(0812) 3456.7890", "081234567890"),
    ("tel:+6281234567890", "081234567890"),
    ("tel:+62-812-3456-7890;phone-context=+62", "081234567890"),
    ("sip:081234567890@10.0.0.5:5060", "081234567890"),
    ("sips:+6281234567890@ims.telkomsel.co.id;user=phone", "081234567890"),
    ('"Budi" <sip:+6281234567890@carrier.example>', "081234567890"),
    ("006281234567890", "081234567890"),
    ("+62 0812 3456 7890", "081234567890"),
    ("81234567890", "081234567890"),  # a gateway that dropped the trunk 0
    ("+6253121234", "053121234"),  # a Sampit landline
    ("0531 21234", "053121234"),
    ("112", "112"),
    ("+447911123456", "+447911123456"),
    ("00447911123456", "+447911123456"),
])
def test_indonesian_numbers_in_every_spelling_become_one(raw: str, normal: str) -> None:
    assert normalise_msisdn(raw) == normal


@pytest.mark.parametrize("raw", ["", "   ", "anonymous", "sip:anonymous@anonymous.invalid", "+", "+62", "+62000", "12", "0812abc", "1" * 16, "٠٨١٢٣٤٥٦٧٨"])
def test_text_that_is_no_phone_number_is_refused(raw: str) -> None:
    with pytest.raises(LocationParseError, match="is not a phone number"):
        normalise_msisdn(raw)


@settings(max_examples=500)
@given(st.one_of(st.text(max_size=30), st.from_regex(r"(tel:|sip:)?(\+62|62|0|00)?[0-9 -]{3,14}(@[a-z.]+)?", fullmatch=True)))
def test_a_normalised_number_is_stable_and_plain_digits(raw: str) -> None:
    try:
        once = normalise_msisdn(raw)
    except LocationParseError:
        return
    assert once.lstrip("+").isdigit() and once.isascii()
    assert normalise_msisdn(once) == once
