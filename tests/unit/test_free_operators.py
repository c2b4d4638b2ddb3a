"""Operators first, the allocation (ari_app/operators/free_operators.py): never one operator promised
to two callers, urgent first, nobody promised anything with AMI down."""

from __future__ import annotations

from dataclasses import dataclass, field

from ari_app.operators.free_operators import FreeOperators, OperatorFree
from ivr.operators import Board
from ivr.plan import Plan, parse_plan
from ivr.yamlsrc import load_yaml

PLAN = parse_plan(load_yaml("""
service: {id: kotim, name: K, numbers: ["112"], languages: [id]}
prompts: {greeting: {text: {id: Halo}}}
entry: {greeting: [greeting], then: {queue: operators}}
queues: {operators: {}}
operators_first: true
""", "k.yaml"), "k.yaml")
Q = "kotim-operators"


@dataclass
class FakeCaller:
    channel_id: str
    rank: tuple[int, str] | None
    ended: bool = False
    in_stasis: bool = True

    @property
    def person_rank(self) -> tuple[int, str] | None:
        return self.rank

    @property
    def person_plan(self) -> Plan | None:
        return PLAN


@dataclass
class FakeDesk:
    board: Board
    waiting: dict[str, dict[str, str]] = field(default_factory=dict)
    connected: bool = True


def desk_with(*ready: str) -> FakeDesk:
    board = Board(list(ready), {Q: 5})
    for name in ready:
        board.apply("QueueMemberAdded", {"Queue": Q, "MemberName": name, "Interface": f"PJSIP/{name}", "Status": "1", "Paused": "0"})
    return FakeDesk(board)


def allocator(desk: FakeDesk, callers: list[FakeCaller]) -> tuple[FreeOperators, list[str]]:
    posted: list[str] = []

    def post(event: OperatorFree) -> None:
        posted.append(event.channel_id)

    return FreeOperators(desk, lambda: callers, post), posted


def test_two_callers_at_once_and_one_free_operator_only_one_is_promised_it() -> None:
    callers = [FakeCaller("a", (1, "2026-12-01T10:00:00.100")), FakeCaller("b", (1, "2026-12-01T10:00:00.200"))]
    free, posted = allocator(desk_with("andi"), callers)
    assert free.kick() == 1 and posted == ["a"]  # the one who came first
    assert free.kick() == 0 and posted == ["a"]  # a second look promises nothing more
    assert free.free(Q) == 0


def test_urgent_callers_go_first_and_a_second_operator_takes_the_next() -> None:
    callers = [FakeCaller("old", (1, "2026-12-01T10:00:00")), FakeCaller("urgent", (0, "2026-12-01T10:00:05")),
               FakeCaller("busy-keying", None)]
    free, posted = allocator(desk_with("andi", "budi"), callers)
    free.kick()
    assert posted == ["urgent", "old"]


def test_a_promise_ends_when_its_caller_joins_the_queue_and_then_counts_as_waiting() -> None:
    desk = desk_with("andi")
    callers = [FakeCaller("a", (1, "t1")), FakeCaller("b", (1, "t2"))]
    free, posted = allocator(desk, callers)
    free.kick()
    desk.waiting["a"] = {"queue": Q}  # app_queue reported the join
    callers[0].rank = None
    assert free.kick() == 0 and posted == ["a"] and free.promises == {}
    # The operator rings for a and answers: a leaves the queue, andi is on a call, b still waits its turn.
    desk.board.apply("AgentConnect", {"Queue": Q, "MemberName": "andi", "Interface": "PJSIP/andi", "Uniqueid": "a", "DestChannel": "PJSIP/andi-1"})
    del desk.waiting["a"]
    assert free.kick() == 0
    desk.board.apply("Hangup", {"Channel": "PJSIP/andi-1"})  # the call ends; wrap-up follows
    assert free.kick() == 0


def test_a_caller_who_declines_or_hangs_up_frees_the_promise_for_the_next() -> None:
    callers = [FakeCaller("a", (1, "t1")), FakeCaller("b", (1, "t2"))]
    free, posted = allocator(desk_with("andi"), callers)
    free.kick()
    free.release("a")
    callers[0].rank = None
    free.kick()
    assert posted == ["a", "b"]
    callers[1].ended = True
    callers[1].rank = None
    free.kick()
    assert free.promises == {}


def test_with_ami_down_nobody_is_promised_anything() -> None:
    desk = desk_with("andi")
    desk.connected = False
    free, posted = allocator(desk, [FakeCaller("a", (1, "t1"))])
    assert free.kick() == 0 and posted == []


def test_a_cluster_node_whose_callers_go_to_another_nodes_queue_promises_nobody() -> None:
    posted: list[str] = []
    free = FreeOperators(desk_with("andi"), lambda: [FakeCaller("a", (1, "t1"))], lambda e: posted.append(e.channel_id), here=False)
    assert free.kick() == 0 and posted == []  # its board (the standby's members) is not where its callers wait
