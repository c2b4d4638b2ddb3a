"""The browser phone, end to end: Debian's Chromium (headless, fake microphone playing beeps
of a known pitch) registers over wss to the real Asterisk as the operator's WebRTC endpoint,
a SIPp 112 caller is queued to it, the page rings, the test clicks Answer, and audio is
measured both ways (the page's RTCPeerConnection statistics, Asterisk's RTP counters, and
the RTP reaching the SIPp caller, which must carry the operator's pitch). Then what an
operator does with the call from the page: hang up, lose the network, transfer the caller
to the police or bring the police into a conference."""

from __future__ import annotations

import base64
import json
import re
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ari_app.asterisk.render import ARI_USER
from ari_app.calls.agency_leg import AGENCY_DROP_S
from ivr.secrets import load_or_create
from ivr.store import Incident
from tests.integration.browser import PHONE_FLAGS, chromium_path, keep_screenshot_if_failed, log_in
from tests.integration.media import Ear, speak, tone, tone_windows, wav_to_pcap
from tests.integration.stack import Sipp, Stack, sipp_args, wait_for

pytestmark = pytest.mark.asterisk

OPERATOR = "operator1"
OPERATOR_HZ = 1100.0


@pytest.fixture
def voices(live: Stack) -> tuple[Path, Path]:
    """What the operator's microphone says (a WAV for Chromium: beeps at OPERATOR_HZ, a pitch
    no prompt or caller has) and what the caller says (speech, a pcap for SIPp)."""
    folder = live.tmp / "voices"
    folder.mkdir(exist_ok=True)
    mic = tone(folder / "operator.wav", hz=OPERATOR_HZ)
    caller = speak("Tolong, ada kebakaran di pasar Sampit. " * 3, folder / "caller.wav")
    wav_to_pcap(caller, folder / "caller.pcap")
    return mic, folder / "caller.pcap"


@pytest.fixture
def tab(live: Stack, voices: tuple[Path, Path], request: pytest.FixtureRequest) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium_path(), args=[*PHONE_FLAGS, f"--use-file-for-fake-audio-capture={voices[0]}"])
        # The WebSocket's certificate comes from the operators' local CA, which an operator's PC
        # trusts once installed (docs/webrtc.md); this throwaway browser profile has no CA store.
        context = browser.new_context(viewport={"width": 1400, "height": 1200}, ignore_https_errors=True)
        tab = context.new_page()
        try:
            yield tab
        finally:
            keep_screenshot_if_failed(live, request, tab)
            context.close()
            browser.close()


def _asterisk_rtp(live: Stack, endpoint: str) -> tuple[int, int]:
    """Asterisk's own RTP counters (packets received, sent) on the endpoint's channel, from ARI."""
    secrets = load_or_create(live.settings.data_path)
    auth = "Basic " + base64.b64encode(f"{ARI_USER}:{secrets.ari_password}".encode()).decode()
    base = f"http://{live.settings.ari_host}:{live.settings.ari_port}/ari"

    def get(path: str) -> Any:
        with urllib.request.urlopen(urllib.request.Request(base + path, headers={"Authorization": auth}), timeout=5) as resp:
            return json.load(resp)

    for channel in get("/channels"):
        if channel["name"].startswith(f"PJSIP/{endpoint}-"):
            stats = get(f"/channels/{channel['id']}/rtp_statistics")
            return int(stats["rxcount"]), int(stats["txcount"])
    return 0, 0


def _stats(page: Any) -> dict[str, Any]:
    return dict(page.evaluate("ivr112Phone.stats()") or {})


@pytest.fixture
def page(live: Stack, tab: Any) -> Any:
    """The page, once the operator has logged in to the console, the browser phone has
    registered by itself (no account to type) and the operator has joined the queue on it."""
    page = tab
    log_in(live, page, OPERATOR)
    page.wait_for_selector("#phone-state[data-state=phone_ready]", timeout=15000)
    assert OPERATOR + ".web" in live.asterisk_cli("pjsip show contacts")
    assert page.text_content("#phone-state") == "Siap menerima panggilan"
    page.click("#shift [data-action=login]")
    try:
        page.wait_for_selector("#my-status[data-status=ready]", timeout=20000)
    except Exception as exc:  # say what the page and the board showed instead
        raise AssertionError(f"not ready in the queue: the page says {page.get_attribute('#my-status', 'data-status')!r}, "
                             f"the board {live.board()[OPERATOR]}, Asterisk:\n{live.asterisk_cli('queue show kotim-operators')}") from exc
    assert "PJSIP/operator1.web" in live.asterisk_cli("queue show kotim-operators")
    return page


