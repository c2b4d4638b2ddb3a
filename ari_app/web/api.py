"""The app's HTTP side: health for supervisors and scripts, and the incidents API.

`/health` tells whether the app can take calls (no caller data, no login). Everything
under `/api/` needs `Authorization: Bearer <console_secret>` from the generated secrets.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from ari_app.asterisk import webrtc
from ari_app.calls.wall import ivr_calls
from ari_app.metrics import CONTENT_TYPE
from ari_app.operators.desk import SOFTPHONE, DeskError
from ari_app.service import Service
from ari_app.store import IncidentStore
from ari_app.web.console_auth import SUPERVISOR, Principal
from ari_app.web.keys import APP_KEY, SESSIONS_KEY
from ivr import callbacks, classify
from ivr.figures import figures, to_csv
from ivr.store import now

routes = web.RouteTableDef()
log = logging.getLogger(__name__)


def _service(request: web.Request) -> Service:
    return request.app[APP_KEY]


def _who(request: web.Request, *, role: str | None = None, changes: bool = False) -> Principal:
    """The logged-in person (or the system's bearer key); 401/403 otherwise."""
    return request.app[SESSIONS_KEY].who(request, role=role, changes=changes)


def _authorised(request: web.Request) -> None:
    """Reading: any logged-in person or the bearer key."""
    _who(request)


@routes.get("/health")
async def health(request: web.Request) -> web.Response:
    service = _service(request)
    ok = service.ari_connected
    body = {
        "status": "ok" if ok and service.store.ok else "degraded",
        "ari_connected": ok,
        # "ok", or "failing: <why>; <n> writes waiting" (calls go on; writes are kept and retried)
        "store": service.store.health,
        "ami_connected": service.desk.connected,
        "ami_logins": service.desk.resyncs,
        "calls_in_app": len(service.dispatcher.active_channels()),
        "plans": service.plans.ids,
        "fallback": "calls go to the operators' queue through the Asterisk dialplan" if not ok else "",
    }
    return web.json_response(body, status=200 if ok else 503)


@routes.get("/metrics")
async def metrics(request: web.Request) -> web.Response:
    """Prometheus text format; a supervisor's session or the bearer key (no caller data in it)."""
    _who(request, role=SUPERVISOR)
    return web.Response(body=_service(request).metrics.render(), headers={"Content-Type": CONTENT_TYPE})


@routes.get("/api/incidents")
async def incidents(request: web.Request) -> web.Response:
    _authorised(request)
    try:
        limit = min(500, max(1, int(request.query.get("limit", "50"))))
    except ValueError:
        raise web.HTTPBadRequest(text='{"error": "limit must be a whole number"}', content_type="application/json") from None
    number = request.query.get("number", "")
    if number:
        rows = await _service(request).store.run(lambda s: [i for i in s.recent(500) if i.caller_number == number][:limit])
    else:
        rows = await _service(request).store.recent(limit)
    return web.json_response([dataclasses.asdict(r) for r in rows])


@routes.get("/api/incidents/{id}")
async def incident(request: web.Request) -> web.Response:
    _authorised(request)
    try:
        incident_id = _row_id(request.match_info["id"])
    except ValueError:
        raise web.HTTPBadRequest(text='{"error": "incident id must be a number"}', content_type="application/json") from None
    store = _service(request).store
    row = await store.get(incident_id)
    if row is None:
        raise web.HTTPNotFound(text='{"error": "no such incident"}', content_type="application/json")
    events = await store.events(incident_id)
    locations = await store.run(lambda s: s.locations(incident_id))
    recordings = await store.run(lambda s: s.recordings(incident_id))
    return web.json_response(
        {
            **dataclasses.asdict(row),
            "events": [dataclasses.asdict(e) for e in events],
            "locations": [dataclasses.asdict(loc) for loc in locations],
            "recordings": [
                {**dataclasses.asdict(r), "url": f"/api/incidents/{incident_id}/recordings/{r.id}.wav"} for r in recordings
            ],
        }
    )


@routes.get("/api/incidents/{id}/recordings/{rec}.wav")
async def recording(request: web.Request) -> web.StreamResponse:
    """A recording of the call, for the operator to play back."""
    _authorised(request)
    service = _service(request)
    try:
        incident_id, rec_id = _row_id(request.match_info["id"]), _row_id(request.match_info["rec"])
    except ValueError:
        raise web.HTTPBadRequest(text='{"error": "ids are numbers"}', content_type="application/json") from None
    recordings = await service.store.run(lambda s: s.recordings(incident_id))
    found = next((r for r in recordings if r.id == rec_id), None)
    if found is None:
        raise web.HTTPNotFound(text='{"error": "no such recording"}', content_type="application/json")
    path = service.layout.host(found.path)
    if not path.exists():
        raise web.HTTPGone(text='{"error": "the recording file is gone (retention, or not written yet)"}', content_type="application/json")
    return web.FileResponse(path, headers={"Content-Type": "audio/wav"})


@routes.post("/api/reload")
async def reload(request: web.Request) -> web.Response:
    _who(request, role=SUPERVISOR, changes=True)
    result = await _service(request).reload()
    body = {"ok": result.ok, "problems": list(result.problems), "plans": list(result.plans)}
    return web.json_response(body, status=200 if result.ok else 422)


# Operators, callbacks, classification, transfers ------------------------------------------


def _error(status: type[web.HTTPException], message: str) -> web.HTTPException:
    return status(text=json.dumps({"error": message}, ensure_ascii=False), content_type="application/json")


async def _form(request: web.Request) -> dict[str, str]:
    try:
        data = await request.post()
    except (ValueError, HttpProcessingError):  # a multipart body without its boundary, a broken part
        raise _error(web.HTTPBadRequest, "the form could not be read: send application/x-www-form-urlencoded") from None
    return {k: v for k, v in data.items() if isinstance(v, str)}


def _incident_id(request: web.Request) -> int:
    try:
        return _row_id(request.match_info["id"])
    except ValueError:
        raise _error(web.HTTPBadRequest, "incident id must be a number") from None


def _row_id(text: str) -> int:
    """A row id from the URL; ValueError for what is no number or too big for SQLite."""
    value = int(text)
    if not 0 <= value < 2**63:
        raise ValueError(text)
    return value


@routes.get("/api/operators")
async def operators(request: web.Request) -> web.Response:
    _authorised(request)
    service = _service(request)
    return web.json_response({"ami_connected": service.desk.connected, "operators": service.desk.view()})


@routes.post("/api/operators/{name}/{action:login|logout|pause|resume}")
async def operator_action(request: web.Request) -> web.Response:
    """Log an operator in to every queue, out, pause them (form: reason) or resume them.
    An operator acts for themselves; a supervisor for anyone."""
    me = _who(request, changes=True)
    desk = _service(request).desk
    name, action = request.match_info["name"], request.match_info["action"]
    if not me.supervisor and me.name != name:
        raise _error(web.HTTPForbidden, f"{me.name} may change only their own state, not {name}'s")
    form = await _form(request)
    try:
        if action == "login":
            await desk.login(name, form.get("phone", "") or SOFTPHONE)
        elif action == "logout":
            await desk.logout(name)
        elif action == "pause":
            await desk.pause(name, form.get("reason", "") or "pause")
        else:
            await desk.resume(name)
    except DeskError as exc:
        raise _error(web.HTTPConflict, str(exc)) from None
    return web.json_response({"ok": True, "operator": name, "action": action})


@routes.get("/api/operators/{name}/log")
async def operator_log(request: web.Request) -> web.Response:
    _authorised(request)
    name = request.match_info["name"]
    rows = await _service(request).store.run(lambda s: s.operator_log(name))
    return web.json_response(rows)


@routes.get("/api/callbacks")
async def callback_list(request: web.Request) -> web.Response:
    """The callback list: open entries (and closed ones with ?all=1), newest call first."""
    _authorised(request)
    everything = request.query.get("all") == "1"
    rows = await _service(request).store.run(lambda s: callbacks.listing(s, include_closed=everything))
    return web.json_response([dataclasses.asdict(r) for r in rows])


@routes.post("/api/callbacks/{number}/call")
async def callback_call(request: web.Request) -> web.Response:
    """Call a number back (form: operator): the operator's softphone rings first."""
    me = _who(request, changes=True)
    number = request.match_info["number"]
    operator = (await _form(request)).get("operator", "") if me.supervisor else me.name
    try:
        call = await _service(request).place_callback(number, operator)
    except callbacks.CallbackRefused as exc:
        raise _error(web.HTTPConflict, str(exc)) from None
    except DeskError as exc:
        raise _error(web.HTTPConflict, str(exc)) from None
    return web.json_response({"ok": True, "number": number, "operator": operator, "channel": call.operator_channel})


@routes.post("/api/incidents/{id}/classify")
async def classify_incident(request: web.Request) -> web.Response:
    """What the call was (form: category = emergency|information|prank|ghost, operator, notes)."""
    me = _who(request, changes=True)
    incident_id = _incident_id(request)
    form = await _form(request)
    category, notes = form.get("category", ""), form.get("notes", "")
    by = form.get("operator", "") if me.via == "bearer" else me.name
    if not by:
        raise _error(web.HTTPBadRequest, "say who classifies: operator=NAME")
    try:
        await _service(request).store.run(lambda s: classify.classify(s, incident_id, category, by=by, notes=notes))
    except classify.ClassifyError as exc:
        raise _error(web.HTTPBadRequest, str(exc)) from None
    _service(request).incident_changed(incident_id, "classified", {"category": category, "by": by})
    return web.json_response({"ok": True, "incident_id": incident_id, "category": category})


@routes.post("/api/incidents/{id}/close")
async def close_incident(request: web.Request) -> web.Response:
    """The operator is done with the incident (form: notes)."""
    me = _who(request, changes=True)
    incident_id = _incident_id(request)
    notes = (await _form(request)).get("notes", "")[:2000]

    def close(s: IncidentStore) -> bool:
        if s.get(incident_id) is None:
            return False
        s.update(incident_id, closed_at=now(), **({"notes": notes} if notes else {}))
        s.add_event(incident_id, "closed", {"by": me.name})
        return True

    if not await _service(request).store.run(close):
        raise _error(web.HTTPNotFound, "no such incident")
    _service(request).incident_changed(incident_id, "closed", {"by": me.name})
    return web.json_response({"ok": True, "incident_id": incident_id})


@routes.post("/api/incidents/{id}/transfer")
async def transfer(request: web.Request) -> web.Response:
    """Send the caller to an agency (form: agency, mode = blind|conference)."""
    _who(request, changes=True)
    incident_id = _incident_id(request)
    form = await _form(request)
    try:
        exten = await _service(request).transfer(incident_id, form.get("agency", ""), mode=form.get("mode", "blind"))
    except DeskError as exc:
        raise _error(web.HTTPConflict, str(exc)) from None
    return web.json_response({"ok": True, "incident_id": incident_id, "to": exten})


@routes.post("/api/numbers/{number}/clear")
async def clear_number(request: web.Request) -> web.Response:
    """A supervisor lifts a number's prank flag (form: by)."""
    me = _who(request, role=SUPERVISOR, changes=True)
    number = request.match_info["number"]
    by = ((await _form(request)).get("by", "") or "supervisor") if me.via == "bearer" else me.name
    await _service(request).store.run(lambda s: classify.clear(s, number, by=by))
    return web.json_response({"ok": True, "number": number})


# Console sessions and the live stream ------------------------------------------------------


@routes.get("/api/stream")
async def stream(request: web.Request) -> web.StreamResponse:
    """Server-sent events: operators' states and incident steps, as they happen."""
    _who(request)
    return await _service(request).hub.stream(request)


# The console page and what it draws ----------------------------------------------------------

STATIC = Path(__file__).parent / "static"


def _csp(request: web.Request) -> str:
    """Everything from the app itself; the browser phone's WebSocket (Asterisk) besides."""
    phone = webrtc.ws_url(_service(request).settings) if webrtc.enabled(_service(request).settings) else ""
    return f"default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self' {phone}; media-src 'self'"


@routes.get("/")
async def console_page(request: web.Request) -> web.FileResponse:
    """The operators' and supervisors' console: everything served from here, nothing from a CDN."""
    return web.FileResponse(STATIC / "index.html", headers={"Content-Security-Policy": _csp(request), "Cache-Control": "no-cache"})


@routes.get("/static/{name:[a-z0-9_.-]+}")
async def console_static(request: web.Request) -> web.FileResponse:
    path = STATIC / request.match_info["name"]
    if not path.is_file():
        raise _error(web.HTTPNotFound, "no such file")
    return web.FileResponse(path, headers={"Content-Security-Policy": _csp(request), "Cache-Control": "no-cache"})


@routes.get("/api/plan")
async def plan_summary(request: web.Request) -> web.Response:
    """The default plan as the console needs it: agencies (for transfer buttons) and numbers."""
    _who(request)
    plan = _service(request).plans.plan_for("")
    return web.json_response({
        "id": plan.id, "name": plan.name, "numbers": list(plan.numbers),
        "agencies": [{"name": a.name, "label": a.label} for a in plan.agencies.values()],
    })


@routes.get("/api/boundaries")
async def boundaries(request: web.Request) -> web.Response:
    """The default plan's kecamatan GeoJSON: the console's map, drawn locally (no tiles)."""
    _who(request)
    service = _service(request)
    plan = service.plans.plan_for("")
    path = plan.location.boundaries_path(plan.source)
    if path is None or not path.exists():
        raise _error(web.HTTPNotFound, "the plan names no kecamatan boundaries")
    return web.Response(body=path.read_bytes(), content_type="application/json")


# Supervisor's figures -------------------------------------------------------------------------

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
        raise _error(web.HTTPBadRequest, "from and to are dates: ?from=2026-11-01&to=2026-11-30") from None
    if end <= start:
        raise _error(web.HTTPBadRequest, "to must not be before from")
    return first, last, utc[0], utc[1]


async def _figures(request: web.Request) -> tuple[str, str, dict[str, Any]]:
    _who(request, role=SUPERVISOR)
    first, last, start, end = _period(request)
    data = await _service(request).store.run(
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


# The major-incident message -------------------------------------------------------------------


@routes.get("/api/announcement")
async def announcement_get(request: web.Request) -> web.Response:
    _who(request)
    current = _service(request).announcements.current
    return web.json_response({"on": current is not None, **(dataclasses.asdict(current) if current else {})})


@routes.post("/api/announcement")
async def announcement_set(request: web.Request) -> web.Response:
    """Supervisors: form text_id (and text_en): every new caller hears it after the greeting."""
    me = _who(request, role=SUPERVISOR, changes=True)
    form = await _form(request)
    service = _service(request)
    texts = {"id": form.get("text_id", ""), "en": form.get("text_en", "")}
    loop = asyncio.get_running_loop()
    try:
        current = await loop.run_in_executor(None, lambda: service.announcements.set(texts, by=me.name))
    except ValueError as exc:
        raise _error(web.HTTPBadRequest, str(exc)) from None
    service.hub.publish("announcement", {"on": True, "texts": current.texts, "set_by": me.name})
    return web.json_response({"ok": True, "on": True, "texts": current.texts})


@routes.delete("/api/announcement")
async def announcement_clear(request: web.Request) -> web.Response:
    me = _who(request, role=SUPERVISOR, changes=True)
    service = _service(request)
    service.announcements.clear(by=me.name)
    service.hub.publish("announcement", {"on": False, "set_by": me.name})
    return web.json_response({"ok": True, "on": False})


@routes.get("/api/wall")
async def wall(request: web.Request) -> web.Response:
    """The supervisor's live wall: callers waiting (since when), calls in the IVR (since
    when, where in the menu, what it learned so far), calls with an agency, and the operators."""
    _who(request, role=SUPERVISOR)
    service = _service(request)
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
