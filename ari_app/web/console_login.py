"""Logging in to the console, and the audit log of who did what.

A login is refused, cheapest first: over plain HTTP from another machine (a password never
crosses the LAN in clear); while its account or its address is locked (login_limits.py; no
store look-up, no scrypt); while its address already has a check under way, or too many
checks wait (password_checks.py).
Only then is the password checked. Every login, failed login, lock-out and lift, and every
change a supervisor (or the system's bearer key) makes, is a line in `console_audit`.
"""

from __future__ import annotations

import ipaddress
import json
import logging
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from ari_app.storage import StoreUnavailable
from ari_app.web.console_auth import COOKIE, PRINCIPAL, SUPERVISOR, Principal, key_hash, secure_cookie
from ari_app.web.keys import APP_KEY, CHECKS_KEY, CONSOLE_URL_KEY, LIMITS_KEY, SESSIONS_KEY
from ari_app.web.login_limits import ACCOUNT, ADDRESS, Lock
from ivr.passwords import hash_password

routes = web.RouteTableDef()
log = logging.getLogger(__name__)

# One wrong name costs what one wrong password does: nobody learns which names exist.
_DUMMY_HASH = hash_password("not a real password")
_CHANGES = ("POST", "PUT", "PATCH", "DELETE")
_AUDIT_LIMIT = 1000
# HSTS: browsers that saw the console over HTTPS never try it in clear for a year.
HSTS = "max-age=31536000"


def _error(status: int, message: str, **headers: str) -> web.Response:
    return web.Response(status=status, text=json.dumps({"error": message}, ensure_ascii=False),
                        content_type="application/json", headers=headers)


def _from_this_machine(request: web.Request) -> bool:
    try:
        return ipaddress.ip_address(request.remote or "").is_loopback
    except ValueError:
        return False


async def audit(request: web.Request, action: str, *, name: str, detail: str = "") -> None:
    """A line in the audit log; a store that fails loses the line, never the request."""
    address = request.remote or ""
    try:
        await request.app[APP_KEY].store.run(lambda s: s.audit(action, name=name, address=address, detail=detail))
    except StoreUnavailable as exc:
        log.error("console audit %s by %r from %s not kept: %s", action, name, address, exc)


async def _form(request: web.Request) -> dict[str, str]:
    try:
        data = await request.post()
    except (ValueError, HttpProcessingError):  # a broken body is an empty form: refused as such
        return {}
    return {k: v for k, v in data.items() if isinstance(v, str)}


@routes.post("/console/login")
async def console_login(request: web.Request) -> web.Response:
    """Form: name, password. Sets the session cookie; answers the CSRF token and the role."""
    if not request.secure and not _from_this_machine(request):
        url = request.app.get(CONSOLE_URL_KEY, "")
        where = f"at {url}" if url else "over HTTPS: set console_host to open the console's HTTPS listener"
        return _error(403, f"logins come in over HTTPS, never in clear across the network: log in {where}")
    form = await _form(request)
    name, password, address = form.get("name", ""), form.get("password", ""), request.remote or ""
    limits = request.app[LIMITS_KEY]
    refusal = limits.check(name, address)
    if refusal is not None:  # before any store look-up or hashing: a flood costs a dictionary look-up each
        return _error(429, refusal.message, **{"Retry-After": str(int(refusal.retry_after_s) + 1)})
    checks = request.app[CHECKS_KEY]
    busy = checks.refusal(address)
    if busy is not None:
        return _error(429, busy, **{"Retry-After": "1"})
    service = request.app[APP_KEY]
    with checks.held(address):
        row = await service.store.run(lambda s: s.console_user(name)) if name else None
        ok = await checks.verify(password, row["password_hash"] if row else _DUMMY_HASH)
        started = [] if row is not None and ok else limits.failed(name, address)  # counted before the turn is let go
    if row is None or not ok:
        log.warning("console login refused for %r from %s", name[:40], address)
        await audit(request, "login_failed", name=name[:64])
        for lock in started:
            await _locked(request, lock)
        return _error(401, "wrong name or password")
    limits.succeeded(name)
    key, session = request.app[SESSIONS_KEY].open(name, row["role"])
    digest, principal = key_hash(key), session.principal
    await service.store.run(lambda s: s.save_session(digest, principal.name, principal.role, session.csrf, session.expires))
    response = web.json_response({"name": name, "role": row["role"], "csrf": session.csrf})
    response.set_cookie(COOKIE, key, httponly=True, samesite="Strict", secure=secure_cookie(request), path="/")
    log.info("console login: %s (%s) from %s", name, row["role"], address)
    await audit(request, "login", name=name, detail=row["role"])
    return response


