"""Where is the caller, on the real stack: PIDF-LO in the INVITE, the serving cell, AML
during the call, and the caller's own words when nothing better is known."""

from __future__ import annotations

import http.client
import http.server
import re
import socket
import ssl
import threading
import urllib.parse
import wave
from pathlib import Path

import pytest

from ivr import prompts
from ivr.plan import load_plans
from ivr.store import Incident
from tests.integration.media import speak, wav_to_pcap
from tests.integration.stack import Stack, sipp_args, wait_for

pytestmark = pytest.mark.asterisk

SAMPIT = (-2.5330, 112.9500)  # Sampit town centre, in Kecamatan Mentawa Baru Ketapang
EPSG_4326 = "urn:ogc:def:crs:EPSG::4326"


def _incident(stack: Stack, caller: str) -> Incident:
    return wait_for(f"the incident of {caller}", lambda: stack.incident_for(caller))


def test_a_pidf_lo_circle_in_the_invite_is_on_the_incident_with_its_kecamatan_within_a_second(live: Stack) -> None:
    caller = "081250004001"
    circle = (f'<gs:Circle srsName="{EPSG_4326}"><gml:pos>{SAMPIT[0]} {SAMPIT[1]}</gml:pos>'
              '<gs:radius uom="urn:ogc:def:uom:EPSG::9001">25</gs:radius></gs:Circle>')
    call = live.sipp("caller_pidf", *sipp_args(("caller", caller), ("shape", circle)), "-s", "112", "-d", "4000", background=True, timeout=30)
    incident = _incident(live, caller)
    locations = wait_for("the PIDF-LO position", lambda: live.locations(incident.id), timeout=5)
    pidf = next(loc for loc in locations if loc.source == "pidf")
    assert (pidf.latitude, pidf.longitude, pidf.radius_m) == (pytest.approx(SAMPIT[0]), pytest.approx(SAMPIT[1]), 25)
    assert pidf.kecamatan == "Mentawa Baru Ketapang"
    assert pidf.description.startswith("Kecamatan Mentawa Baru Ketapang, ±25 m")
    assert call.wait() == 0, call.report()
    # A precise position came with the call: the caller is not asked where they are.
    assert "ask_location" not in [e.kind for e in live.incident_events(incident.id)]


# A square around Baamang's capital, and a civic address: shapes Asterisk reads into GEOLOC_PROFILE.
SQUARE = [(-2.500, 112.960), (-2.500, 112.970), (-2.510, 112.970), (-2.510, 112.960), (-2.500, 112.960)]
POLYGON = (f'<gml:Polygon srsName="{EPSG_4326}"><gml:exterior><gml:LinearRing>'
           + "".join(f"<gml:pos>{lat} {lon}</gml:pos>" for lat, lon in SQUARE) + "</gml:LinearRing></gml:exterior></gml:Polygon>")
CIVIC = ('<ca:civicAddress xmlns:ca="urn:ietf:params:xml:ns:pidf:geopriv10:civicAddr" xml:lang="id"><ca:country>ID</ca:country>'
         '<ca:A1>Kalimantan Tengah</ca:A1><ca:A2>Kotawaringin Timur</ca:A2><ca:A3>Sampit</ca:A3><ca:RD>Jalan Ahmad Yani</ca:RD>'
         '<ca:HNO>12</ca:HNO></ca:civicAddress>')


@pytest.mark.parametrize(("caller", "shape"), [("081250004011", POLYGON), ("081250004012", CIVIC)], ids=["polygon", "civic"])
def test_a_pidf_lo_polygon_or_civic_address_in_the_invite_is_on_the_incident(live: Stack, caller: str, shape: str) -> None:
    call = live.sipp("caller_pidf", *sipp_args(("caller", caller), ("shape", shape)), "-s", "112", "-d", "3000", timeout=30)
    assert call.returncode == 0, call.report()
    incident = _incident(live, caller)
    pidf = wait_for("the PIDF-LO location", lambda: next((loc for loc in live.locations(incident.id) if loc.source == "pidf"), None))
    if shape is POLYGON:
        assert pidf.shape == "polygon" and pidf.kecamatan == "Baamang"
        assert (pidf.latitude, pidf.longitude) == (pytest.approx(-2.505, abs=1e-3), pytest.approx(112.965, abs=1e-3))
        assert pidf.radius_m is not None and 700 < pidf.radius_m < 900  # the circle round the square's corners
    else:
        assert pidf.shape == "civic" and pidf.latitude is None
        assert "Jalan Ahmad Yani 12" in pidf.description and "Sampit" in pidf.description


