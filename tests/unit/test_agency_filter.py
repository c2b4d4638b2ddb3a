"""What an agency's live page is told: changes of its own incidents, from the moment one is
sent to it; never another agency's, nor the operators' board."""

from __future__ import annotations

from ari_app.web.agency_page import AgencyFilter


def test_an_agencys_stream_carries_only_the_incidents_sent_to_it() -> None:
    keep = AgencyFilter("police", {7})
    assert keep("incident", {"id": 7, "kind": "classified", "detail": {}})
    assert not keep("incident", {"id": 8, "kind": "choice", "detail": {"digits": "2"}})
    assert not keep("incident", {"id": 8, "kind": "trunk_dial", "detail": {"agency": "fire"}})
    assert not keep("incident", {"id": 8, "kind": "classified", "detail": {}})
    assert keep("incident", {"id": 9, "kind": "transfer", "detail": {"agency": "police", "mode": "blind"}})
    assert keep("incident", {"id": 9, "kind": "ended", "detail": {}})
    assert not keep("operator", {"name": "operator1", "status": "ready"})
    assert not keep("wall", {"in_ivr": 1})