async def _locked(request: web.Request, lock: Lock) -> None:
    what = f"account {lock.key!r}" if lock.kind == ACCOUNT else f"address {lock.key}"
    minutes = request.app[LIMITS_KEY].limits.lockout_s / 60
    log.warning("console logins locked for %s after %d wrong passwords, for %.0f min or until a supervisor lifts it",
                what, lock.failures, minutes)
    await audit(request, "locked", name=lock.key if lock.kind == ACCOUNT else "", detail=f"{lock.kind} {lock.key}: {lock.failures} failures")


@routes.post("/console/logout")
async def console_logout(request: web.Request) -> web.Response:
    request.app[SESSIONS_KEY].who(request, changes=True, agency=None)
    key = request.cookies.get(COOKIE, "")
    request.app[SESSIONS_KEY].close(key)
    await request.app[APP_KEY].store.run(lambda s: s.drop_session(key_hash(key)))
    response = web.json_response({"ok": True})
    response.del_cookie(COOKIE, path="/")
    return response


@routes.get("/console/session")
async def console_session(request: web.Request) -> web.Response:
    """Who this browser is logged in as, and its CSRF token (for a reloaded page)."""
    session = request.app[SESSIONS_KEY].get(request.cookies.get(COOKIE, ""))
    if session is None:
        return _error(401, "login required: POST /console/login with name and password")
    return web.json_response({"name": session.principal.name, "role": session.principal.role, "csrf": session.csrf})


@routes.get("/api/console/locks")
async def locks(request: web.Request) -> web.Response:
    """Supervisor: the lock-outs in force, with the seconds each has left."""
    request.app[SESSIONS_KEY].who(request, role=SUPERVISOR)
    limits = request.app[LIMITS_KEY]
    now = limits.clock()
    return web.json_response([{"kind": lk.kind, "key": lk.key, "failures": lk.failures, "seconds_left": round(lk.until - now)}
                              for lk in limits.locks()])


@routes.post("/api/console/locks/lift")
async def lift(request: web.Request) -> web.Response:
    """Supervisor: end a lock-out. Form: `account` (a name) or `address`."""
    me = request.app[SESSIONS_KEY].who(request, role=SUPERVISOR, changes=True)
    form = await _form(request)
    kind = ACCOUNT if form.get("account") else ADDRESS if form.get("address") else ""
    if not kind:
        return _error(400, "say what to lift: form field account=NAME or address=IP")
    key = form[kind]
    lifted = request.app[LIMITS_KEY].lift(kind, key)
    log.warning("console lock-out of %s %s lifted by %s", kind, key, me.name)
    return web.json_response({"ok": True, "kind": kind, "key": key, "was_locked": lifted})


@routes.get("/api/console/audit")
async def audit_log(request: web.Request) -> web.Response:
    """Supervisor: the newest lines of the audit log (`?limit=N`, at most 1000)."""
    request.app[SESSIONS_KEY].who(request, role=SUPERVISOR)
    try:
        limit = max(1, min(_AUDIT_LIMIT, int(request.query.get("limit", "100"))))
    except ValueError:
        return _error(400, "limit must be a whole number")
    rows = await request.app[APP_KEY].store.run(lambda s: s.audit_log(limit=limit))
    return web.json_response(rows)


@web.middleware
async def audit_and_hsts(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
    """Audit every change a supervisor made; tell browsers on HTTPS to stay on HTTPS."""
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        if request.secure:
            exc.headers["Strict-Transport-Security"] = HSTS
        raise
    if request.secure:
        response.headers["Strict-Transport-Security"] = HSTS
    principal: Principal | None = request.get(PRINCIPAL)
    if request.method in _CHANGES and principal is not None and principal.supervisor and response.status < 400:
        await audit(request, f"{request.method} {request.path}", name=principal.name, detail=f"{response.status} via {principal.via}")
    return response