def test_the_serving_cell_from_p_access_network_info_gives_the_cells_position(live: Stack) -> None:
    caller = "081250004002"
    csv = live.tmp / "cells.csv"
    # 3GPP utran-cell-id-3gpp: MCC 510, MNC 10, TAC 0x1A2B, ECI 0x0C3D4E5 (28 bits).
    csv.write_text("radio,mcc,mnc,area,cell,lat,lon,radius_m,name\nLTE,510,10,6699,12834021,-2.5402,112.9561,1800,Sampit Kota sektor 2\n")
    loaded = live.ivr112("cells", "import", str(csv))
    assert "1 cell(s) loaded" in loaded.stdout
    pani = "3GPP-E-UTRAN-FDD; utran-cell-id-3gpp=510101A2B0C3D4E5; network-provided"
    call = live.sipp("caller_header", *sipp_args(("caller", caller), ("header_name", "P-Access-Network-Info"), ("header_value", pani)),
                     "-s", "112", "-d", "3000", timeout=30)
    assert call.returncode == 0, call.report()
    incident = _incident(live, caller)
    cell = wait_for("the cell position", lambda: next((loc for loc in live.locations(incident.id) if loc.source == "cell"), None))
    assert (cell.latitude, cell.longitude, cell.radius_m) == (-2.5402, 112.9561, 1800)
    assert cell.detail["name"] == "Sampit Kota sektor 2"
    assert cell.kecamatan is not None


def _door_ca(stack: Stack) -> Path:
    """The certificate `ivr112 aml door` says to give the carrier."""
    shown = stack.ivr112("aml", "door").stdout
    found = re.search(r"^give them:\s+(\S+)", shown, re.MULTILINE)
    assert found, shown
    return Path(found.group(1))


def _handshake(port: int, context: ssl.SSLContext, server_name: str) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock, context.wrap_socket(sock, server_hostname=server_name):
        pass


def test_an_aml_https_post_during_the_call_reaches_the_app_over_tls_and_is_attached_to_it(live: Stack) -> None:
    caller = "081250004003"
    ca = _door_ca(live)
    call = live.sipp("caller", *sipp_args(("caller", caller)), "-s", "112", "-d", "6000", background=True, timeout=30)
    incident = _incident(live, caller)
    form = {
        "emergency_number": "112", "time": "2026-11-28T06:00:00Z", "location_latitude": "-2.4900",
        "location_longitude": "112.9800", "location_accuracy": "12", "location_source": "GPS",
        "location_confidence": "68", "device_number": "+6281250004003", "device_imei": "356938035643809",
    }
    body = urllib.parse.urlencode(form).encode()
    # A gateway that speaks plain HTTP to the door gets no HTTP answer at all.
    plain = http.client.HTTPConnection("127.0.0.1", live.settings.aml_port, timeout=5)
    with pytest.raises((ConnectionError, http.client.HTTPException)):
        plain.request("POST", "/aml", body, {"Authorization": f"Bearer {live.aml_token()}"})
        plain.getresponse().read()
    plain.close()
    # One that trusts another CA, or expects another name, stops at the handshake.
    with pytest.raises(ssl.SSLCertVerificationError, match="unable to get local issuer certificate"):
        live.aml_post(body, token=live.aml_token(), cafile=live.tmp / "test-ca.pem")
    with pytest.raises(ssl.SSLCertVerificationError, match="Hostname mismatch"):
        _handshake(live.settings.aml_port, ssl.create_default_context(cafile=str(ca)), "aml.carrier.example")
    # Trusting the door's CA and checking its name, the message is taken and placed on the call.
    status, answer = live.aml_post(body, token=live.aml_token(), cafile=ca)
    assert status == 200 and answer["accepted"] is True and answer["incident_id"] == incident.id
    [aml] = [loc for loc in live.locations(incident.id) if loc.source == "aml_http"]
    assert (aml.latitude, aml.longitude, aml.radius_m) == (-2.49, 112.98, 12)
    assert aml.kecamatan == "Baamang"
    assert call.wait() == 0, call.report()


