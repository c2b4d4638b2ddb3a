"""What supervisors watch: answer-time figures for a period (JSON, CSV) and the live wall."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web

from ari_app.calls.wall import ivr_calls
from ari_app.web.api.common import error, service_of, who
from ari_app.web.console_auth import SUPERVISOR
from ivr.figures import figures, to_csv

routes = web.RouteTableDef()


WIB = ZoneInfo("Asia/Jakarta")  # Kotim keeps Western Indonesian Time


def _period(request: web.Request) -> tuple[str, str, str, str]:
    """?from=YYYY-MM-DD&to=YYYY-MM-DD (local days, inclusive; default today) as UTC bounds."""
    today = datetime.now(WIB).date().isoformat()
    first, last = request.query.get("from", today), request.query.get("to", "") or request.query.get("from", today)
    try:
        start = datetime.fromisoformat(first).replace(tzinfo=WIB)
        end = datetime.fromisoformat(last).replace(tzinfo=WIB) + timedelta(days=1)
        utc = [t.astimezone(UTC).isoformat(timespec="milliseconds") for t in (start, end)]
    except (ValueError, OverflowError):  # OverflowError: a day next to year 1 or 9999 has no UTC bound
        raise error(web.HTTPBadRequest, "from and to are dates: ?from=2026-11-01&to=2026-11-30") from None
    if end <= start:
        raise error(web.HTTPBadRequest, "to must not be before from")
    return first, last, utc[0], utc[1]


async def _figures(request: web.Request) -> tuple[str, str, dict[str, Any]]:
    who(request, role=SUPERVISOR)
    first, last, start, end = _period(request)
    data = await service_of(request).store.run(
        lambda s: figures(s.incidents_between(start, end), s.agency_answers(start, end)).as_dict()
    )
    return first, last, data


@routes.get("/api/figures")
async def figures_json(request: web.Request) -> web.Response:
    """Answer-time figures for a period (supervisors): NENA 15 s / 20 s shares, abandoned,
    categories, prank and ghost shares, per operator."""
    first, last, data = await _figures(request)
    return web.json_response({"from": first, "to": last, **data})


@routes.get("/api/figures.csv")
async def figures_csv(request: web.Request) -> web.Response:
    first, last, data = await _figures(request)
    return web.Response(text=to_csv((first, last), data), content_type="text/csv",
                        headers={"Content-Disposition": f'attachment; filename="ivr112-{first}-{last}.csv"'})


@routes.get("/api/wall")
async def wall(request: web.Request) -> web.Response:
    """The supervisor's live wall: callers waiting (since when), calls in the IVR (since
    when, where in the menu, what it learned so far), calls with an agency, and the operators."""
    who(request, role=SUPERVISOR)
    service = service_of(request)
    in_ivr = await ivr_calls(list(service.controllers.values()), service.store)
    at_agency: list[dict[str, Any]] = [
        {"channel": channel_id, "incident_id": c.incident.id, "caller": c.caller, "agency": c.dial.agency.name,
         "answered": c.dial.answered}
        for channel_id, c in list(service.controllers.items()) if not c.ended and c.incident is not None and c.dial is not None
    ]
    plan = service.plans.plan_for("")
    results = await service.store.run(lambda s: s.trunk_results(plan.id))
    trunks = [
        {"agency": agency.name, "label": agency.label, "trunk": i, "placeholder": trunk.placeholder,
         **results.get((agency.name, str(i)), {"result": "unknown", "at": "", "cause": ""})}
        for agency in plan.agencies.values() for i, trunk in enumerate(agency.trunks, start=1)
    ]
    return web.json_response({
        "waiting": list(service.desk.waiting.values()), "in_ivr": in_ivr, "at_agency": at_agency, "trunks": trunks,
        "operators": service.desk.view(), "ami_connected": service.desk.connected, "ari_connected": service.ari_connected,
    })
