"""The console in a real browser: headless Debian Chromium driven by Playwright, the app
and Asterisk real, SIPp as caller and operator. Screenshots of a failed test are kept in
the test's folder."""

from __future__ import annotations

import time
import urllib.parse
from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration.browser import FLAGS, chromium_path, keep_screenshot_if_failed, log_in
from tests.integration.stack import Stack, sipp_args, wait_for

pytestmark = pytest.mark.asterisk

PIDF_CIRCLE = ('<gs:Circle srsName="urn:ogc:def:crs:EPSG::4326"><gml:pos>-2.505 112.965</gml:pos>'
               '<gs:radius uom="urn:ogc:def:uom:EPSG::9001">30</gs:radius></gs:Circle>')


@pytest.fixture
def chromium() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium_path(), args=FLAGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(live: Stack, chromium: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    """The operator's page; a screenshot of it is kept when the test fails."""
    context = chromium.new_context(viewport={"width": 1400, "height": 1000})
    tab = context.new_page()
    try:
        yield tab
    finally:
        keep_screenshot_if_failed(live, request, tab)
        context.close()


@pytest.fixture
def supervisor_page(chromium: Any) -> Iterator[Any]:
    """A second browser session beside the operator's: the supervisor's."""
    context = chromium.new_context(viewport={"width": 1400, "height": 1400})
    try:
        yield context.new_page()
    finally:
        context.close()


def _log_in(live: Stack, page: Any, name: str) -> None:
    log_in(live, page, name)
    page.wait_for_selector("#live.on")
    if page.is_visible("#phone-mode"):  # these operators answer on the SIPp softphone beside the page
        page.select_option("#phone-mode", "softphone")
        page.wait_for_selector("#phone-state[data-state=phone_off]")


def test_an_operator_sees_the_answered_call_with_its_pidf_position_on_the_map_and_classifies_it(
    live: Stack, page: Any, supervisor_page: Any
) -> None:
    caller = "081250006001"
    _log_in(live, supervisor_page, "supervisor1")
    supervisor_page.wait_for_selector("#figures:not([hidden]) #fig-calls:not(:empty)")
    emergencies_before = int(supervisor_page.text_content("#fig-emergency") or "0")
    port = live.sipp_port()
    live.register_operator("operator1", port, login=False)  # the softphone beside the page
    _log_in(live, page, "operator1")
    assert page.text_content("#my-status") == "di luar antrean"
    page.click("#shift [data-action=login]")
    page.wait_for_selector("#my-status[data-status=ready]")
    operator = live.sipp("answer", port=port, background=True, timeout=60)
    circle = ('<gs:Circle srsName="urn:ogc:def:crs:EPSG::4326"><gml:pos>-2.505 112.965</gml:pos>'
              '<gs:radius uom="urn:ogc:def:uom:EPSG::9001">30</gs:radius></gs:Circle>')
    call = live.sipp("caller_pidf", *sipp_args(("caller", caller), ("shape", circle)), "-s", "112", "-d", "500",
                     steps=[("pause", "1000"), ("dtmf", "0"), ("pause", "8000")], background=True, timeout=60)
    incident = wait_for("the operator to answer", lambda: (i := live.incident_for(caller)) and i.operator_answered_at and i, timeout=20)
    answered = time.monotonic()
    page.wait_for_selector(f"#call[data-incident='{incident.id}']", timeout=2000)
    page.wait_for_selector("#map circle.dot[data-source=pidf]", timeout=2000)
    popped = time.monotonic() - answered
    assert page.text_content("#c-caller") == caller
    assert "Kecamatan Baamang, ±30 m" in page.text_content("#c-locations")
    assert page.locator("#map path").count() == 17  # Kotim's kecamatan, drawn offline
    # AML arrives during the call: the page redraws with the new position, unasked.
    form = {"location_latitude": "-2.5400", "location_longitude": "112.9350", "location_accuracy": "12",
            "location_source": "GPS", "device_number": caller}
    status, _ = live.post("/aml", urllib.parse.urlencode(form).encode(), content_type="application/x-www-form-urlencoded",
                          token=live.aml_token())
    assert status == 200
    page.wait_for_selector("#map circle.dot[data-source=aml_http]", timeout=2000)
    assert "Kecamatan Mentawa Baru Ketapang, ±12 m (AML, GPS)" in page.text_content("#c-locations")
    page.fill("#notes", "kebakaran rumah")
    page.click("#classify [data-category=emergency]")
    page.wait_for_selector("#c-category:has-text('Darurat')")
    stored = live.read(lambda s: s.get(incident.id))
    assert stored is not None and stored.category == "emergency" and stored.classified_by == "operator1"
    assert stored.notes == "kebakaran rumah"
    # The supervisor's figures follow the classification live.
    supervisor_page.wait_for_selector(f"#fig-emergency:has-text('{emergencies_before + 1}')", timeout=5000)
    supervisor_page.wait_for_selector("#wall-operator1")
    supervisor_page.screenshot(path=str(live.tmp / "console-supervisor.png"), full_page=True)
    # The supervisor opens the incident from the latest list (its recording is there to play)
    # and clears a number's prank flag.
    supervisor_page.click(f"#recent button[data-incident='{incident.id}']")
    supervisor_page.wait_for_selector(f"#call[data-incident='{incident.id}'] #c-recordings audio")
    supervisor_page.fill("#clear-number", "081250006999")
    supervisor_page.click("#clear-prank")
    supervisor_page.wait_for_selector("#message:has-text('081250006999')")
    cleared = live.read(lambda s: s.number_clear("081250006999"))
    assert cleared is not None and cleared.cleared_by == "supervisor1"
    # The supervisor switches the major-incident message on and off from the page.
    supervisor_page.fill("#announce-id", "Kebakaran pasar Sampit sudah ditangani. Untuk hal lain, tekan satu.")
    supervisor_page.click("#announce-on")
    supervisor_page.wait_for_selector("#announce-state[data-on=true]", timeout=15000)
    assert live.api("/api/announcement")["on"] is True
    supervisor_page.click("#announce-off")
    supervisor_page.wait_for_selector("#announce-state[data-on=false]")
    assert live.api("/api/announcement")["on"] is False
    assert call.wait() == 0, call.report()
    assert operator.wait() == 0, operator.report()
    print(f"call shown on the page {popped:.2f} s after the operator answered")
    page.click("#lang")
    assert page.text_content("#call h2") == "Call in hand"
    page.screenshot(path=str(live.tmp / "console-operator.png"), full_page=True)


def test_a_page_that_loses_its_live_stream_says_so_and_reconnects(live: Stack, page: Any) -> None:
    _log_in(live, page, "operator1")
    live.app_stop()
    try:
        page.wait_for_selector("#live.off", timeout=10000)
        assert page.text_content("#live") == "Terputus, menyambung ulang…"
    finally:
        live.app_start()
    # The session was kept in the store: the stream reconnects by itself, no new login.
    page.wait_for_selector("#live.on", timeout=20000)
    assert page.text_content("#live") == "Terhubung"
    assert page.is_visible("#console-view")


def test_the_call_pops_on_the_operators_page_while_it_rings_and_the_wall_shows_who_is_in_the_menu(
    live: Stack, page: Any, supervisor_page: Any
) -> None:
    gives_up, stays = "081250006201", "081250006202"
    _log_in(live, supervisor_page, "supervisor1")
    port = live.sipp_port()
    live.register_operator("operator1", port, login=False)
    _log_in(live, page, "operator1")
    page.click("#shift [data-action=login]")
    page.wait_for_selector("#my-status[data-status=ready]")

    # A caller asks for an operator and hangs up while the softphone still rings: the call
    # pops with its number and a "Berdering" banner, then goes away.
    operator = live.sipp("answer_late", port=port, background=True, timeout=60)
    call = live.sipp("caller", *sipp_args(("caller", gives_up)), "-s", "112", "-d", "100",
                     steps=[("pause", "1000"), ("dtmf", "0"), ("pause", "4000")], background=True, timeout=60)
    page.wait_for_selector("#call[data-ringing=true] #ringing:visible", timeout=15000)
    assert page.text_content("#c-caller") == gives_up
    assert page.text_content("#ringing") == "Berdering: angkat telepon untuk menjawab"
    page.wait_for_selector("#call", state="hidden", timeout=15000)
    assert call.wait() == 0, call.report()
    assert operator.wait() == 0 and "RING-END=cancelled" in operator.logs(), operator.report()
    abandoned = live.incident_for(gives_up)
    assert abandoned is not None and abandoned.operator_answered_at is None

    # A caller with a position presses 9 (English) and listens to the menu: the supervisor's
    # wall lists them in the menu, with what the menu learned, and the seconds tick.
    operator = live.sipp("answer_late", port=port, background=True, timeout=60)
    call = live.sipp("caller_pidf", *sipp_args(("caller", stays), ("shape", PIDF_CIRCLE)), "-s", "112", "-d", "500",
                     steps=[("pause", "1000"), ("dtmf", "9"), ("pause", "7000"), ("dtmf", "0"), ("pause", "10000")],
                     background=True, timeout=60)
    incident = wait_for("the call's incident", lambda: live.incident_for(stays), timeout=15)
    row = f"#wall-ivr li[data-incident='{incident.id}']"
    supervisor_page.wait_for_selector(f"{row}[data-state^=menu]:has-text('Baamang ±30 m')", timeout=15000)
    text = supervisor_page.text_content(row) or ""
    assert stays in text and "menu pilihan" in text and "tombol: 9 → bahasa en" in text, text
    first = supervisor_page.text_content(f"{row} .since")
    wait_for("the seconds since arrival to tick", lambda: supervisor_page.text_content(f"{row} .since") != first, timeout=3)
    supervisor_page.screenshot(path=str(live.tmp / "console-wall-ivr.png"), full_page=True)

    # It presses 0: it leaves the menu, and the operator's page shows it while it rings,
    # before the answer, with its position on the map.
    page.wait_for_selector(f"#call[data-incident='{incident.id}'][data-ringing=true] #ringing:visible", timeout=15000)
    page.wait_for_selector("#map circle.dot[data-source=pidf]", timeout=2000)
    ringing = live.read(lambda s: s.get(incident.id))
    assert ringing is not None and ringing.operator_answered_at is None
    assert page.text_content("#c-caller") == stays and page.text_content("#my-status") == "berdering"
    assert "Kecamatan Baamang, ±30 m" in page.text_content("#c-locations")
    assert "9" in (page.text_content("#c-path") or "")
    page.screenshot(path=str(live.tmp / "console-ringing.png"), full_page=True)
    supervisor_page.wait_for_selector(row, state="detached", timeout=5000)

    # The softphone answers: the banner goes, the call stays in hand.
    page.wait_for_selector("#my-status[data-status=talking]", timeout=15000)
    page.wait_for_selector("#ringing", state="hidden", timeout=2000)
    assert page.get_attribute("#call", "data-incident") == str(incident.id)
    assert call.wait() == 0, call.report()
    assert operator.wait() == 0 and "RING-END=answered" in operator.logs(), operator.report()
