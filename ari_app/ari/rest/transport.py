"""The HTTP side of the ARI client: one aiohttp session, one `request`, typed errors.

Every REST resource (`channels`, `bridges`, `media`, `applications`) is a subclass of
`AriRest` that only builds paths and parameters; the request, its authentication, its
timeout and the mapping of a failure onto `ari_app.ari.errors` happen here, once.
"""

from __future__ import annotations

import base64
import json as jsonlib
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import aiohttp

from ari_app.ari.errors import AriUnavailable, error_for

ParamValue = str | int | float

# Enough of an error page to recognise it, not a whole HTML dump in one log line.
_REASON_MAX_CHARS = 300


def basic_auth(username: str, password: str) -> str:
    """Return the Authorization header value for HTTP basic auth."""
    # Built here: aiohttp 3.14 deprecates BasicAuth, and its replacement is not in older releases.
    token = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
    return f"Basic {token}"



def seg(resource_id: str) -> str:
    """Quote an id for use as one path segment (bridge and playback ids are ours to pick)."""
    return quote(resource_id, safe="")


def _query(params: Mapping[str, ParamValue | None] | None) -> dict[str, str]:
    # aiohttp refuses bools in a query and ARI wants "true"/"false"; None means "leave out".
    query: dict[str, str] = {}
    for key, value in (params or {}).items():
        if value is None:
            continue
        if isinstance(value, bool):
            query[key] = "true" if value else "false"
        else:
            query[key] = str(value)
    return query


def error_reason(body: bytes, http_reason: str) -> str:
    """Asterisk's JSON `message`, else the body text, else the HTTP reason phrase."""
    text = body.decode("utf-8", "replace").strip()
    try:
        decoded = jsonlib.loads(text) if text else None
    except ValueError:
        decoded = None
    if isinstance(decoded, dict) and isinstance(decoded.get("message"), str):
        return str(decoded["message"])
    return text[:_REASON_MAX_CHARS] or http_reason


def decode_body(body: bytes) -> Any:
    """An answer's body: its JSON, None when empty, the text when it is not JSON."""
    if not body.strip():
        return None
    try:
        return jsonlib.loads(body)
    except ValueError:
        return body.decode("utf-8", "replace")


def describe_exc(exc: BaseException, timeout: float) -> str:
    if isinstance(exc, TimeoutError) and not str(exc):
        return f"no answer within {timeout:g} s"
    return str(exc) or type(exc).__name__


class AriRest:
    """The session, credentials and timeout every ARI REST request goes through."""

    def __init__(self, *, base_url: str, username: str, password: str, app: str, request_timeout: float, session: aiohttp.ClientSession | None = None) -> None:
        """`base_url` is Asterisk's HTTP server, e.g. "http://127.0.0.1:8088"."""
        self._base_url = base_url.rstrip("/")
        self._app = app
        self._auth_headers = {"Authorization": basic_auth(username, password)}
        self._request_timeout = request_timeout
        self._timeout = aiohttp.ClientTimeout(total=request_timeout)
        self._session = session
        self._owns_session = session is None
        self._closing = False
        # Set by AriClient while its event WebSocket is read: requests then go over it.
        self._over_ws: Any = None

    @property
    def app(self) -> str:
        """The Stasis application name this client serves."""
        return self._app


    def _get_session(self, method: str, path: str) -> aiohttp.ClientSession:
        if self._closing:
            raise AriUnavailable(method, path, None, "the ARI client is closed")
        if self._session is None:
            # Made lazily: aiohttp wants its session created inside the running loop.
            self._session = aiohttp.ClientSession()
        return self._session

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, ParamValue | None] | None = None,
        json: Any = None,
        channel_id: str | None = None,
    ) -> Any:
        """Send `method` to `{base_url}/ari{path}`; return the decoded JSON, or None if empty.
        Over the event WebSocket while it is open, for the requests `over_websocket`
        carries there; else over HTTP.

        Raises the AriError subclass for the status (AriUnavailable when nothing answered).
        `channel_id` only names the call in the error message.
        """
        over_ws = self._over_ws
        if over_ws is not None and json is None and not self._closing and over_ws.carries(method, path):
            return await over_ws.request(method, path, _query(params), channel_id=channel_id)
        session = self._get_session(method, path)
        url = f"{self._base_url}/ari{path}"
        try:
            async with session.request(
                method,
                url,
                params=_query(params),
                json=json,
                headers=self._auth_headers,
                timeout=self._timeout,
            ) as response:
                body = await response.read()
                status = response.status
                http_reason = response.reason or ""
        except (aiohttp.ClientError, TimeoutError) as exc:
            reason = describe_exc(exc, self._request_timeout)
            raise AriUnavailable(method, path, None, reason, channel_id) from exc
        if not 200 <= status < 300:
            raise error_for(method, path, status, error_reason(body, http_reason), channel_id)
        return decode_body(body)
