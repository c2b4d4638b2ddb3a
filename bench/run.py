"""The benchmark's phases on one stack: the IVR load ladder and the operator phase (A and
B interleaved at each rate, so both see the same machine), the long run for leaks (B),
and the 500-menu plan. Each phase returns figures; report.py prints and draws them.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import statistics
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from ari_app.asterisk import process
from bench.baseline import install_baseline
from bench.plan500 import PlanTimes, measure
from bench.procstat import ProcSample, machine_busy_s, sample
from bench.sipp import DTMF_END_S, SCENARIOS, SippPool, caller_scenario
from ivr import prompts
from ivr.plan import Plan, load_plans
from ivr.settings import load_settings
from tests.integration.stack import SIPP_DIR, Stack, free_port, make_config, make_test_plan, wait_for

BASELINE_NUMBER = "1129"
OPERATOR_KEY = "0"
KEY_AFTER_MS = 500  # the caller presses 0 this long after the answer, during the greeting
OPERATOR_HOLD_MS = 3000  # then stays this long (with the operator) and hangs up
LEAK_HOLD_MS = 1000
GC_WINDOW_S = 5.0
SAMPLE_EVERY_S = 0.25
IDLE_TIMEOUT_S = 90.0


@dataclass
class Step:
    """One SIPp load against one system: what was sent, what came back, what it cost."""

    system: str  # "A" plain dialplan, "B" the ivr112 app
    phase: str  # "ivr" (callers stay in the IVR), "operator" (key 0 to the queue), "leak"
    rate: int  # new calls per second
    hold_s: float
    attempted: int = 0
    answered: int = 0
    failed: int = 0
    peak_calls: int = 0
    answer_ms: list[float] = field(default_factory=list)
    delay_ms: list[float] = field(default_factory=list)  # INVITE to the operator's INVITE, minus the caller's own time
    app_cpu_s: float = 0.0
    asterisk_cpu_s: float = 0.0
    app_rss_idle_kb: int = 0
    app_rss_peak_kb: int = 0
    app_rss_after_kb: int = 0
    asterisk_rss_peak_kb: int = 0
    load_avg: float = 0.0
    machine_busy: float = 0.0  # share of all CPUs busy during the step (ours and others')
    others_busy: float = 0.0  # of it, what neither this Asterisk nor this app used (SIPp, other stacks)
    errors: str = ""

    @property
    def operator_missing(self) -> int:
        return self.answered - len(self.delay_ms) if self.phase == "operator" else 0

    @property
    def app_kb_per_active_call(self) -> float:
        if self.system != "B" or not self.peak_calls:
            return float("nan")
        return (self.app_rss_peak_kb - self.app_rss_idle_kb) / self.peak_calls


@dataclass
class Bench:
    stack: Stack
    plan: Plan
    pool: SippPool
    operator_port: int
    operators: list[str]
    prompt_s: dict[str, float]
    steps: list[Step] = field(default_factory=list)
    leak: list[tuple[int, int]] = field(default_factory=list)  # (calls so far, app RSS kB after a quiet window)
    plan_times: PlanTimes | None = None
    _prefix: int = 0

    # The stack --------------------------------------------------------------------------

    @property
    def app_pid(self) -> int | None:
        proc = self.stack.app_proc
        return proc.pid if proc is not None and proc.poll() is None else None

    @property
    def asterisk_pid(self) -> int:
        pid = process.read_pid(self.stack.layout)
        assert pid is not None, "Asterisk is not running"
        return pid

    def use(self, system: str) -> None:
        """A runs with the app stopped (nothing but Asterisk); B with the app connected."""
        running = self.app_pid is not None
        if system == "A" and running:
            self.stack.app_stop()
        elif system == "B" and not running:
            self.stack.app_start()

    def channels(self) -> int:
        return self.stack.active_channels()

    def wait_idle(self) -> None:
        self.stack.wait_no_channels(timeout=IDLE_TIMEOUT_S)

    def clear_recordings(self) -> None:
        """Every call is recorded (A and B alike); drop this instance's files between steps."""
        folder = self.stack.layout.host(self.stack.layout.recordings)
        for path in folder.glob("call-*.wav"):
            path.unlink(missing_ok=True)

    # One step ---------------------------------------------------------------------------

    def run_step(self, system: str, phase: str, rate: int, calls: int, hold_ms: int, *, key: str | None = None) -> Step:
        self.use(system)
        self.wait_idle()
        self._prefix += 1
        prefix = f"08{self._prefix:03d}"
        step = Step(system, phase, rate, hold_ms / 1000)
        workdir = self.stack.tmp / f"scenario-{prefix}"
        workdir.mkdir()
        scenario = caller_scenario(workdir, hold_ms=hold_ms, key=key, key_after_ms=KEY_AFTER_MS)
        duration = calls / rate + hold_ms / 1000 + 30
        operators = None
        if phase == "operator":
            operators = self.pool.start(f"{system}-ops-{rate}", SCENARIOS / "operator.xml", "-m", str(calls),
                                        port=self.operator_port, timeout=duration + 30)
        app_pid, ast_pid = self.app_pid, self.asterisk_pid
        app0 = sample(app_pid) if app_pid else ProcSample(0, 0, 0)
        ast0 = sample(ast_pid)
        busy0, cap0 = machine_busy_s()
        step.app_rss_idle_kb = app0.rss_kb
        with _peaks(app_pid, ast_pid) as peaks:
            number = "112" if system == "B" else BASELINE_NUMBER
            callers = self.pool.start(f"{system}-{phase}-{rate}", scenario, "-s", number, "-key", "prefix", prefix,
                                      "-r", str(rate), "-rp", "1000", "-m", str(calls), timeout=duration)
            callers.wait()
            self.wait_idle()
        if operators is not None:
            if operators.proc.poll() is None:
                time.sleep(1.0)  # the last operator's 200 OK to the BYE
            operators.stop()
        app1 = sample(app_pid) if app_pid else ProcSample(0, 0, 0)
        ast1 = sample(ast_pid)
        busy1, cap1 = machine_busy_s()
        stats = callers.stats()
        answered = callers.calls()
        step.attempted, step.failed, step.peak_calls = stats["created"], stats["failed"], stats["peak"]
        step.answered = len(answered)
        step.answer_ms = sorted((c.answered - c.invite) * 1000 for c in answered.values())
        if operators is not None:
            own = KEY_AFTER_MS / 1000 + DTMF_END_S
            rings = operators.rings()
            step.delay_ms = sorted((rings[n] - c.invite - own) * 1000 for n, c in answered.items() if n in rings)
        step.app_cpu_s = app1.cpu_s - app0.cpu_s
        step.asterisk_cpu_s = ast1.cpu_s - ast0.cpu_s
        step.app_rss_peak_kb = max(peaks.app, app1.rss_kb)
        step.app_rss_after_kb = app1.rss_kb
        step.asterisk_rss_peak_kb = peaks.asterisk
        step.load_avg = os.getloadavg()[0]
        capacity = max(1e-9, cap1 - cap0)
        step.machine_busy = (busy1 - busy0) / capacity
        step.others_busy = max(0.0, busy1 - busy0 - step.app_cpu_s - step.asterisk_cpu_s) / capacity
        step.errors = callers.errors() if step.failed else ""
        self.steps.append(step)
        self.clear_recordings()
        _progress(step)
        return step

    # Phases -----------------------------------------------------------------------------

    def ivr_hold_ms(self, wanted_s: float) -> int:
        """How long IVR-phase callers stay: `wanted_s`, but short of the end of A's menu
        (greeting + menu), so no caller of either system has reached the queue."""
        in_menu = self.prompt_s["greeting"] + self.prompt_s["menu"]
        return int(min(wanted_s, in_menu - 0.5) * 1000)

    def ivr_ladder(self, rates: list[int], seconds: float, hold_s: float) -> None:
        hold_ms = self.ivr_hold_ms(hold_s)
        for rate in rates:
            for system in ("A", "B"):
                self.run_step(system, "ivr", rate, max(1, int(rate * seconds)), hold_ms)

    def operator_ladder(self, rates: list[int], seconds: float) -> None:
        for rate in rates:
            for system in ("A", "B"):
                self.run_step(system, "operator", rate, max(1, int(rate * seconds)), OPERATOR_HOLD_MS, key=OPERATOR_KEY)

    def leak_run(self, total: int, rate: int, chunks: int) -> None:
        """B only: `total` short IVR calls in `chunks`, the app's RSS after a quiet window
        between them; the first chunk warms the app up (its RSS is the reference)."""
        self.use("B")
        done = 0
        size = max(1, total // chunks)
        warm = max(1, min(size, 500))
        for calls in [warm] + [size] * chunks:
            self.run_step("B", "leak", rate, calls, LEAK_HOLD_MS)
            done += calls
            time.sleep(GC_WINDOW_S)
            pid = self.app_pid
            assert pid is not None
            self.leak.append((done, sample(pid).rss_kb))

    def plan_reload(self, menus: int) -> None:
        self.use("B")
        self.plan_times = measure(self.stack, menus=menus)
        # The reload re-rendered the instance folder; the baseline's file is ours, still there.


class _Peaks:
    app = 0
    asterisk = 0


@contextmanager
def _peaks(app_pid: int | None, asterisk_pid: int) -> Iterator[_Peaks]:
    """Sample both processes' RSS in a thread while the block runs; keep the peaks."""
    peaks = _Peaks()
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            if app_pid:
                peaks.app = max(peaks.app, sample(app_pid).rss_kb)
            peaks.asterisk = max(peaks.asterisk, sample(asterisk_pid).rss_kb)
            stop.wait(SAMPLE_EVERY_S)

    thread = threading.Thread(target=watch, name="rss-sampler", daemon=True)
    thread.start()
    try:
        yield peaks
    finally:
        stop.set()
        thread.join(timeout=5)


def _progress(step: Step) -> None:
    p99 = _pct(step.answer_ms, 99)
    extra = f", own delay p99 {_pct(step.delay_ms, 99):.0f} ms" if step.phase == "operator" else ""
    print(f"  {step.system} {step.phase:8} {step.rate:3d}/s: {step.attempted} calls, {step.answered} answered, "
          f"{step.failed} failed, peak {step.peak_calls} at once, answer p99 {p99:.1f} ms{extra}, "
          f"CPUs busy {step.machine_busy:.0%} (others {step.others_busy:.0%})", flush=True)


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


# Setting up ---------------------------------------------------------------------------------

def start_bench_stack(tmp: Path, operators: int) -> tuple[Stack, list[str]]:
    """The integration tests' stack with the bench's settings: INFO logs (as in service),
    `operators` operator accounts, RTP ports for hundreds of calls, a queue that rings one
    free operator at a time with no wrap-up pause (so a few SIPp operators keep up)."""
    plan_file, ports = make_test_plan(tmp)
    text = plan_file.read_text()
    for old, new in (("strategy: ringall", "strategy: rrmemory"), ("wrapup: 5", "wrapup: 0")):
        assert old in text, f"the test plan changed: {old!r} not found"
        text = text.replace(old, new)
    plan_file.write_text(text)
    names = [f"benchop{i:02d}" for i in range(1, operators + 1)]
    rtp = 40000 + (os.getpid() % 10) * 2000
    config = make_config(
        tmp, f"bench{os.getpid()}", plans=[str(plan_file)], log_level="INFO", rtp_start=rtp, rtp_end=rtp + 1999,
        operators=[{"name": n, "full_name": f"Bench operator {n[-2:]}", "languages": ["id"]} for n in names],
    )
    settings = load_settings(config)
    return Stack(config=config, settings=settings, tmp=tmp, plan_file=plan_file, trunk_ports=ports), names


def prompt_seconds(stack: Stack, plan: Plan) -> dict[str, float]:
    """Durations of what the caller hears first, from the built WAV files."""
    files = {(f.name, f.language): f for f in prompts.require([plan], stack.settings.data_path)}

    def total(names: tuple[str, ...]) -> float:
        return sum(prompts.duration(files[(n, plan.default_language)].path) for n in names)

    menu = plan.menus[plan.entry.then.name]
    return {"greeting": total(plan.entry.greeting), "menu": total(menu.prompts)}


def open_bench(tmp: Path, operators: int) -> Bench:
    stack, names = start_bench_stack(tmp, operators)
    stack.ivr112("prompts", "build")
    plan = load_plans(stack.settings.plan_paths).default
    stack.ivr112("asterisk", "configure")
    install_baseline(plan, stack.layout, BASELINE_NUMBER)
    stack.asterisk_up()
    install_baseline(plan, stack.layout, BASELINE_NUMBER)  # `up` renders the folder afresh
    stack.asterisk_cli("dialplan reload")
    assert BASELINE_NUMBER in stack.asterisk_cli("dialplan show ivr112-carrier-lokal"), "the baseline is not in the dialplan"
    stack.app_start()
    bench = Bench(stack, plan, SippPool(stack), free_port(socket.SOCK_DGRAM), names, prompt_seconds(stack, plan))
    register_operators(bench)
    return bench


def _register(bench: Bench, name: str) -> None:
    password = bench.stack.operator_password(name)
    run = bench.pool.start(f"reg-{name}", SIPP_DIR / "operator_register.xml", "-key", "operator", name,
                           "-au", name, "-ap", password, "-m", "1", port=bench.operator_port, timeout=15)
    if run.wait() != 0:
        raise RuntimeError(f"{name} did not register: {run.output[-500:]} {run.errors()}")


def register_operators(bench: Bench) -> None:
    """Every bench operator registers its contact on the one operators' SIPp port and
    joins the queue (straight in app_queue, as `*11` would: persistent, the app follows)."""
    for name in bench.operators:
        _register(bench, name)
        queue = bench.plan.asterisk_queue(bench.plan.default_queue.name)
        iface = f"PJSIP/{name}"
        bench.stack.asterisk_cli(f"queue add member {iface} to {queue} penalty 0 as {name} state_interface {iface}")
    queue = bench.plan.asterisk_queue(bench.plan.default_queue.name)
    wait_for("the bench operators in the queue",
             lambda: len(re.findall(r"\(PJSIP/benchop", bench.stack.asterisk_cli(f"queue show {queue}"))) == len(bench.operators))


def close_bench(bench: Bench, *, keep: bool = False) -> None:
    """Stop what the bench started, each by its pid; a stop that fails does not keep the
    others running."""
    stack = bench.stack
    for what, stop in (("SIPp", bench.pool.stop_all), ("SIPp", stack.stop_all_sipp), ("the app", stack.app_stop),
                       ("Asterisk", stack.asterisk_down)):
        try:
            stop()
        except Exception as exc:  # report it and go on stopping the rest
            print(f"bench: stopping {what} failed: {exc}", file=sys.stderr)
    if not keep:  # the instance folder holds Asterisk's log (log/messages.log)
        shutil.rmtree(stack.layout.host(stack.layout.inner), ignore_errors=True)
