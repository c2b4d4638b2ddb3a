"""Carriers through the cluster's edge: the edge names each carrier by its source address
(from the served plans' carriers' `match`) in X-Ivr112-Carrier, and a node knows the carrier
by that header only when it comes from the edge. The call keeps what the carrier sent: the
caller's number, the called number and the position in its PIDF-LO. Callers here are
0821...: the other files count their calls by prefix (0811 to 0816).
"""

from __future__ import annotations

import socket
import uuid

import pytest

from ari_app.store import IncidentStore
from ivr.settings import PROJECT_DIR
from ivr.store import Incident
from tests.cluster.conftest import SECOND_CARRIER, SECOND_PLAN, Running
from tests.cluster.faults import incidents_of
from tests.support.poll import wait_for

PIDF_SCENARIO = PROJECT_DIR / "tests" / "sipp" / "cluster_caller_pidf.xml"
SAMPIT = (-2.5330, 112.9500)  # Sampit town centre, in Kecamatan Mentawa Baru Ketapang
CIRCLE = ('<gs:Circle srsName="urn:ogc:def:crs:EPSG::4326"><gml:pos>-2.533 112.95</gml:pos>'
          '<gs:radius uom="urn:ogc:def:uom:EPSG::9001">25</gs:radius></gs:Circle>')
FORBIDDEN = 403  # the edge: "Not a carrier of this service"
UNAUTHORIZED = 401  # a node's endpoint ACL: Asterisk hides why, and logs "Not match Endpoint ACL"


def _one_incident(r: Running, caller: str) -> Incident:
    found = wait_for(f"the incident of {caller}", lambda: [i for i in incidents_of(r, caller) if i.caller_number == caller] or None,
                     timeout=30)
    assert len(found) == 1, found
    return found[0]


def _incidents(r: Running, prefix: str, count: int) -> list[Incident]:
    def found() -> list[Incident] | None:
        calls = incidents_of(r, prefix)
        return calls if len(calls) == count else None

    return wait_for(f"the {count} incidents of {prefix}...", found, timeout=30)


def test_caller_number_called_number_and_pidf_lo_cross_the_edge_intact(cluster: Running) -> None:
    caller = "082150016001"
    # The caller also claims to come from the other regency's carrier: only the edge may say.
    sipp = cluster.sipp("pidf", calls=1, rate=1, seconds=3, caller=caller, scenario=PIDF_SCENARIO,
                        keys={"shape": CIRCLE, "claimed": SECOND_CARRIER})
    assert sipp.wait(timeout=60) == 0, "the PIDF-LO call through the edge failed"
    incident = _one_incident(cluster, caller)
    assert (incident.caller_number, incident.called_number, incident.plan_id, incident.carrier) == (
        caller, "112", "kotim", "carrier-lokal")
    store: IncidentStore = cluster.store()
    try:
        pidf = [loc for loc in store.locations(incident.id) if loc.source == "pidf"]
    finally:
        store.close()
    assert len(pidf) == 1, f"no PIDF-LO position on the call's incident ({incident.channel_id})"
    assert (pidf[0].latitude, pidf[0].longitude, pidf[0].radius_m) == (pytest.approx(SAMPIT[0]), pytest.approx(SAMPIT[1]), 25)
    assert pidf[0].kecamatan == "Mentawa Baru Ketapang"
    print(f"\nPIDF-LO call on {incident.channel_id}: {incident.caller_number} -> {incident.called_number}, "
          f"plan {incident.plan_id}, {pidf[0].kecamatan}")


def test_two_carriers_each_reach_their_own_regency_through_the_edge(cluster: Running) -> None:
    kotim = cluster.sipp("kotim", calls=4, rate=4, seconds=1, caller="0821500171")
    seruyan = cluster.sipp("seruyan", calls=4, rate=4, seconds=1, caller="0821500172", source=cluster.second_carrier)
    assert kotim.wait(timeout=60) == 0 and seruyan.wait(timeout=60) == 0, "calls through the edge failed"
    from_kotim = _incidents(cluster, "0821500171", 4)
    from_seruyan = _incidents(cluster, "0821500172", 4)
    assert {(i.plan_id, i.carrier) for i in from_kotim} == {("kotim", "carrier-lokal")}
    assert {(i.plan_id, i.carrier) for i in from_seruyan} == {(SECOND_PLAN, f"carrier-{SECOND_CARRIER}")}
    nodes = sorted({i.channel_id.split("-")[0] for i in from_kotim + from_seruyan})
    print(f"\nKotim's carrier 4 calls -> kotim, Seruyan's 4 -> seruyan, on {nodes}")


def _invite(source: str, target: str, port: int, carrier: str) -> int:
    """Send one INVITE naming `carrier` in X-Ivr112-Carrier from `source`; the final reply's code."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((source, 0))
        sock.settimeout(10)
        here = f"{source}:{sock.getsockname()[1]}"
        call = uuid.uuid4().hex
        request = (f"INVITE sip:112@{target}:{port} SIP/2.0\r\nVia: SIP/2.0/UDP {here};branch=z9hG4bK{call[:12]};rport\r\n"
                   f"From: <sip:082150018001@{source}>;tag={call[:8]}\r\nTo: <sip:112@{target}>\r\nCall-ID: {call}@{source}\r\n"
                   f"CSeq: 1 INVITE\r\nContact: <sip:082150018001@{here}>\r\nMax-Forwards: 70\r\nX-Ivr112-Carrier: {carrier}\r\n"
                   "Content-Length: 0\r\n\r\n")
        sock.sendto(request.encode(), (target, port))
        while True:
            code = int(sock.recv(65535).decode(errors="replace").split(" ", 2)[1])
            if code >= 200:
                return code


def test_a_carrier_header_not_from_the_edge_is_refused(cluster: Running) -> None:
    c = cluster.cluster
    # Straight to a node, from an address on the cluster's network that is not the edge's.
    assert _invite(c.host_address, c.node("node1").address, 5060, "lokal") == UNAUTHORIZED
    # To the edge from an address no carrier has: refused there, whatever it claims.
    assert _invite(c.host_address, c.edge.address, c.edge_sip_port, "lokal") == FORBIDDEN
    assert incidents_of(cluster, "082150018001") == []
