"""Operators first (plan `operators_first:`): a caller never waits in the IVR while an
operator who could take the call sits free.

The free capacity of a queue is what the operators' board (app_queue's own events, over
AMI) says: operators ready now, less the callers already waiting in that queue, less the
callers this module has just sent towards it and app_queue has not yet reported
(promises). So two callers arriving together are never promised the same operator. Each
time the capacity may have grown (an operator logs in, resumes, ends a wrap-up, a waiting
caller leaves, a call starts) `kick()` takes the callers in the IVR in order (urgent first,
then the longest there) and offers each a person while there is room: the call's
controller feeds `PersonFree` to its flow, which goes to the operators' queue at once (or
after the greeting). A promise ends when its caller joins the queue, routes elsewhere (an
agency key during the greeting), declines (halfway through keying), hangs up, or after
PROMISE_HOLD_S. An operator who then does not answer leaves the caller in the queue,
rung again as any queued caller: never in silence. With AMI down the board cannot be
trusted, and nobody is promised anything: callers get the IVR as before. Nor on a cluster's
node whose callers are sent to another node's queues (docs/cluster.md): this node's board
is not where those callers wait (`here` False).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

from ivr.operators import Board
from ivr.plan import Plan

log = logging.getLogger(__name__)

# Long enough for a greeting to end and the caller to reach app_queue.
PROMISE_HOLD_S = 15.0
TICK_S = 1.0  # how often the capacity is looked at again (wrap-ups end with no event)
RANK = {"urgent": 0, "normal": 1, "low": 2}


@dataclass(frozen=True)
class OperatorFree:
    """To the caller's controller: an operator is free for you now."""

    channel_id: str
    type: str = "ivr112.OperatorFree"


class Caller(Protocol):
    """What this module reads of a call in the IVR (the call controller)."""

    channel_id: str
    ended: bool
    in_stasis: bool

    @property
    def person_rank(self) -> tuple[int, str] | None:
        """(priority rank, arrival) when a free operator may take this caller now; else None."""

    @property
    def person_plan(self) -> Plan | None: ...


class DeskView(Protocol):
    board: Board
    waiting: dict[str, dict[str, str]]

    @property
    def connected(self) -> bool: ...


@dataclass
class Promise:
    channel_id: str
    queue: str
    until: float


class FreeOperators:
    def __init__(self, desk: DeskView, callers: Callable[[], Iterable[Caller]], post: Callable[[OperatorFree], None],
                 *, hold_s: float = PROMISE_HOLD_S, here: bool = True) -> None:
        self.desk = desk
        self.here = here  # the queues take calls on this node
        self.callers = callers
        self.post = post
        self.hold_s = hold_s
        self.promises: dict[str, Promise] = {}
        self.granted = 0

    def free(self, queue: str) -> int:
        """Operators of `queue` nobody has been given yet (negative: callers are waiting)."""
        waiting = sum(1 for w in self.desk.waiting.values() if w.get("queue") == queue)
        promised = sum(1 for p in self.promises.values() if p.queue == queue)
        return len(self.desk.board.ready(queue)) - waiting - promised

    def release(self, channel_id: str) -> None:
        """The caller no longer holds a promise (declined, routed elsewhere, gone)."""
        self.promises.pop(channel_id, None)

    def _expire(self, live: dict[str, Caller]) -> None:
        now = time.monotonic()
        for channel_id, promise in list(self.promises.items()):
            caller = live.get(channel_id)
            if channel_id in self.desk.waiting or caller is None or caller.ended or promise.until < now:
                del self.promises[channel_id]

    def kick(self) -> int:
        """Offer free operators to callers in the IVR; returns how many were offered one."""
        live = {c.channel_id: c for c in self.callers()}
        self._expire(live)
        if not self.desk.connected or not self.here:
            return 0
        ranked: list[tuple[tuple[int, str], Caller, Plan]] = []
        for caller in live.values():
            if caller.channel_id in self.promises or caller.ended or not caller.in_stasis:
                continue
            plan, rank = caller.person_plan, caller.person_rank
            if plan is not None and rank is not None:
                ranked.append((rank, caller, plan))
        offered = 0
        for _rank, caller, plan in sorted(ranked, key=lambda item: item[0]):
            queue = plan.asterisk_queue(plan.default_queue.name)
            if self.free(queue) <= 0:
                continue
            self.promises[caller.channel_id] = Promise(caller.channel_id, queue, time.monotonic() + self.hold_s)
            self.granted += 1
            offered += 1
            log.info("[%s] an operator of %s is free: the caller goes to them", caller.channel_id, queue)
            self.post(OperatorFree(caller.channel_id))
        return offered

    async def run(self) -> None:
        """Look again every TICK_S: wrap-ups end and promises lapse without an event."""
        while True:
            await asyncio.sleep(TICK_S)
            try:
                self.kick()
            except Exception as exc:  # never the end of the app
                log.error("operators-first check failed: %r", exc)
