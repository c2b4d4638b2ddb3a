"""CPU seconds and memory of a process, read from /proc (Linux), for per-call figures."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class ProcSample:
    cpu_s: float  # user + system CPU seconds since the process started
    rss_kb: int  # resident set now (VmRSS)
    hwm_kb: int  # peak resident set since start (VmHWM)


def sample(pid: int) -> ProcSample:
    """One reading of `pid`'s CPU time and memory; zeros if the process is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return ProcSample(0.0, 0, 0)
    cpu = _cpu_s(stat)
    mem = {line.split(":")[0]: line.split()[1] for line in status.splitlines() if line.startswith(("VmRSS", "VmHWM"))}
    return ProcSample(cpu, int(mem.get("VmRSS", 0)), int(mem.get("VmHWM", 0)))


def machine_busy_s() -> tuple[float, float]:
    """CPU seconds the whole machine spent busy, and wall-clock-seconds of CPU capacity
    (all CPUs), since boot: two readings give how busy it was in between."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    total = sum(fields[:8])  # user nice system idle iowait irq softirq steal
    return (total - idle) / CLOCK_TICKS, total / CLOCK_TICKS


def thread_cpu_s(pid: int, name: str) -> float:
    """CPU seconds (user + system) of `pid`'s threads named `name` in the kernel (their comm,
    as ari_app/threads.py sets it); 0 when there is none yet or the process is gone."""
    total = 0.0
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return 0.0
    for task in tasks:
        try:
            if (task / "comm").read_text().strip() != name:
                continue
            stat = (task / "stat").read_text()
        except OSError:  # the thread ended meanwhile
            continue
        total += _cpu_s(stat)
    return total


def _cpu_s(stat: str) -> float:
    """utime + stime of a /proc stat line, in seconds."""
    # The command name (field 2) may hold spaces: split after its closing parenthesis.
    fields = stat[stat.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def tree_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) of `pid` and every process below it (Kamailio's and
    PostgreSQL's workers are child processes); 0 when it is gone."""
    children: dict[int, list[int]] = {}
    stats: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # ended meanwhile
            continue
        ppid = int(stat[stat.rindex(")") + 2:].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
        stats[int(entry.name)] = stat
    total, todo = 0.0, [pid]
    while todo:
        current = todo.pop()
        if current in stats:
            total += _cpu_s(stats[current])
            todo.extend(children.get(current, []))
    return total