def _caller(live: Stack, caller: str, voices: tuple[Path, Path], *, stays_ms: int | None = None) -> Sipp:
    """A 112 caller who presses 0 (the operators), then talks; stays until hung up on, or
    hangs up itself `stays_ms` after the menu answered."""
    steps = [("pause", "1000"), ("dtmf", "0"), ("pause", "3000"), ("audio", str(voices[1]))]
    if stays_ms is None:
        return live.sipp("caller_talks", *sipp_args(("caller", caller)), "-s", "112", steps=steps, background=True, timeout=90)
    return live.sipp("caller", *sipp_args(("caller", caller)), "-s", "112", "-d", "0", steps=[*steps, ("pause", str(stays_ms))],
                     background=True, timeout=90)


def _answer_in_page(live: Stack, page: Any, caller: str, *, ring_s: float = 20) -> Incident:
    """The page rings for `caller` (within `ring_s`); the operator clicks Answer; returns the
    incident once it names the operator."""
    page.wait_for_selector("#phone[data-call=ringing] #phone-answer:visible", timeout=ring_s * 1000)
    page.click("#phone-answer")
    page.wait_for_selector("#phone[data-call=talking]", timeout=10000)
    page.wait_for_selector("#my-status[data-status=talking]", timeout=10000)
    return wait_for("the incident to name the operator",
                    lambda: (i := live.incident_for(caller)) and i.operator == OPERATOR and i.operator_answered_at and i, timeout=10)


def _cut_websocket(live: Stack, page: Any, *, in_call: bool = True) -> None:
    """A network blip: the phone's WebSocket to Asterisk is cut (both ends reset, as a dropped
    link does). The page says so and registers again by itself (the call still in hand when `in_call`)."""
    port = live.settings.webrtc_port
    cut = subprocess.run(["ss", "-K", "-t", f"( dport = :{port} or sport = :{port} )"], capture_output=True, text=True, check=False)
    assert cut.returncode == 0, cut.stderr
    page.wait_for_selector("#phone-state[data-state=phone_reconnecting]", timeout=5000)
    assert page.text_content("#phone-state") == "Jaringan terputus, menyambung ulang…"
    page.wait_for_selector(f"#phone-state[data-state={'phone_in_call' if in_call else 'phone_ready'}]", timeout=15000)


