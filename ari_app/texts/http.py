"""The SMS door and the console's text API.

`POST /text/sms` (form `from`, `text`): the carrier's SMS gateway forwards a text sent to
112. It is let in exactly as the AML SMS door lets AML in (`ari_app.web.aml_http`: the
gateway's token or address, the gateway's per-minute budget, the size cap; HTTPS on the AML
door, this machine only on the console's port). The text is stored before the 200: a 503
(store down) or a 429 (this number over its budget) makes the gateway keep it and retry.

`/api/texts...`: the open conversations, one conversation, and an operator's reply.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from collections.abc import Awaitable, Callable
from urllib.parse import parse_qsl

from aiohttp import web

from ari_app.service import Service
from ari_app.storage import StoreUnavailable
from ari_app.web import aml_http
from ari_app.web.keys import APP_KEY, SESSIONS_KEY
from ivr.location import LocationParseError
from ivr.location.aml import normalise_msisdn
from ivr.texts import QUICK_REPLIES, START_TEXT, TextRefused, quick_reply

log = logging.getLogger(__name__)

routes = web.RouteTableDef()  # the SMS door: on the console's port and on the AML door
console_routes = web.RouteTableDef()  # the console's API


def _json(status: int, **body: object) -> web.Response:
    return web.json_response(body, status=status)


@routes.post("/text/sms")
async def sms_in(request: web.Request) -> web.Response:
    received = await aml_http._receive(request)
    if isinstance(received, web.Response):
        return received
    service, gateway, raw = received
    fields = dict(parse_qsl(raw, keep_blank_values=True, max_num_fields=20))
    sender, text = fields.get("from", ""), fields.get("text", "")
    try:
        number = normalise_msisdn(sender)
    except LocationParseError:
        log.warning("SMS text from gateway %s refused: sender %.40r is no phone number", gateway, sender)
        return _json(400, accepted=False, error="say which number sent the SMS: from=08... or +62...")
    desk = service.texts.desk
    flooding = desk.over_budget(number)
    if flooding:
        log.warning("SMS texts from %s over %d per %g s: gateway %s asked to retry later (429)", number,
                    desk.budget.limit, desk.budget.window_s, gateway)
        service.metrics.failure("text_flood")
        return web.json_response({"accepted": False, "error": "too many texts from this number; send it again later"},
                                 status=429, headers={"Retry-After": str(max(1, round(desk.budget.window_s)))})
    try:
        taken = await desk.receive(door="sms", number=number, address=number, raw=text.encode("utf-8", "surrogateescape"))
    except TextRefused as exc:
        log.warning("SMS text from %s via gateway %s refused: %s", number, gateway, exc)
        return _json(400, accepted=False, error=str(exc)[:300])
    except StoreUnavailable as exc:
        log.error("SMS text from %s not taken, the store is down (%s): the gateway keeps it and retries", number, exc)
        return web.json_response({"accepted": False, "error": "cannot keep the text now; send it again"}, status=503,
                                 headers={"Retry-After": "5"})
    if taken is None:  # only a text read with a key can have been kept before; the SMS door gives none
        return _json(200, accepted=True)
    return _json(200, accepted=True, incident_id=taken.incident_id)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _store_down_is_503(handler: Handler) -> Handler:
    """The console's text API while the store fails: a 503 the operator can act on (nothing
    was kept nor sent), not a 500."""

    @functools.wraps(handler)
    async def guarded(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except StoreUnavailable as exc:
            log.error("%s %s: the store is down (%s); the operator is asked to try again", request.method, request.path, exc)
            raise web.HTTPServiceUnavailable(
                text='{"error": "the store is down: nothing was kept nor sent; try again in a moment"}',
                content_type="application/json", headers={"Retry-After": "5"}) from None

    return guarded


def _service(request: web.Request) -> Service:
    return request.app[APP_KEY]


def _incident_id(request: web.Request) -> int:
    try:
        value = int(request.match_info["id"])
    except ValueError:
        raise web.HTTPBadRequest(text='{"error": "incident id must be a number"}', content_type="application/json") from None
    if not 0 <= value < 2**63:
        raise web.HTTPBadRequest(text='{"error": "incident id out of range"}', content_type="application/json")
    return value


@console_routes.get("/api/texts")
@_store_down_is_503
async def conversations(request: web.Request) -> web.Response:
    """The open text conversations, newest first."""
    request.app[SESSIONS_KEY].who(request)
    rows = await _service(request).store.run(lambda s: s.conversations())
    return web.json_response({"conversations": [dataclasses.asdict(r) for r in rows],
                              "quick_replies": QUICK_REPLIES})


@console_routes.get("/api/texts/{id}")
@_store_down_is_503
async def conversation(request: web.Request) -> web.Response:
    """One conversation: the incident, its texts in order, and its positions."""
    request.app[SESSIONS_KEY].who(request)
    incident_id = _incident_id(request)
    store = _service(request).store
    incident = await store.get(incident_id)
    if incident is None:
        raise web.HTTPNotFound(text='{"error": "no such incident"}', content_type="application/json")
    texts = await store.run(lambda s: s.texts(incident_id))
    locations = await store.run(lambda s: s.locations(incident_id))
    return web.json_response({"incident": dataclasses.asdict(incident), "texts": [dataclasses.asdict(t) for t in texts],
                              "locations": [dataclasses.asdict(x) for x in locations]})


@console_routes.post("/api/texts/{id}/start")
@_store_down_is_503
async def start(request: web.Request) -> web.Response:
    """An operator opens a text conversation with the caller of an incident (a silent voice
    caller), by SMS through the carrier's gateway (form: text, else the standard opening in
    `language`). The caller's answer joins the incident."""
    me = request.app[SESSIONS_KEY].who(request, changes=True)
    incident_id = _incident_id(request)
    service = _service(request)
    form = {k: v for k, v in (await request.post()).items() if isinstance(v, str)}
    body = form.get("text", "").strip() or START_TEXT.get(form.get("language", "id"), START_TEXT["id"])
    if len(body) > service.settings.text_max_chars:
        raise web.HTTPBadRequest(text='{"error": "at most text_max_chars characters"}', content_type="application/json")
    if not service.settings.sms_gateway_url:
        raise web.HTTPConflict(text='{"error": "no SMS gateway: set sms_gateway_url (docs/settings.md)"}',
                               content_type="application/json")
    incident = await service.store.get(incident_id)
    if incident is None:
        raise web.HTTPNotFound(text='{"error": "no such incident"}', content_type="application/json")
    try:
        number = normalise_msisdn(incident.caller_number or "")
    except LocationParseError:
        log.warning("operator %s cannot text incident %d: caller number %.40r takes no SMS", me.name, incident_id,
                    incident.caller_number)
        raise web.HTTPConflict(text='{"error": "the caller\'s number is withheld or not a phone number: no SMS possible"}',
                               content_type="application/json") from None
    message_id = await service.texts.desk.reply(incident_id, door="sms", number=number, address=number, body=body,
                                                author=me.name, starts=True)
    log.info("operator %s opened a text conversation with %s on incident %d", me.name, number, incident_id)
    return web.json_response({"ok": True, "incident_id": incident_id, "message_id": message_id, "number": number})