def test_aml_from_an_unknown_sender_is_refused_and_garbage_is_answered_without_a_crash(live: Stack) -> None:
    status, answer = live.post("/aml", b"location_latitude=1", content_type="application/x-www-form-urlencoded", token="wrong")
    assert status == 401 and answer["accepted"] is False
    status, answer = live.post("/aml/sms", b"from=0812&text=A%22ML%3D1%3Blt%3Dxx", content_type="application/x-www-form-urlencoded",
                               token=live.aml_token())
    assert status == 400 and answer["accepted"] is False
    assert live.health()["ari_connected"] is True


def test_with_no_position_the_caller_is_asked_speaks_keys_the_kecamatan_and_both_are_kept(live: Stack) -> None:
    caller = "081250004004"
    wav = speak("Saya di Jalan Ahmad Yani, dekat pasar Sampit.", live.tmp / "words.wav")
    pcap = live.tmp / "words.pcap"
    seconds = wav_to_pcap(wav, pcap)
    plans = load_plans(live.settings.plan_paths)
    files = {(f.name, f.language): f.path for f in prompts.require(plans.plans, live.settings.data_path)}
    asked = [files[(p, "id")] for p in (*plans.default.entry.greeting, plans.default.location.ask_prompt)]
    # Speak just after the question and its 0.4 s beep.
    plan_ask_ms = int((sum(prompts.duration(p) for p in asked) + 0.4 + 0.6) * 1000)
    call = live.sipp("caller", *sipp_args(("caller", caller)), "-s", "112", "-d", "2000",
                     # The test plan records 3 s at most; then the kecamatan list plays and "12" barges in.
                     steps=[("pause", str(plan_ask_ms)), ("audio", str(pcap)), ("pause", str(int(max(seconds, 3) * 1000) + 1500)),
                            ("dtmf", "1"), ("dtmf", "2"), ("pause", "3000")],
                     timeout=60)
    assert call.returncode == 0, call.report()
    incident = wait_for("the incident to close", lambda: (i := live.incident_for(caller)) and i.ended_at and i, timeout=30)
    recordings = [r for r in live.recordings(incident.id) if r.kind == "caller_location"]
    assert len(recordings) == 1
    path = live.layout.host(recordings[0].path)
    with wave.open(str(path)) as w:
        recorded = w.getnframes() / w.getframerate()
    assert recorded > 1.0  # the caller's words are in it
    # Asterisk heard them too (talk detection, switched on by the plan's dialplan): not a silent caller.
    assert [e.kind for e in live.incident_events(incident.id)].count("talking") == 1
    # The operator can play it back through the API.
    detail = live.api(f"/api/incidents/{incident.id}")
    assert detail["recordings"][0]["url"].endswith(".wav")
    # The kecamatan keyed in after the recording: number 12 in the Kotim plan is Parenggean.
    keyed = next(loc for loc in live.locations(incident.id) if loc.source == "keypad")
    assert keyed.kecamatan == "Parenggean" and not keyed.latitude
    assert keyed.description == "Kecamatan Parenggean (pilihan penelepon)"
    assert [e.detail["kecamatan"] for e in live.incident_events(incident.id) if e.kind == "kecamatan"] == ["Parenggean"]


def test_an_aml_sms_forwarded_by_the_gateway_during_the_call_is_attached_to_it(live: Stack) -> None:
    caller = "081250004005"
    call = live.sipp("caller", *sipp_args(("caller", caller)), "-s", "112", "-d", "6000", background=True, timeout=30)
    incident = _incident(live, caller)
    text = 'A"ML=1;lt=-2.54000;lg=112.93500;rd=30;top=20261128060000;lc=68;pm=G;si=510101234567890;ei=356938035643809;mcc=510;mnc=10;ml=124'
    body = urllib.parse.urlencode({"from": "+6281250004005", "text": text}).encode()
    status, answer = live.post("/aml/sms", body, content_type="application/x-www-form-urlencoded", token=live.aml_token())
    assert status == 200 and answer["incident_id"] == incident.id
    sms = next(loc for loc in live.locations(incident.id) if loc.source == "aml_sms")
    assert (sms.latitude, sms.longitude, sms.radius_m) == (-2.54, 112.935, 30)
    assert sms.kecamatan == "Mentawa Baru Ketapang"
    assert call.wait() == 0, call.report()


