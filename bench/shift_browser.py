"""Browser operators for the shift simulator: each operator a page of Debian's Chromium
(headless, a fake microphone) logged in to the console, its browser phone registered over
wss, in the queue, as a real operator with only a browser would be.

A small script in each page is the person: when the phone rings it reads the caller number,
clicks Answer after this operator's delay from the number, and Hang up after the number's
talk time, unless the caller or the other operator ends the ring or the call first; the
same behaviour as the SIPp operators' scenario (bench/sipp/shift_person.xml). It logs
`ANSWER <number> <s> <us>` when the page's call is accepted (its 200 OK sent), the line
`first_answers` reads from SIPp, on the same clock.

Playwright's sync API belongs to the thread that started it, so one thread of our own owns
the browser from the log-in to the last read of the pages' logs.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from bench.traffic import NUMBER_PREFIX, OPERATORS
from tests.integration.browser import CHROMIUM, PHONE_FLAGS, log_in
from tests.integration.media import tone
from tests.integration.stack import Stack

READY_TIMEOUT_S = 120.0
PUMP_MS = 500  # how often the owning thread lets Playwright take the pages' events while the shift runs

# The person in the page. `index` picks this operator's delay from the caller number (see
# bench/traffic.py Call.number); delays are in tenths of a second, talk times in seconds.
PERSON_JS = """({ index, prefix, operators }) => {
  window.shiftLog = [];
  const phone = document.querySelector("#phone");
  const stamp = () => { const ms = Date.now(); return `${Math.floor(ms / 1000)} ${(ms % 1000) * 1000}`; };
  let timers = [], call = null, last = phone.dataset.call;
  new MutationObserver(() => {
    const state = phone.dataset.call;
    if (state === last) return;
    last = state;
    if (state === "ringing") {
      const number = document.querySelector("#phone-peer").textContent.trim().split(/\\s+/).pop();
      const body = number.slice(prefix.length);
      call = { number, talk: parseInt(body.substr(1 + 2 * operators, 3), 10) * 1000 };
      window.shiftLog.push(`RING ${number} ${stamp()}`);
      const delay = parseInt(body.substr(1 + 2 * index, 2), 10) * 100;
      timers.push(setTimeout(() => document.querySelector("#phone-answer").click(), delay));
    } else if (state === "talking" && call) {
      window.shiftLog.push(`ANSWER ${call.number} ${stamp()}`);
      timers.push(setTimeout(() => document.querySelector("#phone-hangup").click(), call.talk));
    } else if (state === "none") {
      timers.forEach(clearTimeout);
      timers = [];
      if (call) window.shiftLog.push(`END ${call.number} ${stamp()}`);
      call = null;
    }
  }).observe(phone, { attributes: true, attributeFilter: ["data-call"] });
}"""


class BrowserOperators:
    """The operators `names` in Chromium pages on `stack`; `start` returns once every page is
    registered and in the queue, `stop` closes the browser and returns each page's log."""

    def __init__(self, stack: Stack, names: tuple[str, ...]) -> None:
        self.stack = stack
        self.names = names
        self.logs: dict[str, str] = {}
        self._ready = threading.Event()
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=f"browsers-{stack.settings.instance}", daemon=True)

    def start(self) -> None:
        if not Path(CHROMIUM).exists():
            raise RuntimeError(f"{CHROMIUM} is missing: `make deps` installs Debian's chromium")
        self._thread.start()
        if not self._ready.wait(READY_TIMEOUT_S) and self._error is None:
            self.stop()
            raise RuntimeError(f"the browser operators were not in the queue after {READY_TIMEOUT_S:.0f} s")
        if self._error is not None:
            raise RuntimeError(f"the browser operators could not start: {self._error}") from self._error

    def stop(self) -> dict[str, str]:
        """Close the pages; each operator's log (RING, ANSWER, END lines). Raises if a page failed."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=60)
        if self._error is not None:
            raise RuntimeError(f"the browser operators failed: {self._error}") from self._error
        return self.logs

    def _run(self) -> None:
        from playwright.sync_api import sync_playwright

        mic = tone(self.stack.tmp / "operator-mic.wav", hz=1100.0, seconds=10.0)
        try:
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=CHROMIUM, args=[*PHONE_FLAGS, f"--use-file-for-fake-audio-capture={mic}"])
                try:
                    pages = [self._operator(browser, index, name) for index, name in enumerate(self.names)]
                    self._ready.set()
                    while not self._stop.is_set():
                        pages[0].wait_for_timeout(PUMP_MS)
                    for name, page in zip(self.names, pages, strict=True):
                        self.logs[name] = "\n".join(page.evaluate("window.shiftLog"))
                finally:
                    browser.close()
        except BaseException as exc:  # reported by start() or seen as missing logs by the arm
            self._error = exc
            self._ready.set()

    def _operator(self, browser: Any, index: int, name: str) -> Any:
        """One operator's page: logged in, the browser phone registered, the person script
        installed, in the queue."""
        page = browser.new_context(ignore_https_errors=True).new_page()
        log_in(self.stack, page, name)
        page.wait_for_selector("#phone-state[data-state=phone_ready]", timeout=60_000)
        page.evaluate(PERSON_JS, {"index": index, "prefix": NUMBER_PREFIX, "operators": OPERATORS})
        page.click("#shift [data-action=login]")
        page.wait_for_selector("#my-status[data-status=ready]", timeout=30_000)
        return page
