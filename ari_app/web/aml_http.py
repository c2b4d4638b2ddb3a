"""The AML receivers: the HTTPS form a handset's Android ELS / iOS sender posts (via the
carrier), and the SMS text an SMS gateway forwards. Each message is matched to the live or
recent call from the same number and attached to its incident.

They are served twice: on the AML door (`ari_app.web.aml_door`, HTTPS, for the carriers) and on
the console's plain-HTTP port for this machine only (an SMS modem's script, `ivr112 aml sms`,
a TLS front end on this host); any other peer there is refused and pointed at the door.

A sender proves itself with its gateway token (`Authorization: Bearer`, or `token=`) or by
its source address; each gateway has a per-minute budget. Missing fields are tolerated
and answered 2xx, as the standard asks; what cannot be read is logged and answered 400,
never a crash.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import logging

from aiohttp import web

from ari_app.calls.controller import LocationArrived
from ari_app.service import Service
from ari_app.web.keys import APP_KEY
from ivr.budget import SlidingBudget
from ivr.location import LocationParseError
from ivr.location.aml import AmlMessage, normalise_msisdn, parse_aml_http, parse_aml_sms

log = logging.getLogger(__name__)

routes = web.RouteTableDef()

MAX_BODY = 16 * 1024
WINDOW_S = 60.0


def rate_limiter(per_minute: int) -> SlidingBudget:
    """At most `per_minute` messages per gateway in any 60 s (one budget across both ports)."""
    return SlidingBudget(per_minute, WINDOW_S)


LIMITER_KEY: web.AppKey[SlidingBudget] = web.AppKey("ivr112_aml_limiter")
# Set on the AML door's application: AML from any address (the token or address decides).
TLS_DOOR: web.AppKey[bool] = web.AppKey("ivr112_aml_tls_door")


def _from_this_machine(request: web.Request) -> bool:
    try:
        return ipaddress.ip_address(request.remote or "").is_loopback
    except ValueError:
        return False


def _unreadable(service: Service, what: str, gateway: str, exc: Exception) -> web.Response:
    """A message that cannot be read: logged, counted, and answered 400 with why."""
    log.warning("%s from gateway %s skipped: %s", what, gateway, exc)
    service.metrics.failure("location_unreadable")
    return _json(400, accepted=False, error=str(exc)[:300])


def _json(status: int, **body: object) -> web.Response:
    return web.json_response(body, status=status)


def _gateway(request: web.Request, service: Service) -> str | None:
    """The name of the gateway that sent this request, or None."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    token = token if scheme.lower() == "bearer" else request.query.get("token", "")
    if token:
        for name, expected in service.secrets.aml_tokens.items():
            if hmac.compare_digest(token.encode("utf-8", "surrogateescape"), expected.encode()) and any(g.name == name for g in service.settings.aml_gateways):
                return name
    peer = request.remote or ""
    for gateway in service.settings.aml_gateways:
        if peer and peer in gateway.addresses:
            return gateway.name
    return None


async def _admit(request: web.Request) -> tuple[Service, str] | web.Response:
    service = request.app[APP_KEY]
    if not request.app.get(TLS_DOOR, False) and not _from_this_machine(request):
        log.warning("AML from %s over plain HTTP refused: only this machine may send AML to this port", request.remote)
        service.metrics.failure("aml_refused")
        door = f"https://{service.settings.aml_host}:{service.settings.aml_port}/aml"
        return _json(403, accepted=False, error=f"AML comes in over HTTPS at the AML door ({door}); "
                                                "this port takes AML only from this machine")
    gateway = _gateway(request, service)
    if gateway is None:
        log.warning("AML from %s refused: no valid gateway token", request.remote)
        service.metrics.failure("aml_refused")
        return _json(401, accepted=False, error="unknown sender: send the gateway's token (ivr112 aml token NAME)")
    if request.content_length is not None and request.content_length > MAX_BODY:
        log.warning("%s from gateway %s refused: %d bytes, at most %d", request.path, gateway, request.content_length, MAX_BODY)
        return _json(413, accepted=False, error=f"an AML message is at most {MAX_BODY} bytes")
    if not request.app[LIMITER_KEY].allow(gateway):
        log.warning("AML gateway %s over its budget of %d per minute", gateway, service.settings.aml_rate_per_minute)
        service.metrics.failure("aml_refused")
        return _json(429, accepted=False, error="too many AML messages from this gateway; slow down")
    return service, gateway