@console_routes.post("/api/texts/{id}/reply")
@_store_down_is_503
async def reply(request: web.Request) -> web.Response:
    """An operator's reply (form: text, or quick = a quick reply's key and language id/en);
    it goes back by the door the last text came in by."""
    me = request.app[SESSIONS_KEY].who(request, changes=True)
    incident_id = _incident_id(request)
    form = {k: v for k, v in (await request.post()).items() if isinstance(v, str)}
    try:
        body = quick_reply(form["quick"], form.get("language", "id")) if form.get("quick") else form.get("text", "").strip()
    except TextRefused as exc:
        raise web.HTTPBadRequest(text=f'{{"error": "{exc}"}}', content_type="application/json") from None
    if not body or len(body) > _service(request).settings.text_max_chars:
        raise web.HTTPBadRequest(text='{"error": "write a reply (text=...), at most text_max_chars"}', content_type="application/json")
    store = _service(request).store
    texts = await store.run(lambda s: s.texts(incident_id))
    last_in = next((t for t in reversed(texts) if t.direction == "in"), None)
    if last_in is None:
        raise web.HTTPNotFound(text='{"error": "no text conversation on this incident"}', content_type="application/json")
    message_id = await _service(request).texts.desk.reply(incident_id, door=last_in.door, number=last_in.number,
                                                          address=last_in.address, body=body, author=me.name)
    log.info("operator %s replied to incident %d by %s", me.name, incident_id, last_in.door)
    return web.json_response({"ok": True, "incident_id": incident_id, "message_id": message_id})
