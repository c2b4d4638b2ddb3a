"""The plan's agencies: each one's trunks in dialling order, its on_failure rule and what
it is sent with a call (location by value or reference, recordings)."""

from __future__ import annotations

import re

from ivr.agency_data import LOCATION_MODES
from ivr.agency_push import webhook_problem
from ivr.plan import (
    DIAL_RE,
    RESPONSE_TIMEOUT_S,
    Agency,
    Target,
    Trunk,
)
from ivr.plan_reader import PlanReader
from ivr.yamlsrc import Map, Seq


def agencies(r: PlanReader, doc: Map) -> dict[str, Agency]:
    agencies: dict[str, Agency] = {}
    for aname, aval, where in r.named(doc, "agencies", "agency", "label, trunks and on_failure", required=False):
        r.keys(aval, ("label", "trunks", "on_failure", "ring_timeout", "response_timeout", "location", "share_recordings",
                "webhook"),
               f"agency '{aname}'")
        label = r.text(aval, "label", default=aname)
        default_ring = int(r.number(aval, "ring_timeout", 20, low=5, high=120, integer=True))
        default_response = r.number(aval, "response_timeout", RESPONSE_TIMEOUT_S, low=0.5, high=30)
        trunks: list[Trunk] = []
        tval = aval.get("trunks")
        if not isinstance(tval, Seq) or not tval:
            r.problem(aval.at("trunks") if "trunks" in aval else aval.mark, f"agency '{aname}' needs 'trunks': a list of {{host, port, number}}, tried in order")
        else:
            for item, mk in zip(tval, tval.item_marks, strict=True):
                if not isinstance(item, Map):
                    r.problem(mk, f"agency '{aname}': a trunk must be a mapping with host, port and number")
                    continue
                r.keys(item, ("host", "port", "number", "ring_timeout", "response_timeout", "username", "password", "transport", "placeholder"),
                       f"agency '{aname}' trunk")
                host = r.text(item, "host")
                if host and not re.fullmatch(r"[A-Za-z0-9.:\-\[\]]+", host):
                    r.problem(item.at("host"), f"agency '{aname}': trunk host {host!r} must be an address or host name")
                number = r.text(item, "number")
                if number and not DIAL_RE.match(number):
                    r.problem(item.at("number"), f"agency '{aname}': number to dial {number!r} must be digits (with + * #)")
                transport = r.text(item, "transport", default="udp")
                if transport not in ("udp", "tcp"):
                    r.problem(item.at("transport"), f"agency '{aname}': transport must be udp or tcp, found {transport!r}")
                placeholder = item.get("placeholder", False)
                trunks.append(
                    Trunk(
                        host=host,
                        port=int(r.number(item, "port", 5060, low=1, high=65535, integer=True)),
                        number=number,
                        ring_timeout=int(r.number(item, "ring_timeout", default_ring, low=5, high=120, integer=True)),
                        response_timeout=r.number(item, "response_timeout", default_response, low=0.5, high=30),
                        username=r.text(item, "username", default=""),
                        password=r.text(item, "password", default=""),
                        transport=transport,
                        placeholder=placeholder is True,
                        mark=mk,
                    )
                )
        on_failure = None
        if "on_failure" in aval:
            on_failure = r.target(aval["on_failure"], aval.at("on_failure"), f"agency '{aname}' on_failure")
        else:
            r.problem(
                where,
                f"agency '{aname}' has no on_failure rule; add 'on_failure: {{queue: operators}}' so a caller whose agency does not answer reaches a person",
            )
        location, recordings, webhook = _agency_data(r, aval, aname)
        agencies[aname] = Agency(aname, label, tuple(trunks), on_failure or Target("queue", ""), where,
                                 location=location, share_recordings=recordings, webhook=webhook)
    return agencies


def _agency_data(r: PlanReader, aval: Map, aname: str) -> tuple[str, bool, str]:
    """What of the incident leaves the centre with a call to this agency (docs/agencies.md)."""
    location = aval.get("location", "value")
    if location not in LOCATION_MODES:
        r.problem(aval.at("location"), f"agency '{aname}': location must be one of {', '.join(LOCATION_MODES)}, found {location!r}")
        location = "value"
    recordings = aval.get("share_recordings", False)
    if not isinstance(recordings, bool):
        r.problem(aval.at("share_recordings"), f"agency '{aname}': share_recordings must be true or false (recordings are personal data)")
        recordings = False
    webhook = ""
    if "webhook" in aval:
        value = aval.get("webhook")
        problem = webhook_problem(value) if isinstance(value, str) else "webhook must be a URL, like https://cad.polres.example/eido"
        if problem:
            r.problem(aval.at("webhook"), f"agency '{aname}': {problem}")
        else:
            webhook = str(value)
    return str(location), recordings, webhook