def test_an_operator_answers_a_112_caller_in_the_browser_and_they_hear_each_other(
    live: Stack, page: Any, voices: tuple[Path, Path]
) -> None:
    caller = "081250007001"
    call = _caller(live, caller, voices)
    # It rings: the phone panel and the console's banner, with the caller's number and a sound.
    page.wait_for_selector("#phone[data-call=ringing] #phone-answer:visible", timeout=20000)
    page.wait_for_selector("#call[data-ringing=true] #ringing:visible", timeout=10000)
    assert page.text_content("#ringing") == "Berdering: klik Jawab di panel Telepon"
    assert page.text_content("#c-caller") == caller
    assert page.get_attribute("#phone", "data-sound") == "on"
    page.screenshot(path=str(live.tmp / "phone-ringing.png"), full_page=True)

    with Ear(call.media_port) as ear:
        # Before the answer the caller hears the queue (prompts, music), never the operator's pitch.
        wait_for("the caller to hear the queue", lambda: len(ear.samples) > 8000, timeout=10)
        queued = len(ear.samples)
        assert tone_windows(ear.heard(), OPERATOR_HZ) < 3
        incident = _answer_in_page(live, page, caller)
        page.wait_for_selector("#ringing", state="hidden", timeout=5000)
        # The caller hears the operator: the fake microphone's beeps arrive at the SIPp caller's
        # media port (through opus, Asterisk's transcoding to G.711, the wire): a second of them.
        wait_for("the operator's voice to reach the caller",
                 lambda: tone_windows(ear.heard(queued), OPERATOR_HZ) >= 25, timeout=20)

    # Audio both ways: the page sends and receives RTP, and what it receives is the caller's voice.
    first = wait_for("RTP to flow both ways in the page", lambda: (s := _stats(page)) and s["sent"] > 50 and s["received"] > 50 and s,
                     timeout=15)
    # Both counters grow (each by 100 packets: 2 s of 20 ms frames); waited for together,
    # since the page reads them one after the other.
    wait_for("more RTP both ways a moment later",
             lambda: (s := _stats(page)) and s["received"] > first["received"] + 100 and s["sent"] > first["sent"] + 100 and s, timeout=10)
    heard = wait_for("the caller's voice to reach the operator",
                     lambda: page.evaluate("""async () => {
                         let e = 0; (await ivr112Phone.connection().getStats()).forEach((r) => {
                           if (r.type === "inbound-rtp" && r.kind === "audio") e = r.totalAudioEnergy || 0; });
                         return e; }""") > 0.01, timeout=15)
    assert heard
    # Asterisk's side: the browser leg's RTP counters grow both ways.
    rx, tx = wait_for("Asterisk to count RTP on the browser's leg", lambda: (c := _asterisk_rtp(live, "operator1.web")) and min(c) > 100 and c,
                      timeout=10)
    assert rx > 100 and tx > 100
    # A network blip: the call's media path holds and the caller is not dropped.
    _cut_websocket(live, page)
    before = _stats(page)
    wait_for("RTP to go on after the blip", lambda: _stats(page)["received"] > before["received"] + 50, timeout=10)
    assert call.proc.poll() is None, "the caller was dropped by the blip"
    # The page's level meter shows the operator's microphone.
    wait_for("the level meter to move", lambda: float(page.evaluate("document.querySelector('#phone-level').value")) > 0.01, timeout=5)
    # Keys and mute work without dropping the call.
    page.click("#phone-keypad [data-digit='5']")
    page.click("#phone-mute")
    assert page.get_attribute("#phone-mute", "aria-pressed") == "true"
    page.click("#phone-mute")
    page.screenshot(path=str(live.tmp / "phone-talking.png"), full_page=True)

    # The operator hangs up: both legs end.
    page.click("#phone-hangup")
    page.wait_for_selector("#phone[data-call=none]", timeout=10000)
    assert call.wait() == 0, call.report()
    assert "CALLER-END=network" in call.logs(), call.report()
    live.wait_no_channels(timeout=15)
    stored = live.read(lambda s: s.get(incident.id))
    assert stored is not None and stored.operator == OPERATOR


def test_after_a_network_blip_the_callers_hang_up_reaches_the_browser_phone(live: Stack, page: Any, voices: tuple[Path, Path]) -> None:
    caller = "081250007002"
    # The caller stays long enough for the answer and the blip, then hangs up.
    call = _caller(live, caller, voices, stays_ms=30000)
    incident = _answer_in_page(live, page, caller)
    _cut_websocket(live, page)
    # Asterisk's BYE reaches the page over the new WebSocket: the call ends there too.
    page.wait_for_selector("#phone[data-call=none]", timeout=40000)
    assert page.text_content("#phone-state") == "Siap menerima panggilan"
    assert call.wait() == 0, call.report()
    live.wait_no_channels(timeout=15)
    closed = wait_for("the incident to close", lambda: (i := live.read(lambda s: s.get(incident.id))) and i.ended_at and i, timeout=10)
    assert closed.operator == OPERATOR
    wait_for("the operator to be free again", lambda: live.board()[OPERATOR]["status"] in ("ready", "wrapup"), timeout=10)


def test_a_network_blip_while_the_page_rings_lets_the_queue_ring_it_again(live: Stack, page: Any, voices: tuple[Path, Path]) -> None:
    caller = "081250007005"
    call = _caller(live, caller, voices)
    page.wait_for_selector("#phone[data-call=ringing] #phone-answer:visible", timeout=20000)
    # The ring came over the WebSocket now cut: the page lets it go (it could not be
    # answered any more) and registers again; the caller stays queued.
    _cut_websocket(live, page, in_call=False)
    page.wait_for_selector("#phone[data-call=none]", timeout=5000)
    assert call.proc.poll() is None, "the caller was dropped by the blip"
    # The queue rings the page again, on the new WebSocket: answered, heard, hung up.
    incident = _answer_in_page(live, page, caller, ring_s=40)
    with Ear(call.media_port) as ear:
        wait_for("the operator's voice to reach the caller", lambda: tone_windows(ear.heard(), OPERATOR_HZ) >= 25, timeout=20)
    page.click("#phone-hangup")
    page.wait_for_selector("#phone[data-call=none]", timeout=10000)
    assert call.wait() == 0, call.report()
    assert "CALLER-END=network" in call.logs(), call.report()
    closed = wait_for("the incident to close", lambda: (i := live.read(lambda s: s.get(incident.id))) and i.ended_at and i, timeout=10)
    assert closed.operator == OPERATOR


