"""One SIPp load against one system and what it measured: the unit the benchmark's
phases (run.py), its report and its knee (knee.py) share. Pure: no process, no clock."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field


@dataclass
class Step:
    """One SIPp load against one system: what was sent, what came back, what it cost."""

    system: str  # "A" plain dialplan, "B" the ivr112 app
    phase: str  # "ivr" (callers stay in the IVR), "operator" (key 0 to the queue), "leak"
    rate: int  # new calls per second
    hold_s: float
    store: str = ""  # B's store engine: "sqlite" or "postgresql"
    attempted: int = 0
    answered: int = 0
    failed: int = 0
    peak_calls: int = 0
    answer_ms: list[float] = field(default_factory=list)
    delay_ms: list[float] = field(default_factory=list)  # INVITE to the operator's INVITE, minus the caller's own time
    app_cpu_s: float = 0.0
    store_cpu_s: float = 0.0  # of it, the store's writer thread (ivr112-store)
    asterisk_cpu_s: float = 0.0
    app_rss_idle_kb: int = 0
    app_rss_peak_kb: int = 0
    app_rss_after_kb: int = 0
    asterisk_rss_peak_kb: int = 0
    load_avg: float = 0.0
    machine_busy: float = 0.0  # share of all CPUs busy during the step (ours and others')
    others_busy: float = 0.0  # of it, what neither this Asterisk nor this app used (SIPp, other stacks)
    errors: str = ""
    left_channels: int = 0  # channels still up when the callers were done, hung up by the bench
    rtp_refused: int = 0  # calls Asterisk found no free RTP port for (its log)
    app_exited: bool = False  # the app was gone at the end of a B step

    @property
    def operator_missing(self) -> int:
        return self.answered - len(self.delay_ms) if self.phase == "operator" else 0

    @property
    def store_share(self) -> float:
        """The store thread's share of the app's CPU in this step."""
        return self.store_cpu_s / self.app_cpu_s if self.app_cpu_s else float("nan")

    @property
    def app_kb_per_active_call(self) -> float:
        if self.system != "B" or not self.peak_calls:
            return float("nan")
        return (self.app_rss_peak_kb - self.app_rss_idle_kb) / self.peak_calls


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]
