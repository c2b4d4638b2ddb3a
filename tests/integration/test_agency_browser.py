"""The agency's page in a real browser (Debian's Chromium): the 112 operator answers a
PIDF-LO caller, writes notes and transfers the call to the police from the console; the
police's dispatcher, logged in on the agency page, sees the incident live with the
caller's position on the map and the notes, acknowledges "Unit diberangkatkan", and the
operator's page shows it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration.browser import FLAGS, chromium_path, keep_screenshot_if_failed, log_in
from tests.integration.stack import Stack, sipp_args, wait_for
from tests.integration.test_agency_data import CIRCLE, POLICE_1
from tests.integration.test_agency_page import agency_password

pytestmark = pytest.mark.asterisk


@pytest.fixture
def pages(live: Stack, request: pytest.FixtureRequest) -> Iterator[tuple[Any, Any]]:
    """The operator's page and the police dispatcher's, in two browser sessions; screenshots kept on failure."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium_path(), args=FLAGS)
        try:
            operator = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
            agency = browser.new_context(viewport={"width": 1200, "height": 1000}).new_page()
            try:
                yield operator, agency
            finally:
                keep_screenshot_if_failed(live, request, operator)
                keep_screenshot_if_failed(live, request, agency)
        finally:
            browser.close()


def test_the_police_page_shows_the_transferred_incident_and_its_acknowledgement_reaches_the_operator(
        live: Stack, pages: tuple[Any, Any]) -> None:
    operator_page, agency_page = pages
    caller = "081250017301"
    # The police's dispatcher logs in through the console's login and lands on the agency page.
    password = agency_password(live, "polres2", "police")
    agency_page.goto(f"http://{live.settings.http_host}:{live.settings.http_port}/")
    agency_page.fill("input[name=name]", "polres2")
    agency_page.fill("input[name=password]", password)
    agency_page.click("#login button[type=submit]")
    agency_page.wait_for_selector("#agency-view:not([hidden])")
    agency_page.wait_for_selector("#live.on")
    assert agency_page.url.endswith("/agency")
    # The operator answers the caller on the softphone beside the console.
    port = live.sipp_port()
    live.register_operator("operator1", port, login=False)
    log_in(live, operator_page, "operator1")
    operator_page.wait_for_selector("#live.on")
    if operator_page.is_visible("#phone-mode"):
        operator_page.select_option("#phone-mode", "softphone")
    operator_page.click("#shift [data-action=login]")
    operator_page.wait_for_selector("#my-status[data-status=ready]")
    operator = live.sipp("answer", port=port, background=True, timeout=75)
    police = live.sipp("agency_saves_invite", port=live.trunk_ports[POLICE_1], background=True, timeout=75)
    call = live.sipp("caller_pidf", *sipp_args(("caller", caller), ("shape", CIRCLE)), "-s", "112", "-d", "500",
                     steps=[("pause", "1000"), ("dtmf", "0"), ("pause", "30000")], background=True, timeout=75)
    incident = wait_for("the operator to answer", lambda: (i := live.incident_for(caller)) and i.operator_answered_at and i, timeout=20)
    operator_page.wait_for_selector(f"#call[data-incident='{incident.id}']")
    operator_page.fill("#notes", "Kebakaran rumah, dua orang terjebak")
    operator_page.click("#classify [data-category=emergency]")
    operator_page.wait_for_selector("#c-category:has-text('Darurat')")
    # Not the police's yet: their page does not list it.
    assert agency_page.locator(f"#incidents button[data-incident='{incident.id}']").count() == 0
    operator_page.click("#transfer button[data-agency=police][data-mode=blind]")
    # The police's page lists it live, and shows the position on the map and the operator's notes.
    agency_page.click(f"#incidents button[data-incident='{incident.id}']", timeout=10000)
    agency_page.wait_for_selector(f"#incident[data-incident='{incident.id}'] #map circle.dot")
    assert "Kecamatan Mentawa Baru Ketapang" in agency_page.text_content("#i-locations")
    assert "±25 m" in agency_page.text_content("#i-locations")
    assert agency_page.text_content("#i-notes") == "Kebakaran rumah, dua orang terjebak"
    agency_page.wait_for_selector("#i-status[data-status=Connected]", timeout=15000)  # the police's trunk answered
    assert agency_page.locator("#i-recordings audio").count() == 0  # recordings are not shared with the police
    # The dispatcher acknowledges; the operator's page shows it.
    agency_page.fill("#ack-note", "Patroli 2 berangkat")
    agency_page.click("#ack")
    agency_page.wait_for_selector("#i-acks li:has-text('Unit diberangkatkan')")
    operator_page.wait_for_selector("#c-acks li:has-text('Unit diberangkatkan: police (polres2')", timeout=5000)
    assert "Patroli 2 berangkat" in operator_page.text_content("#c-acks")
    agency_page.screenshot(path=str(live.tmp / "agency-page.png"), full_page=True)
    assert call.wait() == 0, call.report()
    assert operator.wait() == 0, operator.report()
    assert police.wait() == 0, police.report()
