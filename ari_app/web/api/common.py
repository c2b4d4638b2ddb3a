"""What every API handler needs: the service, who is asking, errors as JSON, forms and ids."""

from __future__ import annotations

import json

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from ari_app.service import Service
from ari_app.web.console_auth import Principal
from ari_app.web.keys import APP_KEY, SESSIONS_KEY
from ari_app.web.scope import Scope, scope_of


def service_of(request: web.Request) -> Service:
    """The running service the app was made for."""
    return request.app[APP_KEY]


def who(request: web.Request, *, role: str | None = None, changes: bool = False, agency: bool | None = False) -> Principal:
    """The logged-in person (or the system's bearer key); 401/403 otherwise. Agencies'
    dispatchers pass only where `agency` is True (or None): see console_auth."""
    return request.app[SESSIONS_KEY].who(request, role=role, changes=changes, agency=agency)


def scoped(request: web.Request, *, role: str | None = None, changes: bool = False,
           agency: bool | None = False) -> tuple[Principal, Scope]:
    """Who is asking (as `who`), and which plans (regencies) they see."""
    me = who(request, role=role, changes=changes, agency=agency)
    return me, scope_of(me, service_of(request).settings)


async def incident_seen(request: web.Request, scope: Scope, incident_id: int) -> None:
    """404 for an incident that does not exist or belongs to a plan `scope` does not see."""
    row = await service_of(request).store.get(incident_id)
    if row is None or not scope.sees(row.plan_id):
        raise error(web.HTTPNotFound, "no such incident")


async def incident_to_change(request: web.Request) -> tuple[Principal, int]:
    """Who is asking to change the URL's incident, and its id: 403 for who may not change
    incidents, 400 for an id that is no number, 404 for an incident they do not see."""
    me, scope = scoped(request, changes=True)
    incident_id = incident_id_of(request)
    await incident_seen(request, scope, incident_id)
    return me, incident_id


def operator_seen(request: web.Request, scope: Scope, name: str) -> bool:
    """Whether an operator works a plan `scope` sees (a provincial operator works them all)."""
    plan = service_of(request).settings.operator_plan(name)
    return scope.provincial or not plan or plan == scope.plan


def authorised(request: web.Request) -> None:
    """Reading: any logged-in person or the bearer key."""
    who(request)


def error(status: type[web.HTTPException], message: str) -> web.HTTPException:
    """An HTTP error of `status` whose JSON body is {"error": message}."""
    return status(text=json.dumps({"error": message}, ensure_ascii=False), content_type="application/json")


async def read_form(request: web.Request) -> dict[str, str]:
    """The request's form fields (files left out); 400 when it cannot be read."""
    try:
        data = await request.post()
    except (ValueError, HttpProcessingError):  # a multipart body without its boundary, a broken part
        raise error(web.HTTPBadRequest, "the form could not be read: send application/x-www-form-urlencoded") from None
    return {k: v for k, v in data.items() if isinstance(v, str)}


def incident_id_of(request: web.Request) -> int:
    """The {id} of the URL as an incident id; 400 when it is not one."""
    try:
        return row_id(request.match_info["id"])
    except ValueError:
        raise error(web.HTTPBadRequest, "incident id must be a number") from None


def row_id(text: str) -> int:
    """A row id from the URL; ValueError for what is no number or too big for SQLite."""
    value = int(text)
    if not 0 <= value < 2**63:
        raise ValueError(text)
    return value
