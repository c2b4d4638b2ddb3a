"""The benchmark's phases on one stack: the IVR load ladder and the operator phase (A and
B interleaved at each rate, so both see the same machine), the store engines side by side
(A, B on SQLite, B on PostgreSQL at one rate), the long run for leaks (B), and the 500-menu
plan. Each phase returns figures; report.py prints and draws them, knee.py says where the
ladder stopped meeting the targets.

A step past the stack's capacity does not end the run: channels left behind when the
callers are done are counted and hung up, refused RTP ports are counted from Asterisk's
log, and a stack that cannot be brought back to idle stops the phase (StackStuck), not
the benchmark.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ari_app.asterisk import process
from ari_app.store.pg_server import PostgresServer
from ari_app.threads import STORE_THREAD
from bench.baseline import install_baseline
from bench.cluster_figures import ClusterStep
from bench.plan500 import PlanTimes, measure
from bench.procstat import ProcSample, machine_busy_s, sample, thread_cpu_s
from bench.sipp import DTMF_END_S, SCENARIOS, SippPool, caller_scenario
from bench.step import Step, pct
from ivr import prompts
from ivr.plan import Plan, load_plans
from ivr.settings import Settings, load_settings
from tests.integration.stack import SIPP_DIR, Stack, free_port, make_config, make_test_plan, wait_for
from tests.support.poll import WaitTimeout

BASELINE_NUMBER = "1129"
OPERATOR_KEY = "0"
KEY_AFTER_MS = 500  # the caller presses 0 this long after the answer, during the greeting
OPERATOR_HOLD_MS = 3000  # then stays this long (with the operator) and hangs up
LEAK_HOLD_MS = 1000
WARM_S = 2.0  # an engines step's warm-up after the app was restarted on another store (not kept)
GC_WINDOW_S = 5.0
SAMPLE_EVERY_S = 0.25
IDLE_TIMEOUT_S = 90.0  # at most this long for Asterisk's channels to end after the callers
STALL_S = 15.0  # ... and this long without one channel fewer: the rest are left behind
HANGUP_TIMEOUT_S = 30.0  # for `channel request hangup all` to clear what was left
# res_rtp_asterisk's ERROR when no port of rtp_start..rtp_end is free for a new call.
RTP_EXHAUSTED = "couldn't allocate a port for RTP instance"


class StackStuck(RuntimeError):
    """The stack cannot be brought back to where a step starts (Asterisk kept channels up
    even after the bench hung them up, Asterisk gone, the app not back): the phase stops."""


@dataclass
class Bench:
    stack: Stack
    plan: Plan
    pool: SippPool
    operator_port: int
    operators: list[str]
    prompt_s: dict[str, float]
    steps: list[Step] = field(default_factory=list)
    engine_steps: list[Step] = field(default_factory=list)  # the store engines side by side
    stopped: list[str] = field(default_factory=list)  # phases a stuck stack ended early, and why
    store: str = "sqlite"
    pg: PostgresServer | None = None
    leak: list[tuple[int, int]] = field(default_factory=list)  # (calls so far, app RSS kB after a quiet window)
    plan_times: PlanTimes | None = None
    cluster_steps: list[ClusterStep] = field(default_factory=list)  # one call node vs two behind the edge
    cluster_note: str = ""  # why the cluster phase was skipped or stopped early
    _prefix: int = 0

    # The stack --------------------------------------------------------------------------

    @property
    def app_pid(self) -> int | None:
        proc = self.stack.app_proc
        return proc.pid if proc is not None and proc.poll() is None else None

    @property
    def asterisk_pid(self) -> int:
        pid = process.read_pid(self.stack.layout)
        if pid is None:
            raise StackStuck(f"Asterisk is not running (its log: {self.stack.layout.messages_log})")
        return pid

    def use(self, system: str) -> None:
        """A runs with the app stopped (nothing but Asterisk); B with the app connected."""
        running = self.app_pid is not None
        if system == "A" and running:
            self.stack.app_stop()
        elif system == "B" and not running:
            try:
                self.stack.app_start()
            except WaitTimeout as exc:
                raise StackStuck(f"the app did not come back ({exc}; its log: {self.stack.app_log})") from exc

    def channels(self) -> int:
        return self.stack.active_channels()

    def settle(self) -> int:
        """Wait for Asterisk's channels to end, as long as they keep ending; hang up what is
        left behind (callers SIPp gave up on, an Asterisk past its capacity) and return how
        many that were. Raises StackStuck when even that leaves channels up."""
        start = progress = time.monotonic()
        left = self.channels()
        while left != 0 and time.monotonic() - progress < STALL_S and time.monotonic() - start < IDLE_TIMEOUT_S:
            time.sleep(0.25)
            now = self.channels()  # -1: Asterisk did not answer the CLI in time (overloaded)
            if 0 <= now < left or left < 0 <= now:
                progress = time.monotonic()
            left = now if now >= 0 else left
        if left == 0:
            return 0
        self.stack.asterisk_cli("channel request hangup all")
        try:
            self.stack.wait_no_channels(timeout=HANGUP_TIMEOUT_S)
        except WaitTimeout as exc:
            raise StackStuck(f"{left} channels still up after the callers were done, and `channel request hangup all` "
                             f"did not end them in {HANGUP_TIMEOUT_S:g} s") from exc
        return max(left, 0)

    def _log_size(self) -> int:
        try:
            return self.stack.layout.messages_log.stat().st_size
        except OSError:
            return 0

    def _rtp_refusals(self, since: int) -> int:
        """Asterisk's complaints of no free RTP port since the log was `since` bytes long."""
        try:
            with self.stack.layout.messages_log.open("rb") as f:
                f.seek(since)
                return f.read().decode(errors="replace").count(RTP_EXHAUSTED)
        except OSError:
            return 0

    def use_store(self, name: str, url: str) -> bool:
        """Point the app at another store engine (`url` empty: the SQLite file), restarting it;
        False when it was on that engine already."""
        if name == self.store:
            return False
        if self.app_pid is not None:
            self.stack.app_stop()
        config = yaml.safe_load(self.stack.config.read_text())
        config.pop("store_url", None)
        if url:
            config["store_url"] = url
        self.stack.config.write_text(yaml.safe_dump(config))
        self.stack.settings = load_settings(self.stack.config)
        self.store = name
        return True

    def clear_recordings(self) -> None:
        """Every call is recorded (A and B alike); drop this instance's files between steps."""
        folder = self.stack.layout.host(self.stack.layout.recordings)
        for path in folder.glob("call-*.wav"):
            path.unlink(missing_ok=True)

    # One step ---------------------------------------------------------------------------

    def run_step(self, system: str, phase: str, rate: int, calls: int, hold_ms: int, *, key: str | None = None) -> Step:
        """One step; the caller keeps it (in `steps` or `engine_steps`)."""
        self.use(system)
        self.settle()
        self._prefix += 1
        prefix = f"08{self._prefix:03d}"
        step = Step(system, phase, rate, hold_ms / 1000, store=self.store if system == "B" else "")
        log_mark = self._log_size()
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
        store0 = thread_cpu_s(app_pid, STORE_THREAD) if app_pid else 0.0
        ast0 = sample(ast_pid)
        busy0, cap0 = machine_busy_s()
        step.app_rss_idle_kb = app0.rss_kb
        with _peaks(app_pid, ast_pid) as peaks:
            number = "112" if system == "B" else BASELINE_NUMBER
            callers = self.pool.start(f"{system}-{phase}-{rate}", scenario, "-s", number, "-key", "prefix", prefix,
                                      "-r", str(rate), "-rp", "1000", "-m", str(calls), timeout=duration)
            callers.wait()
            step.left_channels = self.settle()
        if operators is not None:
            if operators.proc.poll() is None:
                time.sleep(1.0)  # the last operator's 200 OK to the BYE
            operators.stop()
        app1 = sample(app_pid) if app_pid else ProcSample(0, 0, 0)
        store1 = thread_cpu_s(app_pid, STORE_THREAD) if app_pid else 0.0
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
        step.app_cpu_s = max(0.0, app1.cpu_s - app0.cpu_s)
        step.store_cpu_s = max(0.0, store1 - store0)
        step.app_exited = system == "B" and self.app_pid is None
        step.rtp_refused = self._rtp_refusals(log_mark)
        step.asterisk_cpu_s = ast1.cpu_s - ast0.cpu_s
        step.app_rss_peak_kb = max(peaks.app, app1.rss_kb)
        step.app_rss_after_kb = app1.rss_kb
        step.asterisk_rss_peak_kb = peaks.asterisk
        step.load_avg = os.getloadavg()[0]
        capacity = max(1e-9, cap1 - cap0)
        step.machine_busy = (busy1 - busy0) / capacity
        step.others_busy = max(0.0, busy1 - busy0 - step.app_cpu_s - step.asterisk_cpu_s) / capacity
        step.errors = callers.errors() if step.failed else ""
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
                self.steps.append(self.run_step(system, "ivr", rate, max(1, int(rate * seconds)), hold_ms))

    def operator_ladder(self, rates: list[int], seconds: float) -> None:
        for rate in rates:
            for system in ("A", "B"):
                self.steps.append(self.run_step(system, "operator", rate, max(1, int(rate * seconds)), OPERATOR_HOLD_MS,
                                                key=OPERATOR_KEY))

    def engines(self, ivr_rate: int, operator_rate: int, seconds: float, hold_s: float, engines: list[str]) -> None:
        """A, then B on each store engine, at one IVR rate and one operator rate: the same
        callers, one after the other on the same machine. PostgreSQL is a private server
        (started here, stopped by its pid in close_bench)."""
        urls = {"sqlite": ""}
        if "postgresql" in engines:
            self.pg = PostgresServer()
            self.pg.init()
            self.pg.start()
            urls["postgresql"] = self.pg.create_database("bench")
        try:
            for phase, rate, hold_ms, key in (("ivr", ivr_rate, self.ivr_hold_ms(hold_s), None),
                                              ("operator", operator_rate, OPERATOR_HOLD_MS, OPERATOR_KEY)):
                calls = max(1, int(rate * seconds))
                self.engine_steps.append(self.run_step("A", phase, rate, calls, hold_ms, key=key))
                for name in engines:
                    if self.use_store(name, urls[name]):
                        # A fresh app: its first calls prepare statements, fill caches and
                        # connect. Every engine is measured warm, as SQLite was after the
                        # ladders: a step of WARM_S not kept.
                        self.run_step("B", phase, rate, max(1, int(rate * WARM_S)), hold_ms, key=key)
                    self.engine_steps.append(self.run_step("B", phase, rate, calls, hold_ms, key=key))
        finally:
            self.use_store("sqlite", "")

    def leak_run(self, total: int, rate: int, chunks: int) -> None:
        """B only: `total` short IVR calls in `chunks`, the app's RSS after a quiet window
        between them; the first chunk warms the app up (its RSS is the reference)."""
        self.use("B")
        done = 0
        size = max(1, total // chunks)
        warm = max(1, min(size, 500))
        for calls in [warm] + [size] * chunks:
            self.steps.append(self.run_step("B", "leak", rate, calls, LEAK_HOLD_MS))
            done += calls
            time.sleep(GC_WINDOW_S)
            pid = self.app_pid
            assert pid is not None
            self.leak.append((done, sample(pid).rss_kb))

    def cluster(self, rates: list[int], seconds: float, hold_s: float) -> None:
        """One call node, then two, behind a Kamailio edge in a private cluster of their own
        (bench/cluster.py); this stack stays up, idle, meanwhile. The nodes serve the
        project's plans with its built prompts (`make bench` builds them), not this stack's
        test plan."""
        from bench.cluster import run_phase

        self.cluster_steps, self.cluster_note = run_phase(load_settings(), rates, seconds, hold_s)
        if self.cluster_note:
            print(f"  {self.cluster_note}", flush=True)

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
    p99 = pct(step.answer_ms, 99)
    extra = f", own delay p99 {pct(step.delay_ms, 99):.0f} ms" if step.phase == "operator" else ""
    if step.system == "B":
        extra += (f", app {1000 * step.app_cpu_s / max(1, step.attempted):.1f} ms CPU/call "
                  f"(store {1000 * step.store_cpu_s / max(1, step.attempted):.1f}, {step.store})")
    trouble = [f"{step.left_channels} channels left behind", f"{step.rtp_refused} RTP ports refused", "the app exited"]
    shown = [t for t, n in zip(trouble, (step.left_channels, step.rtp_refused, step.app_exited), strict=True) if n]
    print(f"  {step.system} {step.phase:8} {step.rate:3d}/s: {step.attempted} calls, {step.answered} answered, "
          f"{step.failed} failed, peak {step.peak_calls} at once, answer p99 {p99:.1f} ms{extra}, "
          f"CPUs busy {step.machine_busy:.0%} (others {step.others_busy:.0%})" + "".join(f"; {t}" for t in shown), flush=True)


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


def prompt_seconds(settings: Settings, plan: Plan) -> dict[str, float]:
    """Durations of what the caller hears first, from the built WAV files."""
    files = {(f.name, f.language): f for f in prompts.require([plan], settings.data_path)}

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
    bench = Bench(stack, plan, SippPool(stack), free_port(socket.SOCK_DGRAM), names, prompt_seconds(stack.settings, plan))
    try:
        install_baseline(plan, stack.layout, BASELINE_NUMBER)  # `up` renders the folder afresh
        stack.asterisk_cli("dialplan reload")
        if BASELINE_NUMBER not in stack.asterisk_cli("dialplan show ivr112-carrier-lokal"):
            raise RuntimeError("the baseline is not in the dialplan")
        stack.app_start()
        register_operators(bench)
    except BaseException:  # nothing the bench started may outlive it
        close_bench(bench)
        raise
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
    stops: list[tuple[str, Callable[[], None]]] = [
        ("SIPp", bench.pool.stop_all), ("SIPp", stack.stop_all_sipp), ("the app", stack.app_stop), ("Asterisk", stack.asterisk_down)]
    if bench.pg is not None:
        stops.append(("PostgreSQL", bench.pg.destroy))
    for what, stop in stops:
        try:
            stop()
        except Exception as exc:  # report it and go on stopping the rest
            print(f"bench: stopping {what} failed: {exc}", file=sys.stderr)
    if not keep:  # the instance folder holds Asterisk's log (log/messages.log)
        shutil.rmtree(stack.layout.host(stack.layout.inner), ignore_errors=True)
