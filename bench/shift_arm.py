"""One arm of the shift simulator: a private stack (Asterisk, the app, Kotim's own plan
with operators_first set as asked), two operators (SIPp softphones, or Chromium pages with
the console's browser phone: bench/shift_browser.py) and SIPp on the agency trunks, the
shift's callers started at their arrival times, and what both SIPp and the app then say
about each call.

Idle gaps are compressed: when no call is in progress (no caller's SIPp running, no
channel in Asterisk) and the operators are out of their wrap-up (the plan's wrap-up has
passed since the last channel went), the next arrival is started at once instead of at its
time. Nothing in the system depends on how long it stood idle (each caller's number is new,
so no redial or prank window applies), so the outcome is the same as in real time, while
the calls, the IVR, the answer delays and the talk times all run in real time.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from bench.shift_browser import BrowserOperators
from bench.shift_sipp import CallerSide, caller_scenario, caller_side, first_answers, person_scenario
from bench.sipp import SippRun
from bench.traffic import Call
from ivr.figures import person_answer_s
from ivr.plan import load_plans
from ivr.settings import PROJECT_DIR, load_settings
from tests.integration.stack import SIPP, Stack, free_media_port, free_port, make_config, stop_process, wait_for
from tests.support import plan as plan_doc

OPERATORS = ("shiftop1", "shiftop2")
AGENCY_PORTS = {5071: "police", 5072: "police 2", 5073: "fire", 5074: "health", 5075: "sar", 5076: "disaster", 5079: "provincial"}
POLL_S = 0.5
WIB = timezone(timedelta(hours=7))  # the supervisor's page counts days in Western Indonesian Time


def shift_plan(tmp: Path, *, operators_first: bool) -> tuple[Path, dict[int, int]]:
    """Kotim's plan as it is (its prompts, record length, timeouts, ring-all queue with a
    5 s wrap-up), with the agencies' placeholder ports moved to free ports (SIPp answers
    there) and operators_first set for this arm."""
    doc = plan_doc.load()
    ports = plan_doc.move_placeholder_ports(doc)
    plan_doc.set_key(doc, "operators_first", operators_first)
    plan_doc.set_key(doc, "location.boundaries", str(PROJECT_DIR / "dialplans" / "kotim-kecamatan.geojson"))
    path = plan_doc.write(doc, tmp / "plan.yaml")
    return path, ports


@dataclass
class CallResult:
    call: Call
    caller: CallerSide | None
    person_s: float | None  # SIPp: INVITE sent to the first person's 200 OK
    person: str | None  # who answered first (operator or agency label)
    app_person_s: float | None  # the app: arrival to the operator's or agency's answer (ivr/figures.py)
    app_abandoned: bool

    @property
    def abandoned(self) -> bool:
        """The caller hung up before any person answered."""
        return self.person_s is None and self.caller is not None and self.caller.ended_by == "caller"


@dataclass
class Arm:
    name: str
    operators_first: bool
    stack: Stack
    wrapup_s: float
    browser: bool = False  # the operators answer in Chromium pages instead of SIPp
    persons: dict[str, SippRun] = field(default_factory=dict)
    browsers: BrowserOperators | None = None
    callers: list[tuple[Call, SippRun]] = field(default_factory=list)
    results: list[CallResult] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)  # GET /api/figures for the shift's days
    started_at: datetime | None = None
    wall_s: float = 0.0
    sim_s: float = 0.0
    skipped_s: float = 0.0

    @property
    def label(self) -> str:
        return f"operators_first {'on' if self.operators_first else 'off'}" + (", browsers" if self.browser else "")

    # SIPp ----------------------------------------------------------------------------------

    def _sipp(self, label: str, scenario: Path, *args: str, port: int, timeout: float) -> SippRun:
        """A SIPp of this arm; its screen goes to a file (a pipe nobody reads would fill and stall it)."""
        workdir = self.stack.tmp / f"sipp-{label}"
        workdir.mkdir()
        s = self.stack.settings
        cmd = [SIPP, f"{s.sip_host}:{s.sip_port}", "-sf", str(scenario), "-i", "127.0.0.1", "-p", str(port),
               "-mp", str(free_media_port()), "-nostdin", "-timeout", f"{int(timeout)}s", "-timeout_error",
               "-trace_err", "-trace_logs", *args]
        with (workdir / "screen.txt").open("wb") as screen:
            proc = subprocess.Popen(cmd, cwd=workdir, stdout=screen, stderr=subprocess.STDOUT)
        return SippRun(label, proc, workdir, port, timeout)

    def start_people(self, timeout: float) -> None:
        """The two operators register and log in, each with a SIPp answering on its own port
        (or each in a Chromium page); a SIPp answers on each agency trunk's port."""
        scenarios = self.stack.tmp / "scenarios"
        scenarios.mkdir(exist_ok=True)
        if self.browser:
            self.browsers = BrowserOperators(self.stack, OPERATORS)
            self.browsers.start()
        for index, name in enumerate(OPERATORS if not self.browser else ()):
            port = free_port(socket.SOCK_DGRAM)
            self.stack.register_operator(name, port)
            self.persons[name] = self._sipp(name, person_scenario(scenarios, delay_index=index), port=port, timeout=timeout)
        for placeholder, label in AGENCY_PORTS.items():
            port = self.stack.trunk_ports[placeholder]
            self.persons[label] = self._sipp(label.replace(" ", ""), person_scenario(scenarios, delay_index=0), port=port, timeout=timeout)

    def start_caller(self, call: Call, guard_ms: int) -> None:
        folder = self.stack.tmp / f"call-{call.seq:04d}"
        folder.mkdir()
        scenario = caller_scenario(folder, call, guard_ms=guard_ms)
        run = self._sipp(f"caller-{call.seq:04d}", scenario, "-s", "112", "-key", "caller", call.number, "-m", "1",
                         port=free_port(socket.SOCK_DGRAM), timeout=guard_ms / 1000 + 60)
        self.callers.append((call, run))

    def busy(self) -> bool:
        return any(run.proc.poll() is None for _, run in self.callers) or self.stack.active_channels() != 0

    # The shift -------------------------------------------------------------------------------

    def run(self, calls: list[Call], *, guard_ms: int, progress: bool = True) -> None:
        """Start each caller at its arrival time, earlier when the system stands idle; wait
        for every call to end."""
        self.started_at = datetime.now(UTC)
        t0 = time.monotonic()
        last_busy = t0
        for call in calls:
            while True:
                now = time.monotonic()
                due = t0 + call.arrival_s - self.skipped_s
                if now >= due:
                    break
                if self.busy():
                    last_busy = time.monotonic()
                elif now - last_busy >= self.wrapup_s + 1:
                    self.skipped_s += due - now
                    break
                time.sleep(min(POLL_S, max(0.0, due - now)))
            self.start_caller(call, guard_ms)
            if progress:
                print(f"  [{self.name}] {time.monotonic() - t0:6.0f} s wall, {call.arrival_s:6.0f} s shift: "
                      f"caller {call.seq} {call.kind}", flush=True)
        for _, run in self.callers:
            try:
                run.proc.wait(timeout=guard_ms / 1000 + 90)
            except subprocess.TimeoutExpired:
                run.stop()
        self.stack.wait_no_channels(timeout=60)
        self.wall_s = time.monotonic() - t0
        self.sim_s = self.wall_s + self.skipped_s

    def collect(self) -> None:
        """Read back both sides: SIPp's logs (callers and people) and the app's incidents and figures."""
        for run in self.persons.values():
            run.stop()  # its log is complete once it has stopped
        logs = {label: run.logs() for label, run in self.persons.items()}
        if self.browsers is not None:
            logs.update(self.browsers.stop())
        answers = first_answers(logs)
        sides = caller_side("\n".join(run.logs() for _, run in self.callers))
        wait_for("every incident to have its end", lambda: all(i.ended_at for i in self.stack.incidents()), timeout=30)
        incidents = {i.caller_number: i for i in self.stack.incidents()}
        agency = self.stack.read(lambda s: s.agency_answers("0000", "9999"))
        for call, _ in self.callers:
            side = sides.get(call.number)
            answer = answers.get(call.number)
            person_s = answer[0] - side.invite if side and answer else None
            incident = incidents.get(call.number)
            app_s = person_answer_s(incident, agency) if incident else None
            self.results.append(CallResult(call, side, person_s, answer[1] if answer else None, app_s,
                                           bool(incident and incident.ended_at and app_s is None)))
        assert self.started_at is not None
        first = self.started_at.astimezone(WIB).date().isoformat()
        last = datetime.now(WIB).date().isoformat()
        self.figures = dict(self.stack.api(f"/api/figures?from={first}&to={last}"))



