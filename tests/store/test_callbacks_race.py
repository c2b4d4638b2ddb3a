"""Two app nodes on one store touch the same callback entry at the same moment: nothing
they did is lost. Each node is a store of its own (its own engine and connections), run
in a thread of its own; a barrier lines both up before every step, many times over, on
both engines."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path

import pytest
from sqlalchemy import select

from ari_app.store import IncidentStore, engine, open_store, schema
from ari_app.store.base import locked
from ari_app.store.engine import is_store_fault
from ivr import callbacks

ROUNDS = 60


@pytest.fixture
def nodes(store_url: str, tmp_path: Path) -> Iterator[tuple[IncidentStore, IncidentStore]]:
    a = open_store(tmp_path / "a", store_url)
    b = open_store(tmp_path / "b", store_url)
    yield a, b
    a.close()
    b.close()


def together(a: Callable[[], object], b: Callable[[], object]) -> tuple[object, object]:
    """Run `a` and `b` on two threads released at the same instant; what each returned or raised."""
    barrier = threading.Barrier(2)

    def run(step: Callable[[], object]) -> object:
        barrier.wait()
        try:
            return step()
        except Exception as exc:
            return exc

    with ThreadPoolExecutor(2) as pool:
        fa, fb = pool.submit(run, a), pool.submit(run, b)
        return fa.result(), fb.result()


def listed(store: IncidentStore, prefix: str) -> Iterator[str]:
    """ROUNDS numbers, each with an open entry (one missed call) when it is handed out."""
    for i in range(ROUNDS):
        number = f"{prefix}{i:05d}"
        callbacks.missed(store, number, None)
        yield number


def test_missed_calls_from_one_number_on_two_nodes_at_once_are_all_counted(nodes: tuple[IncidentStore, IncidentStore]) -> None:
    a, b = nodes
    for i in range(ROUNDS):
        number = f"0812500{i:05d}"
        # Both calls are the number's first: one opens the entry, the other counts on it.
        together(partial(callbacks.missed, a, number, None), partial(callbacks.missed, b, number, None))
        together(partial(callbacks.missed, a, number, None), partial(callbacks.missed, b, number, None))
    counts = {e.number: e.calls for e in a.callbacks(include_closed=True, limit=ROUNDS * 2)}
    assert counts == {f"0812500{i:05d}": 4 for i in range(ROUNDS)}


def test_one_call_closed_by_two_nodes_at_once_is_counted_once(nodes: tuple[IncidentStore, IncidentStore]) -> None:
    a, b = nodes
    for i in range(ROUNDS):
        number = f"0815500{i:05d}"
        earlier = a.open_incident(channel_id=f"e{i}", plan_id="kotim", caller_number=number, called_number="112").id
        lost = a.open_incident(channel_id=f"l{i}", plan_id="kotim", caller_number=number, called_number="112").id
        callbacks.missed(a, number, earlier)
        # The node that had the call and the cluster's sweeper both close it (ari_app.cluster.sweep).
        first, second = together(partial(callbacks.missed, a, number, lost), partial(callbacks.missed, b, number, lost))
        assert [r is None for r in (first, second)].count(True) == 1, (first, second)  # one of them lists it
        entry = a.callback(number)
        assert entry is not None and entry.calls == 2 and entry.incident_id == lost


def test_a_callback_started_on_one_node_while_the_other_counts_a_missed_call_keeps_both(
        nodes: tuple[IncidentStore, IncidentStore]) -> None:
    a, b = nodes
    for number in listed(a, "0813500"):
        started, _ = together(partial(callbacks.start, a, number, "andi"), partial(callbacks.missed, b, number, None))
        assert not isinstance(started, BaseException), started
        entry = a.callback(number)
        assert entry is not None
        # The operator's callback is still known to be under way (no second one can start),
        # and the call that came in meanwhile is counted.
        assert (entry.status, entry.operator, entry.attempts, entry.calls) == ("calling", "andi", 1, 2), entry


def test_two_operators_on_two_nodes_pressing_call_back_at_once_start_one_callback(
        nodes: tuple[IncidentStore, IncidentStore]) -> None:
    a, b = nodes
    for number in listed(a, "0814500"):
        first, second = together(partial(callbacks.start, a, number, "andi"), partial(callbacks.start, b, number, "budi"))
        refused = [r for r in (first, second) if isinstance(r, callbacks.CallbackRefused)]
        assert len(refused) == 1, (first, second)
        assert "already being called back" in str(refused[0])
        entry = a.callback(number)
        assert entry is not None and entry.attempts == 1


@pytest.fixture
def short_locks(monkeypatch: pytest.MonkeyPatch) -> None:
    """The stores opened after this wait 0.2 s for a lock another node holds (not 5 s)."""
    monkeypatch.setattr(engine, "LOCK_TIMEOUT_S", 0.2)


@pytest.mark.parametrize("held", [False, True], ids=["pooled", "held"])
def test_an_entry_held_locked_by_a_stalled_node_fails_as_a_store_fault_not_a_hang(
        short_locks: None, nodes: tuple[IncidentStore, IncidentStore], held: bool) -> None:
    a, b = nodes
    if held:  # B's lock taken on the connection its store thread keeps (held.py), not a pooled one
        b.hold()
    callbacks.missed(a, "0816500", None)
    with locked(b) as stalled:  # node B took the entry (or the write lock) and went silent
        stalled.execute(select(schema.callbacks).where(schema.callbacks.c.number == "0816500").with_for_update()).first()
        with pytest.raises(Exception) as refused:
            callbacks.missed(a, "0816500", None)
        assert is_store_fault(refused.value), refused.value
    entry = callbacks.missed(a, "0816500", None)  # B is gone: the next change goes through
    assert entry is not None and entry.calls == 2
