"""Where is the caller, on the real stack: PIDF-LO in the INVITE, the serving cell, AML
during the call, and the caller's own words when nothing better is known."""

from __future__ import annotations

import time
import urllib.parse
import wave

import pytest

from ivr import prompts
from ivr.plan import load_plans
from ivr.store import Incident
from tests.integration.media import speak, wav_to_pcap
from tests.integration.stack import Stack, sipp_args, wait_for

pytestmark = pytest.mark.asterisk

SAMPIT = (-2.5330, 112.9500)  # Sampit town centre, in Kecamatan Mentawa Baru Ketapang


def _incident(stack: Stack, caller: str) -> Incident:
    return wait_for(f"the incident of {caller}", lambda: stack.incident_for(caller))


def test_a_pidf_lo_circle_in_the_invite_is_on_the_incident_with_its_kecamatan_within_a_second(live: Stack) -> None:
    caller = "081250004001"
    call = live.sipp("caller_pidf", *sipp_args(("caller", caller), ("lat", str(SAMPIT[0])), ("lon", str(SAMPIT[1])), ("radius", "25")),
                     "-s", "112", "-d", "4000", background=True, timeout=30)
    incident = _incident(live, caller)
    locations = wait_for("the PIDF-LO position", lambda: live.locations(incident.id), timeout=5)
    answered = time.monotonic()
    pidf = next(loc for loc in locations if loc.source == "pidf")
    assert (pidf.latitude, pidf.longitude, pidf.radius_m) == (pytest.approx(SAMPIT[0]), pytest.approx(SAMPIT[1]), 25)
    assert pidf.kecamatan == "Mentawa Baru Ketapang"
    assert pidf.description.startswith("Kecamatan Mentawa Baru Ketapang, ±25 m")
    assert time.monotonic() - answered < 1.0 or pidf.received_at <= (incident.answered_at or "~")
    assert call.wait() == 0, call.report()
    # A precise position came with the call: the caller is not asked where they are.
    assert "ask_location" not in [e.kind for e in live.incident_events(incident.id)]


def test_the_serving_cell_from_p_access_network_info_gives_the_cells_position(live: Stack) -> None:
    caller = "081250004002"
    csv = live.tmp / "cells.csv"
    # 3GPP utran-cell-id-3gpp: MCC 510, MNC 10, TAC 0x1A2B, ECI 0x0C3D4E5 (28 bits).
    csv.write_text("radio,mcc,mnc,area,cell,lat,lon,radius_m,name\nLTE,510,10,6699,12834021,-2.5402,112.9561,1800,Sampit Kota sektor 2\n")
    loaded = live.ivr112("cells", "import", str(csv))
    assert "1 cell(s) loaded" in loaded.stdout
    call = live.sipp("caller_pani", *sipp_args(("caller", caller), ("cell", "510101A2B0C3D4E5")), "-s", "112", "-d", "3000", timeout=30)
    assert call.returncode == 0, call.report()
    incident = _incident(live, caller)
    cell = wait_for("the cell position", lambda: next((loc for loc in live.locations(incident.id) if loc.source == "cell"), None))
    assert (cell.latitude, cell.longitude, cell.radius_m) == (-2.5402, 112.9561, 1800)
    assert cell.detail["name"] == "Sampit Kota sektor 2"
    assert cell.kecamatan is not None


def test_an_aml_https_post_during_the_call_is_attached_to_it(live: Stack) -> None:
    caller = "081250004003"
    call = live.sipp("caller", *sipp_args(("caller", caller)), "-s", "112", "-d", "6000", background=True, timeout=30)
    incident = _incident(live, caller)
    form = {
        "emergency_number": "112", "time": "2026-11-28T06:00:00Z", "location_latitude": "-2.4900",
        "location_longitude": "112.9800", "location_accuracy": "12", "location_source": "GPS",
        "location_confidence": "68", "device_number": "+6281250004003", "device_imei": "356938035643809",
    }
    status, answer = live.post("/aml", urllib.parse.urlencode(form).encode(), content_type="application/x-www-form-urlencoded",
                               token=live.aml_token())
    assert status == 200 and answer["accepted"] is True and answer["incident_id"] == incident.id
    aml = next(loc for loc in live.locations(incident.id) if loc.source == "aml_http")
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


def test_with_no_position_the_caller_is_asked_speaks_and_the_recording_is_kept(live: Stack) -> None:
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
                     steps=[("pause", str(plan_ask_ms)), ("audio", str(pcap)), ("pause", str(int(seconds * 1000) + 4000))],
                     timeout=60)
    assert call.returncode == 0, call.report()
    incident = wait_for("the incident to close", lambda: (i := live.incident_for(caller)) and i.ended_at and i, timeout=30)
    recordings = [r for r in live.recordings(incident.id) if r.kind == "caller_location"]
    assert len(recordings) == 1
    path = live.layout.host(recordings[0].path)
    with wave.open(str(path)) as w:
        recorded = w.getnframes() / w.getframerate()
    assert recorded > 1.0  # the caller's words are in it
    # The operator can play it back through the API.
    detail = live.api(f"/api/incidents/{incident.id}")
    assert detail["recordings"][0]["url"].endswith(".wav")