def test_aml_that_arrives_after_the_call_ended_is_attached_to_that_calls_incident(live: Stack) -> None:
    caller = "081250004006"
    call = live.sipp("caller", *sipp_args(("caller", caller)), "-s", "112", "-d", "1500", timeout=30)
    assert call.returncode == 0, call.report()
    ended = wait_for("the incident to close", lambda: (i := live.incident_for(caller)) and i.ended_at and i, timeout=30)
    form = {"location_latitude": "-2.3500", "location_longitude": "112.7000", "location_accuracy": "40",
            "location_source": "GPS", "device_number": "081250004006"}
    status, answer = live.post("/aml", urllib.parse.urlencode(form).encode(), content_type="application/x-www-form-urlencoded",
                               token=live.aml_token())
    assert status == 200 and answer["incident_id"] == ended.id
    late = next(loc for loc in live.locations(ended.id) if loc.source == "aml_http")
    assert (late.latitude, late.longitude, late.radius_m) == (-2.35, 112.7, 40)


PIDF_BY_REFERENCE = """<?xml version="1.0" encoding="UTF-8"?>
<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:gp="urn:ietf:params:xml:ns:pidf:geopriv10"
  xmlns:gml="http://www.opengis.net/gml" xmlns:gs="http://www.opengis.net/pidflo/1.0" entity="pres:081250004007@carrier">
 <tuple id="lis"><status><gp:geopriv><gp:location-info>
  <gs:Circle srsName="urn:ogc:def:crs:EPSG::4326"><gml:pos>-2.5050 112.9650</gml:pos>
   <gs:radius uom="urn:ogc:def:uom:EPSG::9001">60</gs:radius></gs:Circle>
 </gp:location-info><gp:method>Cell</gp:method></gp:geopriv></status></tuple>
</presence>
"""


def test_a_geolocation_uri_by_reference_is_recorded_and_fetched_over_https(live: Stack) -> None:
    caller = "081250004007"
    fetched: list[str] = []

    class LocationServer(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            fetched.append(self.path)
            body = PIDF_BY_REFERENCE.encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/pidf+xml")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), LocationServer)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    live.ca.issue_cert("127.0.0.1").configure_cert(context)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        uri = f"https://127.0.0.1:{server.server_address[1]}/lis/{caller}"
        call = live.sipp("caller_header", *sipp_args(("caller", caller), ("header_name", "Geolocation"), ("header_value", f"<{uri}>")),
                         "-s", "112", "-d", "3000", timeout=30)
        assert call.returncode == 0, call.report()
        incident = _incident(live, caller)
        fetched_loc = wait_for("the position behind the reference",
                               lambda: next((loc for loc in live.locations(incident.id) if loc.source == "pidf"), None))
    finally:
        server.shutdown()
        server.server_close()
    assert fetched == [f"/lis/{caller}"]
    reference = next(loc for loc in live.locations(incident.id) if loc.source == "reference")
    assert reference.uri == uri
    assert (fetched_loc.latitude, fetched_loc.longitude, fetched_loc.radius_m) == (-2.505, 112.965, 60)
    assert fetched_loc.uri == uri and fetched_loc.kecamatan == "Baamang"


def test_a_geolocation_header_with_commas_and_quotes_reaches_the_incident_whole(live: Stack) -> None:
    # The plan's dialplan hands the app the caller's headers in the StasisStart (a copy
    # made with Set(), ari.conf channelvars): a comma or a quote in the header must not
    # cut the copy short, or the second URI would be lost.
    caller = "081250004013"
    header = '<sip:lis-a@carrier.example>;note="kec. Baamang, Sampit", <sip:lis-b@carrier.example>'
    call = live.sipp("caller_header", *sipp_args(("caller", caller), ("header_name", "Geolocation"), ("header_value", header)),
                     "-s", "112", "-d", "3000", timeout=30)
    assert call.returncode == 0, call.report()
    incident = _incident(live, caller)
    def references() -> list[str]:
        return sorted(loc.uri or "" for loc in live.locations(incident.id) if loc.source == "reference")

    wait_for("two Geolocation URIs on the incident", lambda: len(references()) >= 2, timeout=5)
    assert references() == ["sip:lis-a@carrier.example", "sip:lis-b@carrier.example"]
