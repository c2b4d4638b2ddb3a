"""Who is asking: console sessions (operators and supervisors) and the scripts' bearer key.

- A person logs in with name and password (`POST /console/login`); passwords are scrypt
  hashes in the store (`ivr112 console password NAME` sets one). The answer sets an
  HttpOnly, SameSite=Strict session cookie (Secure whenever the browser talks HTTPS or to
  this machine) and returns the session's CSRF token.
- Every request that changes something and rides on the cookie must carry that token in
  `X-CSRF-Token`; reading needs only the cookie.
- Scripts and the `ivr112` command send `Authorization: Bearer <console_secret>` and act
  as the system (supervisor rights; no cookie, so no CSRF).
- An agency's dispatcher (role `agency:<name>`, `ivr112 console password NAME --agency
  police`) passes only the doors that ask for an agency (`who(..., agency=True)`: its own
  page, docs/agencies.md); every other door refuses it, so a door added later is closed
  to agencies unless it says otherwise.
Sessions last `SESSION_HOURS`. They are kept in the store (only a hash of each key), so an
app restart in the middle of a shift does not log the operators out. Several nodes on one
PostgreSQL store tell each other of every login and logout (`share`, `apply`: the node
feed, ari_app/store/notify.py), so a session opened on one is good on all, and one closed
on one is closed on all.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from ivr.hosts import loopback_host

COOKIE = "ivr112_session"
CSRF_HEADER = "X-CSRF-Token"
SESSION_HOURS = 12
OPERATOR, SUPERVISOR = "operator", "supervisor"
AGENCY_ROLE = "agency:"  # + the plan's agency name
PRINCIPAL = "ivr112_principal"  # the request's key for who made it (the audit log reads it)
ROLES = (OPERATOR, SUPERVISOR)
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Principal:
    name: str
    role: str  # operator, supervisor or agency:<name>
    via: str  # "session" or "bearer"

    @property
    def supervisor(self) -> bool:
        return self.role == SUPERVISOR

    @property
    def agency(self) -> str | None:
        """The agency whose dispatcher this is; None for the centre's own people."""
        return self.role[len(AGENCY_ROLE):] if self.role.startswith(AGENCY_ROLE) else None


@dataclass
class Session:
    principal: Principal
    csrf: str
    expires: float


def _json_error(status: type[web.HTTPException], message: str) -> web.HTTPException:
    return status(text=json.dumps({"error": message}, ensure_ascii=False), content_type="application/json")


class Sessions:
    def __init__(self, console_secret: str) -> None:
        self.console_secret = console_secret
        self._sessions: dict[str, Session] = {}
        # Set when other nodes share the store: each login and logout here is told to them.
        self.share: Callable[[dict[str, Any]], None] | None = None

    def open(self, name: str, role: str) -> tuple[str, Session]:
        """A new session; the caller keeps `(key_hash(key), session)` in the store."""
        key = secrets.token_urlsafe(32)
        session = Session(Principal(name, role, "session"), secrets.token_urlsafe(24), time.time() + SESSION_HOURS * 3600)
        digest = key_hash(key)
        self._sessions[digest] = session
        if self.share is not None:
            self.share({"op": "open", "key_hash": digest, "name": name, "role": role, "csrf": session.csrf,
                        "expires": session.expires})
        return key, session

    def apply(self, _kind: str, change: dict[str, Any]) -> None:
        """A login or logout on another node (see `share`)."""
        op, digest = change.get("op"), change.get("key_hash")
        if not isinstance(digest, str):
            log.warning("console session change from another node without its key hash ignored")
        elif op == "close":
            self._sessions.pop(digest, None)
        elif op == "open" and change.get("role") in ROLES and isinstance(change.get("name"), str) \
                and isinstance(change.get("csrf"), str) and isinstance(change.get("expires"), (int, float)):
            self.restore([change])
        else:
            log.warning("console session change from another node not understood (%r); ignored", op)

    def restore(self, rows: list[dict[str, Any]]) -> None:
        """The sessions the store kept across a restart."""
        for r in rows:
            self._sessions[r["key_hash"]] = Session(Principal(r["name"], r["role"], "session"), r["csrf"], float(r["expires"]))

    def close(self, key: str) -> None:
        digest = key_hash(key)
        self._sessions.pop(digest, None)
        if self.share is not None:
            self.share({"op": "close", "key_hash": digest})

    def get(self, key: str) -> Session | None:
        digest = key_hash(key)
        session = self._sessions.get(digest)
        if session is None or session.expires < time.time():
            self._sessions.pop(digest, None)
            return None
        return session

    def who(self, request: web.Request, *, role: str | None = None, changes: bool = False,
            agency: bool | None = False) -> Principal:
        """The caller of `request`, or a 401/403 with what to do. `changes`: the request
        alters state, so a cookie-borne session must show its CSRF token. `agency`: False
        (the default) lets only the centre's people in, True only an agency's dispatcher,
        None both (logging out)."""
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() == "bearer":
            if not hmac.compare_digest(_raw(token), self.console_secret.encode()):
                raise _json_error(web.HTTPUnauthorized, "wrong key: send Authorization: Bearer <console_secret> (ivr112 secrets show)")
            if agency is True:
                raise _json_error(web.HTTPForbidden, "this door is an agency dispatcher's: log in with an agency account")
            request[PRINCIPAL] = principal = Principal("system", SUPERVISOR, "bearer")
            return principal
        session = self.get(request.cookies.get(COOKIE, ""))
        if session is None:
            raise _json_error(web.HTTPUnauthorized, "login required: POST /console/login with name and password")
        if changes and not hmac.compare_digest(_raw(request.headers.get(CSRF_HEADER, "")), session.csrf.encode()):
            raise _json_error(web.HTTPForbidden, f"missing or wrong {CSRF_HEADER}: reload the console and try again")
        mine = session.principal.agency
        if mine is not None and agency is False:
            raise _json_error(web.HTTPForbidden, f"this account is agency {mine}'s dispatcher: its page is /agency")
        if mine is None and agency is True:
            raise _json_error(web.HTTPForbidden, "this door is an agency dispatcher's: log in with an agency account")
        if role == SUPERVISOR and not session.principal.supervisor:
            raise _json_error(web.HTTPForbidden, "only a supervisor may do this")
        request[PRINCIPAL] = session.principal
        return session.principal


def key_hash(key: str) -> str:
    return hashlib.sha256(_raw(key)).hexdigest()


def _raw(header_value: str) -> bytes:
    """A header's bytes as they came: aiohttp keeps bytes that are not UTF-8 as surrogates,
    which a plain .encode() refuses with an error (a 500 for a hostile header)."""
    return header_value.encode("utf-8", "surrogateescape")


def secure_cookie(request: web.Request) -> bool:
    """Secure cookies need HTTPS, except that browsers treat this machine as secure too."""
    if request.secure:
        return True
    return loopback_host((request.host or "").rsplit(":", 1)[0].strip("[]"))
