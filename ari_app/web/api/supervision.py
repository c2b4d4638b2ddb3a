"""What supervisors watch: answer-time figures for a period (JSON, CSV) and the live wall,
each for the plans (regencies) the supervisor sees (ari_app/web/scope.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web

from ari_app.calls.wall import ivr_calls
from ari_app.cluster import node_states
from ari_app.service import Service
from ari_app.web.api.common import error, operator_seen, scoped, service_of
from ari_app.web.console_auth import SUPERVISOR
from ari_app.web.scope import Scope
from ivr.figures import figures, to_csv
from ivr.plan import Plan

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


def _plans_asked(request: web.Request, scope: Scope) -> list[str]:
    """The plans the figures are for: ?plan=ID (one the supervisor sees), else every plan
    the supervisor sees."""
    served = service_of(request).plans.ids
    asked = request.query.get("plan", "")
    if asked and asked not in served:
        raise error(web.HTTPBadRequest, f"no plan {asked!r}; plans served: {', '.join(served)}")
    if asked and not scope.sees(asked):
        raise error(web.HTTPForbidden, f"you watch plan {scope.plan} only, not {asked}")
    return [asked] if asked else [p for p in served if scope.sees(p)]


async def _figures(request: web.Request) -> tuple[str, str, dict[str, Any]]:
    _, scope = scoped(request, role=SUPERVISOR)
    first, last, start, end = _period(request)
    plans = _plans_asked(request, scope)
    # The whole platform counts everything, texts of no known plan too; one plan, its own.
    whole = scope.provincial and not request.query.get("plan")
    data = await service_of(request).store.run(
        lambda s: figures([i for i in s.incidents_between(start, end) if whole or i.plan_id in plans],
                          s.agency_answers(start, end)).as_dict()
    )
    return first, last, {"plans": ",".join(plans), **data}


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


async def _trunks(service: Service, plan: Plan) -> list[dict[str, Any]]:
    """Each trunk of the plan's agencies with its last result."""
    results = await service.store.run(lambda s: s.trunk_results(plan.id))
    return [
        {"plan": plan.id, "agency": agency.name, "label": agency.label, "trunk": i, "placeholder": trunk.placeholder,
         **results.get((agency.name, str(i)), {"result": "unknown", "at": "", "cause": ""})}
        for agency in plan.agencies.values() for i, trunk in enumerate(agency.trunks, start=1)
    ]


@routes.get("/api/wall")
async def wall(request: web.Request) -> web.Response:
    """The supervisor's live wall: callers waiting (since when), calls in the IVR (since
    when, where in the menu, what it learned so far), calls with an agency, the agencies'
    trunks and the operators: of the plans the supervisor sees."""
    _, scope = scoped(request, role=SUPERVISOR)
    service = service_of(request)
    calls = [c for c in list(service.controllers.values()) if c.incident is not None and scope.sees(c.incident.plan_id)]
    in_ivr = await ivr_calls(calls, service.store)
    at_agency: list[dict[str, Any]] = [
        {"channel": c.channel_id, "incident_id": c.incident.id, "caller": c.caller, "agency": c.dial.agency.name,
         "answered": c.dial.answered, "plan": c.incident.plan_id}
        for c in calls if not c.ended and c.incident is not None and c.dial is not None
    ]
    plans = [p for p in service.plans.current.plans if scope.sees(p.id)]
    queues = {p.asterisk_queue(q): p.id for p in service.plans.current.plans for q in p.queues}
    trunks = [row for plan in plans for row in await _trunks(service, plan)]
    return web.json_response({
        "plans": [p.id for p in plans],
        "waiting": [w for w in service.desk.waiting.values() if scope.sees(queues.get(w.get("queue", ""), ""))],
        "in_ivr": in_ivr, "at_agency": at_agency, "trunks": trunks,
        "operators": [o for o in service.desk.view() if operator_seen(request, scope, str(o["name"]))],
        "ami_connected": service.desk.connected, "ari_connected": service.ari_connected,
        "cluster": node_states.read(service.settings.data_path),
    })
