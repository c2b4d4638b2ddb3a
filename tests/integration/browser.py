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