async def _receive(request: web.Request) -> tuple[Service, str, str] | web.Response:
    """The sender admitted and the body read: (service, gateway, text), or the refusal."""
    admitted = await _admit(request)
    if isinstance(admitted, web.Response):
        return admitted
    data = await request.content.read(MAX_BODY + 1)
    if len(data) > MAX_BODY:
        log.warning("%s from gateway %s refused: over %d bytes", request.path, admitted[1], MAX_BODY)
        return _json(413, accepted=False, error=f"an AML message is at most {MAX_BODY} bytes")
    return admitted[0], admitted[1], data.decode("utf-8", errors="replace")


async def _attach(service: Service, message: AmlMessage, *, gateway: str, kind: str, raw: str) -> web.Response:
    attached = await service.locator.attach_aml(
        message, gateway=gateway, kind=kind, raw=raw, live=service.live_calls, plan_for=lambda: service.plans.current.plans
    )
    if attached.live_channel is not None and message.location is not None:
        plan = service.plans.plan_for("")
        good = service.locator.is_good(message.location, plan)
        await service.dispatcher.dispatch(LocationArrived(attached.live_channel, good))
    if attached.incident_id is not None and message.location is not None:
        service.incident_changed(attached.incident_id, "location", {"source": kind})  # the console redraws its map
    log.info("AML (%s) from gateway %s for %s: incident %s", kind, gateway, message.number or "?", attached.incident_id or "none yet")
    return _json(200, accepted=True, incident_id=attached.incident_id, position=message.location is not None)


@routes.post("/aml")
async def aml_https(request: web.Request) -> web.Response:
    received = await _receive(request)
    if isinstance(received, web.Response):
        return received
    service, gateway, text = received
    try:
        if request.content_type == "application/json":
            data = json.loads(text)
            if not isinstance(data, dict):
                raise LocationParseError("a JSON AML message must be an object of field: value")
            fields = {str(k): str(v) for k, v in data.items() if v is not None}
        else:
            from urllib.parse import parse_qsl

            fields = dict(parse_qsl(text, keep_blank_values=True, max_num_fields=100))
        message = parse_aml_http(fields)
    except (LocationParseError, ValueError) as exc:
        return _unreadable(service, "AML HTTPS", gateway, exc)
    return await _attach(service, message, gateway=gateway, kind="aml_http", raw=text)


@routes.post("/aml/sms")
async def aml_sms(request: web.Request) -> web.Response:
    """An SMS gateway forwards the AML SMS: `from` (the sender's number) and `text`."""
    received = await _receive(request)
    if isinstance(received, web.Response):
        return received
    service, gateway, raw = received
    from urllib.parse import parse_qsl

    fields = dict(parse_qsl(raw, keep_blank_values=True, max_num_fields=20)) if request.content_type != "text/plain" else {}
    text = fields.get("text", raw if request.content_type == "text/plain" else "")
    sender = fields.get("from", request.query.get("from", ""))
    try:
        message = parse_aml_sms(text)
        number = normalise_msisdn(sender) if sender else message.number
    except (LocationParseError, ValueError) as exc:
        return _unreadable(service, "AML SMS", gateway, exc)
    if not number:
        return _json(400, accepted=False, error="say which number sent the SMS: from=08...")
    if message.location is None:
        # Nothing to place the caller with: kept for the record, answered as unusable.
        log.warning("AML SMS from gateway %s for %s has no usable position: %s", gateway, number, text[:200])
        return _json(400, accepted=False, error="the AML SMS has no usable lt/lg position")
    return await _attach(service, _with_number(message, number), gateway=gateway, kind="aml_sms", raw=text)


def _with_number(message: AmlMessage, number: str) -> AmlMessage:
    import dataclasses

    return dataclasses.replace(message, number=number)
