"""Asterisk's queue_log, read back: what app_queue did with each caller (joined a queue,
was answered by an operator, gave up), written by Asterisk itself whether the app was
connected or not. Pure: lines in, facts per call out.

The app follows the queues live over AMI; but an app that was down (killed, restarting)
or whose AMI link was cut hears nothing of what happened meanwhile. A caller the guard
sent to the operators while the app was away is answered with no AMI listener, and the
incident would say nobody answered. On every (re)connect the app reads the newest part
of this file and fills in what its records miss (`ari_app.operators.desk`).

A line: `epoch|uniqueid|queue|agent|EVENT|data1|data2|...` (Asterisk's queue_log format;
`agent` is the member name, our operator's account name).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

ENTERQUEUE = "ENTERQUEUE"
CONNECT = "CONNECT"
ABANDON = "ABANDON"
# How much of the file's end is read on a reconnect: several hours of a busy centre's lines.
TAIL_BYTES = 2 * 1024 * 1024


@dataclass(frozen=True)
class QueueLogLine:
    at: str  # ISO UTC, as the incident store writes times
    uniqueid: str
    queue: str
    agent: str
    event: str
    data: tuple[str, ...]


@dataclass
class QueueFacts:
    """What the queue_log says of one caller's channel (the first of each, in file order)."""

    queue: str = ""  # Asterisk's queue name (plan id + queue)
    joined_at: str = ""
    operator: str = ""
    answered_at: str = ""
    abandoned_at: str = ""


def _iso(epoch: str) -> str | None:
    try:
        return datetime.fromtimestamp(float(epoch), UTC).isoformat(timespec="milliseconds")
    except (ValueError, OverflowError, OSError):
        return None


def parse_line(line: str) -> QueueLogLine | None:
    """One line; None for a line that is cut, malformed, or about no call (QUEUESTART)."""
    fields = line.rstrip("\r\n").split("|")
    if len(fields) < 5:
        return None
    at = _iso(fields[0])
    uniqueid, queue, agent, event = fields[1:5]
    if at is None or not uniqueid or uniqueid == "NONE" or not event:
        return None
    return QueueLogLine(at, uniqueid, queue, agent.split("/", 1)[-1] if agent != "NONE" else "", event, tuple(fields[5:]))


def facts(lines: Iterable[str], queues: set[str] | None = None) -> dict[str, QueueFacts]:
    """Facts per caller channel (uniqueid), from queue_log lines; only `queues` when given."""
    out: dict[str, QueueFacts] = {}
    for raw in lines:
        line = parse_line(raw)
        if line is None or (queues is not None and line.queue not in queues):
            continue
        if line.event not in (ENTERQUEUE, CONNECT, ABANDON):
            continue
        f = out.setdefault(line.uniqueid, QueueFacts())
        if not f.queue:
            f.queue = line.queue
        if line.event == ENTERQUEUE and not f.joined_at:
            f.joined_at = line.at
        elif line.event == CONNECT and not f.answered_at and line.agent:
            f.operator, f.answered_at = line.agent, line.at
        elif line.event == ABANDON and not f.abandoned_at:
            f.abandoned_at = line.at
    return out


def tail_lines(data: bytes, *, from_start: bool) -> list[str]:
    """The complete lines of the end of the file read from some offset: the first one is
    dropped unless the read started at the file's beginning (it may be cut)."""
    text = data.decode("utf-8", "replace")
    lines = text.split("\n")
    if not from_start and lines:
        lines = lines[1:]
    if lines and not text.endswith("\n"):
        lines = lines[:-1]  # still being written
    return [line for line in lines if line]