def open_arm(tmp: Path, name: str, *, operators_first: bool, index: int, person_timeout: float, browser: bool = False) -> Arm:
    """A stack of its own for this arm, up, with its people answering (the operators in
    Chromium pages when `browser`)."""
    tmp.mkdir(parents=True)
    plan_file, ports = shift_plan(tmp, operators_first=operators_first)
    rtp = 60000 + (os.getpid() % 20) * 200 + index * 100
    config = make_config(tmp, f"shift{os.getpid()}{name}", plans=[str(plan_file)], log_level="INFO", rtp_start=rtp,
                         rtp_end=rtp + 99, operators=[{"name": n, "full_name": f"Shift operator {n[-1]}", "languages": ["id"]}
                                                      for n in OPERATORS])
    settings = load_settings(config)
    stack = Stack(config=config, settings=settings, tmp=tmp, plan_file=plan_file, trunk_ports=ports)
    stack.ivr112("prompts", "build")
    wrapup = float(load_plans(settings.plan_paths).default.default_queue.wrapup)
    arm = Arm(name, operators_first, stack, wrapup, browser=browser)
    stack.asterisk_up()
    try:
        stack.app_start()
        arm.start_people(person_timeout)
    except BaseException:
        close_arm(arm)
        raise
    return arm


def close_arm(arm: Arm, *, keep: bool = False) -> None:
    """Stop what this arm started, each by its own pid; a stop that fails does not keep the others running."""
    for run in [*arm.persons.values(), *(r for _, r in arm.callers)]:
        if run.proc.poll() is None:
            stop_process(run.proc, grace=5)
    stack = arm.stack
    browsers = arm.browsers.stop if arm.browsers is not None else (lambda: {})
    for stop in (browsers, stack.stop_all_sipp, stack.app_stop, stack.asterisk_down):
        try:
            stop()
        except Exception as exc:  # report it and go on stopping the rest
            print(f"shift [{arm.name}]: stopping failed: {exc}", flush=True)
    if not keep:
        shutil.rmtree(stack.layout.host(stack.layout.inner), ignore_errors=True)