def test_the_operator_transfers_a_caller_to_the_police_from_the_console_while_answering_in_the_browser(
    live: Stack, page: Any, voices: tuple[Path, Path]
) -> None:
    caller = "081250007003"
    call = _caller(live, caller, voices)
    incident = _answer_in_page(live, page, caller)
    # The police trunk answers, talks (longer than an answer-and-drop, which would send the
    # caller on to the next trunk) and hangs up.
    police = live.sipp("answer_bye", "-d", str(int((AGENCY_DROP_S + 2) * 1000)), port=live.trunk_ports[5071], background=True, timeout=60)
    page.click("#transfer button[data-agency=police][data-mode=blind]")
    # The operator is released at once: the browser's call ends, the board frees them.
    page.wait_for_selector("#phone[data-call=none]", timeout=10000)
    wait_for("the board to free the operator", lambda: live.board()[OPERATOR]["status"] in ("ready", "wrapup"), timeout=10)
    # The caller talked with the police (who saw the caller's number) until the police hung up.
    assert police.wait() == 0, police.report()
    assert re.findall(r"INVITE-FROM-USER=(\S*)", police.logs()) == [caller]
    assert call.wait() == 0, call.report()
    assert "CALLER-END=network" in call.logs(), call.report()
    closed = wait_for("the incident to close", lambda: (i := live.read(lambda s: s.get(incident.id))) and i.ended_at and i, timeout=20)
    assert closed.operator == OPERATOR and closed.route == "agency:police"
    assert closed.route_result == "answered by police trunk 1", closed
    events = live.incident_events(incident.id)
    assert ("transfer", "blind") in [(e.kind, e.detail.get("mode")) for e in events]
    kinds = [e.kind for e in events]
    assert kinds.index("operator_answered") < kinds.index("transfer") < kinds.index("trunk_answered")
    live.wait_no_channels(timeout=15)


def test_the_operator_brings_the_police_into_a_conference_from_the_browser_and_leaves_it(
    live: Stack, page: Any, voices: tuple[Path, Path]
) -> None:
    caller = "081250007004"
    call = _caller(live, caller, voices, stays_ms=35000)
    incident = _answer_in_page(live, page, caller)
    police = live.sipp("answer", port=live.trunk_ports[5071], background=True, timeout=60)
    page.click("#transfer button[data-agency=police][data-mode=conference]")
    # Caller, operator (still on the browser phone) and police in one conference.
    room = f"ivr112-{incident.id}"
    wait_for("the three in the conference", lambda: len(_conference(live, room)) == 3, timeout=20)
    assert any(c.startswith("PJSIP/operator1.web-") for c in _conference(live, room))
    assert page.get_attribute("#phone", "data-call") == "talking"
    # The operator leaves from the page; caller and police stay together.
    page.click("#phone-hangup")
    page.wait_for_selector("#phone[data-call=none]", timeout=10000)
    wait_for("the conference to go on without the operator", lambda: len(_conference(live, room)) == 2, timeout=10)
    assert call.proc.poll() is None, "the caller was dropped when the operator left"
    # The caller hangs up: the conference ends, the police line gets the BYE.
    assert call.wait() == 0, call.report()
    assert police.wait() == 0, police.report()
    assert re.findall(r"INVITE-FROM-USER=(\S*)", police.logs()) == [caller]
    assert ("transfer", "conference") in [(e.kind, e.detail.get("mode")) for e in live.incident_events(incident.id)]
    live.wait_no_channels(timeout=15)


def _conference(live: Stack, room: str) -> list[str]:
    """The channels in a ConfBridge room, from Asterisk's CLI."""
    return re.findall(r"^(\S+/\S+)\s", live.asterisk_cli(f"confbridge list {room}"), flags=re.MULTILINE)
