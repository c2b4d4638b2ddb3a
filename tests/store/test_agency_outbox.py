"""The agencies' outbox on both engines: versions in order per incident and agency, no
version for a change the agency cannot see, one line per agency, one sender per try."""

from __future__ import annotations

from ari_app.store import IncidentStore
from ivr.store import now


def _queue(store: IncidentStore, agency: str, incident_id: int, digest: str) -> int | None:
    return store.enqueue_push(agency=agency, plan_id="kotim", incident_id=incident_id, eido_id=f"urn:{incident_id}",
                              digest=digest, render=lambda v: f'{{"version": {v}}}')


def test_versions_count_per_incident_and_agency_and_an_unchanged_eido_adds_none(store: IncidentStore) -> None:
    a = store.open_incident(channel_id="c1", plan_id="kotim", caller_number="0812", called_number="112")
    b = store.open_incident(channel_id="c2", plan_id="kotim", caller_number="0813", called_number="112")
    assert [_queue(store, "police", a.id, "d1"), _queue(store, "police", a.id, "d1"), _queue(store, "police", a.id, "d2")] == [1, None, 2]
    assert [_queue(store, "police", b.id, "d1"), _queue(store, "fire", a.id, "d1")] == [1, 1]
    rows = store.pushes("police")
    assert [(r.incident_id, r.version, r.body) for r in rows] == [(a.id, 1, '{"version": 1}'), (a.id, 2, '{"version": 2}'),
                                                                  (b.id, 1, '{"version": 1}')]


def test_each_agency_line_starts_at_its_oldest_undelivered_update(store: IncidentStore) -> None:
    inc = store.open_incident(channel_id="c1", plan_id="kotim", caller_number="0812", called_number="112")
    for digest in ("d1", "d2", "d3"):
        _queue(store, "police", inc.id, digest)
    _queue(store, "fire", inc.id, "d1")
    heads = store.push_heads()
    assert [(h.agency, h.version) for h in heads] == [("police", 1), ("fire", 1)]
    first = heads[0]
    # One sender takes a try; another (a second node) holding the same head does not.
    assert store.take_push(first, until="2999-01-01T00:00:00+00:00")
    assert not store.take_push(first, until="2999-01-01T00:00:00+00:00")
    store.push_failed(first.id, error="refused", next_at=now())
    assert [(h.version, h.attempts, h.last_error) for h in store.push_heads("police")] == [(1, 1, "refused")]
    store.push_sent(first.id)
    assert [h.version for h in store.push_heads("police")] == [2]
    store.push_dropped(store.push_heads("police")[0].id, why="no webhook")
    assert [h.version for h in store.push_heads("police")] == [3]


def test_the_newest_incidents_come_with_only_the_events_asked_for(store: IncidentStore) -> None:
    a = store.open_incident(channel_id="c1", plan_id="kotim", caller_number="0812", called_number="112")
    b = store.open_incident(channel_id="c2", plan_id="kotim", caller_number="0813", called_number="112")
    store.add_event(a.id, "prompt", {"name": "greeting"})
    store.add_event(a.id, "trunk_dial", {"agency": "police"})
    store.add_event(a.id, "trunk_answered", {"agency": "police"})
    got = store.recent_with_events(10, ("trunk_dial", "trunk_answered"))
    assert [(inc.id, [e.kind for e in events]) for inc, events in got] == [(b.id, []), (a.id, ["trunk_dial", "trunk_answered"])]
    assert store.recent_with_events(1, ("trunk_dial",))[0][0].id == b.id
