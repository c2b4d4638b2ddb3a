"""The browser phone, end to end: Debian's Chromium (headless, fake microphone playing a WAV of
speech) registers over wss to the real Asterisk as the operator's WebRTC endpoint, a SIPp 112
caller is queued to it, the page rings, the test clicks Answer, and audio is measured both
ways on both sides (the page's RTCPeerConnection statistics and Asterisk's RTP counters)."""

from __future__ import annotations

import base64
import json
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ari_app.asterisk.render import ARI_USER
from ivr.secrets import load_or_create
from tests.integration.browser import FLAGS, chromium_path, keep_screenshot_if_failed, log_in
from tests.integration.media import speak, wav_to_pcap
from tests.integration.stack import Stack, sipp_args, wait_for

pytestmark = pytest.mark.asterisk

# A fake microphone and camera allowed without asking; loopback ICE candidates (the test's
# Asterisk listens on 127.0.0.1) and no mDNS names for them.
PHONE_FLAGS = [*FLAGS, "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
         "--disable-features=WebRtcHideLocalIpsWithMdns", "--allow-loopback-in-peer-connection",
         "--autoplay-policy=no-user-gesture-required"]
OPERATOR = "operator1"


@pytest.fixture
def voices(live: Stack) -> tuple[Path, Path]:
    """What the operator's microphone says (a WAV for Chromium) and what the caller says (a pcap for SIPp)."""
    folder = live.tmp / "voices"
    folder.mkdir(exist_ok=True)
    mic = speak("Polisi, pemadam kebakaran, ambulans. Di mana lokasi Anda? " * 3, folder / "operator.wav")
    caller = speak("Tolong, ada kebakaran di pasar Sampit. " * 3, folder / "caller.wav")
    wav_to_pcap(caller, folder / "caller.pcap")
    return mic, folder / "caller.pcap"


@pytest.fixture
def page(live: Stack, voices: tuple[Path, Path], request: pytest.FixtureRequest) -> Iterator[Any]:
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


def test_an_operator_answers_a_112_caller_in_the_browser_and_they_hear_each_other(
    live: Stack, page: Any, voices: tuple[Path, Path]
) -> None:
    caller = "081250007001"
    log_in(live, page, OPERATOR)
    # The browser phone registers by itself: no account to type.
    page.wait_for_selector("#phone-state[data-state=phone_ready]", timeout=15000)
    assert OPERATOR + ".web" in live.asterisk_cli("pjsip show contacts")
    assert page.text_content("#phone-state") == "Siap menerima panggilan"
    page.click("#shift [data-action=login]")
    page.wait_for_selector("#my-status[data-status=ready]")
    assert "PJSIP/operator1.web" in live.asterisk_cli("queue show kotim-operators")

    call = live.sipp("caller_talks", *sipp_args(("caller", caller)), "-s", "112",
                     steps=[("pause", "1000"), ("dtmf", "0"), ("pause", "3000"), ("audio", str(voices[1]))],
                     background=True, timeout=90)
    # It rings: the phone panel and the console's banner, with the caller's number and a sound.
    page.wait_for_selector("#phone[data-call=ringing] #phone-answer:visible", timeout=20000)
    page.wait_for_selector("#call[data-ringing=true] #ringing:visible", timeout=10000)
    assert page.text_content("#ringing") == "Berdering: klik Jawab di panel Telepon"
    assert page.text_content("#c-caller") == caller
    assert page.get_attribute("#phone", "data-sound") == "on"
    page.screenshot(path=str(live.tmp / "phone-ringing.png"), full_page=True)

    page.click("#phone-answer")
    page.wait_for_selector("#phone[data-call=talking]", timeout=10000)
    page.wait_for_selector("#my-status[data-status=talking]", timeout=10000)
    page.wait_for_selector("#ringing", state="hidden", timeout=5000)
    incident = wait_for("the incident to name the operator",
                        lambda: (i := live.incident_for(caller)) and i.operator == OPERATOR and i.operator_answered_at and i, timeout=10)

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
    # A network blip: the phone's WebSocket to Asterisk is cut (both ends reset, as a dropped
    # link does). The page says so and registers again by itself; the call's media path holds
    # and the caller is not dropped.
    port = live.settings.webrtc_port
    cut = subprocess.run(["ss", "-K", "-t", f"( dport = :{port} or sport = :{port} )"], capture_output=True, text=True, check=False)
    assert cut.returncode == 0, cut.stderr
    page.wait_for_selector("#phone-state[data-state=phone_reconnecting]", timeout=5000)
    assert page.text_content("#phone-state") == "Jaringan terputus, menyambung ulang…"
    page.wait_for_selector("#phone-state[data-state=phone_in_call]", timeout=15000)
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
