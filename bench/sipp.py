"""SIPp runs for the benchmark: the caller load (rate, total, what each caller does after
the answer) and the operators' UAS, with what they logged parsed back into timings.

Timings come from SIPp's own `gettimeofday` action, taken in the scenario just before the
INVITE leaves and when the 200 OK (or, at the operator, the INVITE) is processed: one
clock (the host's), microsecond resolution, no packet capture needed.
"""

from __future__ import annotations

import csv
import re
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.integration.stack import SIPP, Sipp, Stack, dtmf_pcap, free_port
from tests.support.net import free_media_port

SCENARIOS = Path(__file__).resolve().parent / "sipp"
# An RFC 2833 digit from SIPp's captures lasts 140 ms to its first end packet; Asterisk
# (and so the dialplan and the app) acts on the digit at that end packet.
DTMF_END_S = 0.14
RECV_TIMEOUT_MS = 30_000
MAX_CALLS_AT_ONCE = 3000

_N = r"(\d+)(?:\.0+)?"  # SIPp prints its variables as doubles: 1795917671.000000
_CALL = re.compile(rf"^CALL (\d+) {_N} {_N} {_N} {_N}", re.MULTILINE)
_RING = re.compile(rf"^RING (\d+) {_N} {_N}", re.MULTILINE)


@dataclass(frozen=True)
class CallTimes:
    invite: float  # wall clock, s, just before the INVITE left the caller
    answered: float  # when the caller processed the 200 OK


@dataclass
class SippRun(Sipp):
    """A SIPp run of the bench: the integration tests' `Sipp`, plus what the bench reads back."""

    def stop(self) -> None:
        """End a UAS that is still waiting (SIGTERM to this SIPp's own pid)."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def _text(self, pattern: str) -> str:
        return "\n".join(p.read_text(errors="replace") for p in sorted(self.workdir.glob(pattern)))

    def calls(self) -> dict[str, CallTimes]:
        """Each answered call by caller number (caller side)."""
        return {m[1]: CallTimes(int(m[2]) + int(m[3]) / 1e6, int(m[4]) + int(m[5]) / 1e6)
                for m in _CALL.finditer(self.logs())}

    def rings(self) -> dict[str, float]:
        """When each caller's call reached an operator (operator side), by caller number."""
        out: dict[str, float] = {}
        for m in _RING.finditer(self.logs()):
            out.setdefault(m[1], int(m[2]) + int(m[3]) / 1e6)
        return out

    def stats(self) -> dict[str, int]:
        """Totals from SIPp's statistics file: created, successful, failed, peak at once."""
        rows: list[dict[str, str]] = []
        for path in sorted(self.workdir.glob("*_.csv")):
            with path.open(newline="") as f:
                rows += list(csv.DictReader(f, delimiter=";"))
        if not rows:
            return {"created": 0, "successful": 0, "failed": 0, "peak": 0}
        last = rows[-1]
        return {
            "created": int(last["TotalCallCreated"]),
            "successful": int(last["SuccessfulCall(C)"]),
            "failed": int(last["FailedCall(C)"]),
            "peak": max(int(r["CurrentCall"]) for r in rows),
        }

    def errors(self) -> str:
        return self._text("*_errors.log")[-2000:]


@dataclass
class SippPool:
    """Every SIPp the benchmark starts, so each is stopped by its own pid at the end."""

    stack: Stack
    runs: list[SippRun] = field(default_factory=list)

    def start(self, label: str, scenario: Path, *args: str, port: int | None = None, timeout: float = 120) -> SippRun:
        workdir = self.stack.tmp / f"bench-{label}-{time.monotonic_ns()}"
        workdir.mkdir()
        s = self.stack.settings
        port = port or free_port(socket.SOCK_DGRAM)
        cmd = [
            SIPP, f"{s.sip_host}:{s.sip_port}", "-sf", str(scenario),
            "-i", "127.0.0.1", "-p", str(port), "-mp", str(free_media_port()),
            "-nostdin", "-timeout", f"{int(timeout)}s", "-timeout_error", "-recv_timeout", str(RECV_TIMEOUT_MS),
            "-l", str(MAX_CALLS_AT_ONCE), "-trace_err", "-trace_logs", "-trace_stat", "-fd", "1", *args,
        ]
        proc = subprocess.Popen(cmd, cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        run = SippRun(label, proc, workdir, port, timeout)
        self.runs.append(run)
        return run

    def stop_all(self) -> None:
        for run in self.runs:
            run.stop()
        self.runs.clear()


def caller_scenario(workdir: Path, *, hold_ms: int, key: str | None = None, key_after_ms: int = 0) -> Path:
    """The bench caller: after the answer, optionally `key` after `key_after_ms`, then it
    stays `hold_ms` and hangs up."""
    steps: list[str] = []
    if key is not None:
        steps.append(f'  <pause milliseconds="{key_after_ms}"/>')
        steps.append(f'  <nop><action><exec play_pcap_audio="{dtmf_pcap(key, 1, workdir)}"/></action></nop>')
    steps.append(f'  <pause milliseconds="{hold_ms}"/>')
    text = (SCENARIOS / "caller.xml").read_text().replace("  <!-- AFTER_ANSWER -->", "\n".join(steps))
    path = workdir / f"caller-{hold_ms}-{key or 'none'}-{key_after_ms}.xml"
    path.write_text(text)
    return path
