"""Which calls a lost node had: decided from the shared store and what the watcher saw."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from ari_app.calls.recovery import NODE_LOST, VANISHED, vanished_reason
from ari_app.cluster.sweep import NodeView, Unrecorded, lost, lost_unrecorded, node_of
from ari_app.cluster.topology import load
from ari_app.store import open_store
from ivr.store import Incident


def incident(channel: str, arrived: str, ended: str | None = None) -> Incident:
    return Incident(id=1, channel_id=channel, plan_id="kotim", caller_number="0812", called_number="112", carrier="lokal",
                    language="id", arrived_at=arrived, ended_at=ended)


CALLS = [incident("node1-1.1", "2026-01-01T10:00:00.000+00:00"), incident("node1-1.2", "2026-01-01T10:05:00.000+00:00"),
         incident("node2-1.3", "2026-01-01T10:00:00.000+00:00")]


def test_an_incident_names_the_node_its_call_was_on() -> None:
    assert [node_of(i) for i in CALLS] == ["node1", "node1", "node2"]
    assert node_of(incident("1700000000.5", "2026-01-01T10:00:00+00:00")) is None


def test_a_node_silent_past_the_limit_has_lost_all_its_calls_and_only_its_own() -> None:
    assert lost(CALLS, NodeView("node1", False, 6.0, None), after_s=5) == CALLS[:2]
    assert lost(CALLS, NodeView("node1", False, 2.0, None), after_s=5) == []


def test_a_restarted_asterisk_lost_the_calls_that_arrived_before_it_started() -> None:
    view = NodeView("node1", True, 0.0, datetime(2026, 1, 1, 10, 2, tzinfo=UTC))
    assert lost(CALLS, view, after_s=5) == CALLS[:1]


def test_more_nodes_take_the_next_addresses() -> None:
    cluster = load().with_nodes(3)
    assert [(n.name, n.address) for n in cluster.nodes][-1] == ("node3", "10.211.12.13")


def test_a_calls_end_is_written_once_so_node_lost_is_not_relabelled(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    try:
        inc = store.open_incident(channel_id="node1-1.9", plan_id="kotim", caller_number="0812", called_number="112")
        assert store.update(inc.id, ended_at="2026-01-01T10:00:00.000+00:00", end_reason=NODE_LOST)
        # The node's own app, back, writes its end after the sweeper's: the first end stands,
        # its other fields still land.
        assert not store.update(inc.id, ended_at="2026-01-01T10:00:09.000+00:00", end_reason=VANISHED, fallback=1)
        after = store.get(inc.id)
        assert after is not None and (after.end_reason, after.ended_at, after.fallback) == (
            NODE_LOST, "2026-01-01T10:00:00.000+00:00", 1)
    finally:
        store.close()


def test_a_call_its_asterisk_started_after_was_lost_by_the_node() -> None:
    started = datetime(2026, 1, 1, 10, 2, tzinfo=UTC)
    assert vanished_reason("2026-01-01T10:00:00.000+00:00", started) == NODE_LOST
    assert vanished_reason("2026-01-01T10:03:00.000+00:00", started) == VANISHED
    assert vanished_reason(None, started) == VANISHED


def test_of_asterisks_record_a_lost_node_loses_what_it_answered_before_it_started() -> None:
    calls = [Unrecorded("node1-1.1", "0812", "112", "kotim", datetime(2026, 1, 1, 10, 0, tzinfo=UTC)),
             Unrecorded("node1-1.2", "0813", "112", "kotim", datetime(2026, 1, 1, 10, 5, tzinfo=UTC))]
    assert lost_unrecorded(calls, NodeView("node1", False, 6.0, None), after_s=5) == calls
    assert lost_unrecorded(calls, NodeView("node1", False, 2.0, None), after_s=5) == []
    assert lost_unrecorded(calls, NodeView("node1", True, 0.0, datetime(2026, 1, 1, 10, 2, tzinfo=UTC)), after_s=5) == calls[:1]
