"""Prometheus metrics: what a supervisor's dashboard, an alerting rule and the fault suite count.

Counters go up where things happen (a call arrives, a person answers, something fails);
gauges are read from the live state at scrape time (calls in the IVR, waiting, links up),
so they can never drift from what the wall shows. One registry per Service (no globals):
two apps in one process (tests) do not share figures. No caller data is ever a label.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# Failure kinds, each one a thing an operator of the centre would act on.
FAILURES = {
    "controller_error": "a call controller raised; the call was sent to the operators' queue",
    "agency_trunk": "an agency trunk did not answer (refused, timed out, unreachable)",
    "agency_unreachable": "no trunk of an agency answered; the call followed on_failure",
    "store": "a write to the incident store failed",
    "ari_disconnect": "the ARI WebSocket was lost (the dialplan fallback serves new calls)",
    "ami_disconnect": "the AMI connection was lost (queue state resynced on reconnect)",
    "aml_refused": "an AML message was refused (unknown sender, bad token, too many)",
    "location_unreadable": "a location (PIDF-LO, header, AML) could not be read and was skipped",
    "text_flood": "a number sent more texts per minute than text_rate_per_number (the SMS gateway was asked to retry)",
    "node_feed": "the live feed to the other nodes on the store broke (their consoles miss this node's updates until it is back)",
}


@dataclass(frozen=True)
class LiveCounts:
    in_ivr: int = 0
    at_agency: int = 0
    waiting: int = 0
    operators: dict[str, int] = field(default_factory=dict)  # state -> how many
    ari_connected: bool = False
    ami_connected: bool = False
    store_ok: bool = True
    store_backlog: int = 0  # writes handed to the store and not in it yet (kept while it fails)


class _LiveCollector(Collector):
    def __init__(self, read: Callable[[], LiveCounts]) -> None:
        self.read = read

    def describe(self) -> list[GaugeMetricFamily]:
        return []  # read nothing while the Service is still being built

    def collect(self) -> Iterator[GaugeMetricFamily]:
        live = self.read()
        yield GaugeMetricFamily("ivr112_calls_in_ivr", "Calls in the IVR (menus, locating) now", value=live.in_ivr)
        yield GaugeMetricFamily("ivr112_calls_at_agency", "Calls ringing or bridged to an agency trunk now", value=live.at_agency)
        yield GaugeMetricFamily("ivr112_calls_waiting", "Callers waiting in the operators' queues now", value=live.waiting)
        ops = GaugeMetricFamily("ivr112_operators", "Operators by state", labels=["state"])
        for state, n in sorted(live.operators.items()):
            ops.add_metric([state], n)
        yield ops
        yield GaugeMetricFamily("ivr112_ari_connected", "1 when the ARI WebSocket is up", value=int(live.ari_connected))
        yield GaugeMetricFamily("ivr112_ami_connected", "1 when the AMI connection is logged in", value=int(live.ami_connected))
        yield GaugeMetricFamily("ivr112_store_ok", "1 when the last incident store write succeeded", value=int(live.store_ok))
        yield GaugeMetricFamily("ivr112_store_backlog", "Writes handed to the store and not in it yet (kept in memory and the spool while it fails)",
                                value=live.store_backlog)


class Metrics:
    def __init__(self, live: Callable[[], LiveCounts]) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.arrived = Counter("ivr112_calls_arrived", "Calls the app took (an incident was opened)", registry=r)
        self.ended = Counter("ivr112_calls_ended", "Calls of the app that ended", registry=r)
        self.answered = Counter("ivr112_calls_answered_by_person", "Calls a person answered (operator or agency)",
                                ["by"], registry=r)
        self.within_15s = Counter("ivr112_calls_answered_within_15s", "Calls a person answered within 15 s of arrival",
                                  registry=r)
        self.within_20s = Counter("ivr112_calls_answered_within_20s", "Calls a person answered within 20 s of arrival",
                                  registry=r)
        self.events = Counter("ivr112_incident_events", "Incident events by kind", ["kind"], registry=r)
        self._event_kinds: dict[str, Any] = {}
        self.failures = Counter("ivr112_failures", "Failures by kind (see ari_app/metrics.py FAILURES)", ["kind"], registry=r)
        for kind in FAILURES:
            self.failures.labels(kind=kind)  # every kind shows, at 0, from the start
        for by in ("operator", "agency"):
            self.answered.labels(by=by)
        r.register(_LiveCollector(live))

    def incident_event(self, kind: str) -> None:
        """One step of a call, by kind. The labelled child is kept: prometheus_client's
        `labels()` (argument checks, a lock, a dict of tuples) was 2 % of the event loop's
        CPU at every step of every call."""
        child = self._event_kinds.get(kind)
        if child is None:
            child = self._event_kinds[kind] = self.events.labels(kind=kind)
        child.inc()

    def failure(self, kind: str) -> None:
        if kind not in FAILURES:
            raise ValueError(f"unknown failure kind {kind!r}; add it to FAILURES with what it means")
        self.failures.labels(kind=kind).inc()

    def person_answered(self, by: str, arrived_at: str | None) -> None:
        """A person took the call; `arrived_at` (ISO time) gives the answer time."""
        self.answered.labels(by=by).inc()
        if not arrived_at:
            return
        arrived = datetime.fromisoformat(arrived_at)
        if arrived.tzinfo is None:
            arrived = arrived.replace(tzinfo=UTC)
        waited = (datetime.now(UTC) - arrived).total_seconds()
        if waited <= 15:
            self.within_15s.inc()
        if waited <= 20:
            self.within_20s.inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
