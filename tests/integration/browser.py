"""Debian's Chromium for the console's tests: how it is launched, logging in as a person,
and the screenshot kept when a test fails."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.integration.stack import Stack

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]
# For the browser phone: a fake microphone and camera allowed without asking (the WAV is
# given with --use-file-for-fake-audio-capture); loopback ICE candidates (the test's
# Asterisk listens on 127.0.0.1) and no mDNS names for them; timers never throttled, so a
# page that answers calls by itself keeps time however many pages run beside it.
PHONE_FLAGS = [*FLAGS, "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
               "--disable-features=WebRtcHideLocalIpsWithMdns", "--allow-loopback-in-peer-connection",
               "--autoplay-policy=no-user-gesture-required", "--disable-background-timer-throttling",
               "--disable-renderer-backgrounding", "--disable-backgrounding-occluded-windows"]


def chromium_path() -> str:
    if not Path(CHROMIUM).exists():
        pytest.fail("Debian's chromium is missing: `make deps` installs it")
    return CHROMIUM


def log_in(live: Stack, page: Any, name: str) -> None:
    """Log in to the console as `name` with a password set now; returns once the page shows the console."""
    password = live.ivr112("console", "password", name).stdout.split("password ", 1)[1].split()[0]
    page.goto(f"http://{live.settings.http_host}:{live.settings.http_port}/")
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", password)
    page.click("#login button[type=submit]")
    page.wait_for_selector("#console-view:not([hidden])")


def keep_screenshot_if_failed(live: Stack, request: pytest.FixtureRequest, tab: Any) -> None:
    rep = getattr(request.node, "rep_call", None)
    if rep is not None and rep.failed:
        shot = live.tmp / f"{request.node.name}.png"
        tab.screenshot(path=str(shot), full_page=True)
        print(f"screenshot of the failed page: {shot}")
