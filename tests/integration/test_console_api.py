"""The console's API on the running app: logins with hashed passwords, sessions, CSRF,
roles, and the live stream; every refusal a clear JSON error."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

import pytest

from tests.integration.stack import Stack, sipp_args, wait_for

pytestmark = pytest.mark.asterisk


class Browser:
    """A cookie-keeping HTTP client, as a browser page is. (Python's cookie jar will not send
    a Secure cookie over http://127.0.0.1, which browsers do; so the cookie is kept here.)"""

    def __init__(self, live: Stack) -> None:
        self.base = f"http://{live.settings.http_host}:{live.settings.http_port}"
        self.cookie = ""
        self.csrf = ""
        self.set_cookie = ""

    def request(self, method: str, path: str, form: dict[str, str] | None = None, *, csrf: str | None = None) -> urllib.request.Request:
        data = urllib.parse.urlencode(form).encode() if form is not None else (b"" if method == "POST" else None)
        headers = {"X-CSRF-Token": self.csrf if csrf is None else csrf}
        if self.cookie:
            headers["Cookie"] = self.cookie
        return urllib.request.Request(self.base + path, data=data, method=method, headers=headers)

    def call(self, method: str, path: str, form: dict[str, str] | None = None, *, csrf: str | None = None) -> tuple[int, Any]:
        try:
            with urllib.request.urlopen(self.request(method, path, form, csrf=csrf), timeout=10) as resp:
                cookie = resp.headers.get("Set-Cookie", "")
                if cookie:
                    self.set_cookie = cookie
                    self.cookie = cookie.split(";", 1)[0] if "=;" not in cookie.split(";", 1)[0] + ";" else ""
                return resp.status, json.load(resp)
        except urllib.error.HTTPError as exc:
            return exc.code, json.load(exc)

    def login(self, name: str, password: str) -> tuple[int, Any]:
        status, body = self.call("POST", "/console/login", {"name": name, "password": password})
        if status == 200:
            self.csrf = body["csrf"]
        return status, body


def _password(live: Stack, name: str) -> str:
    out = live.ivr112("console", "password", name).stdout
    return out.split("password ", 1)[1].split()[0]


def test_logins_sessions_csrf_and_roles_refuse_clearly(live: Stack) -> None:
    operator_pw, supervisor_pw = _password(live, "operator1"), _password(live, "supervisor1")
    stored = live.read(lambda s: s.console_user("operator1"))
    assert stored is not None and stored["password_hash"].startswith("scrypt$") and operator_pw not in stored["password_hash"]

    anonymous = Browser(live)
    status, body = anonymous.call("GET", "/api/operators")
    assert status == 401 and "login required" in body["error"]
    status, body = anonymous.login("operator1", "not-the-password")
    assert status == 401 and body["error"] == "wrong name or password"
    status, body = anonymous.login("nobody", "whatever-it-is")
    assert status == 401

    op = Browser(live)
    status, body = op.login("operator1", operator_pw)
    assert status == 200 and body["role"] == "operator" and body["csrf"]
    flags = op.set_cookie.lower()
    assert "httponly" in flags and "samesite=strict" in flags and "secure" in flags
    assert op.call("GET", "/api/operators")[0] == 200
    assert op.call("GET", "/console/session")[1]["name"] == "operator1"
    # A change without the session's CSRF token is refused, with it accepted.
    status, body = op.call("POST", "/api/operators/operator1/login", csrf="")
    assert status == 403 and "X-CSRF-Token" in body["error"]
    status, body = op.call("POST", "/api/operators/operator1/login", csrf="forged")
    assert status == 403
    assert op.call("POST", "/api/operators/operator1/login")[0] == 200
    wait_for("operator1 in the queue", lambda: "operator1" in live.queue_members())
    # An operator acts for themselves only; supervisor-only actions are refused.
    status, body = op.call("POST", "/api/operators/operator2/login")
    assert status == 403 and "only their own" in body["error"]
    status, body = op.call("POST", "/api/numbers/081250000000/clear")
    assert status == 403 and body["error"] == "only a supervisor may do this"
    assert op.call("POST", "/api/reload")[0] == 403

    sup = Browser(live)
    assert sup.login("supervisor1", supervisor_pw)[1]["role"] == "supervisor"
    assert sup.call("POST", "/api/operators/operator1/pause", {"reason": "rapat"})[0] == 200
    wait_for("the pause", lambda: live.board()["operator1"]["status"] == "paused")
    status, body = sup.call("POST", "/api/numbers/081250000000/clear")
    assert status == 200
    cleared = live.read(lambda s: s.number_clear("081250000000"))
    assert cleared is not None and cleared.cleared_by == "supervisor1"

    # The figures are the supervisors': JSON and CSV for a period; a bad date is a clear 400.
    assert op.call("GET", "/api/figures")[0] == 403
    status, figures = sup.call("GET", "/api/figures?from=2026-11-01&to=2026-12-31")
    assert status == 200 and {"calls", "answered_within_15s_pct", "answered_within_20s_pct", "categories", "per_operator"} <= set(figures)
    with urllib.request.urlopen(sup.request("GET", "/api/figures.csv?from=2026-11-01&to=2026-12-31"), timeout=10) as resp:
        assert resp.headers["Content-Type"].startswith("text/csv")
        assert resp.read().decode().splitlines()[0] == "from,to,figure,value"
    status, body = sup.call("GET", "/api/figures?from=kemarin")
    assert status == 400 and "from and to are dates" in body["error"]

    # Logging out ends the session.
    assert op.call("POST", "/console/logout")[0] == 200
    assert op.call("GET", "/api/operators")[0] == 401


def test_the_live_stream_pushes_an_operators_change_to_the_page(live: Stack) -> None:
    pw = _password(live, "supervisor1")
    sup = Browser(live)
    sup.login("supervisor1", pw)
    received: list[str] = []

    def listen() -> None:
        with urllib.request.urlopen(sup.request("GET", "/api/stream"), timeout=20) as resp:
            for raw in resp:
                line = raw.decode().strip()
                received.append(line)
                if line.startswith("data:") and '"action": "login"' in line:
                    return

    thread = threading.Thread(target=listen, daemon=True)
    thread.start()
    wait_for("the stream to open", lambda: "event: hello" in received)
    live.register_operator("operator2", live.sipp_port())
    thread.join(timeout=15)
    pushed = [json.loads(line[5:]) for line in received if line.startswith("data:") and "operator2" in line]
    assert any(p["name"] == "operator2" and p["action"] == "login" and p["status"] == "ready" for p in pushed), received


PIDF_CIRCLE = ('<gs:Circle srsName="urn:ogc:def:crs:EPSG::4326"><gml:pos>-2.505 112.965</gml:pos>'
               '<gs:radius uom="urn:ogc:def:uom:EPSG::9001">30</gs:radius></gs:Circle>')


def test_a_caller_in_the_menu_is_on_the_wall_with_arrival_place_in_the_menu_and_what_it_learned_until_routed(live: Stack) -> None:
    caller = "081250006101"
    sup = Browser(live)
    sup.login("supervisor1", _password(live, "supervisor1"))
    pushed: list[str] = []

    def listen() -> None:
        with urllib.request.urlopen(sup.request("GET", "/api/stream"), timeout=40) as resp:
            for raw in resp:
                pushed.append(raw.decode().strip())

    threading.Thread(target=listen, daemon=True).start()
    wait_for("the stream to open", lambda: "event: hello" in pushed)
    # The caller's phone sends its position (PIDF-LO), presses 9 during the greeting (English),
    # listens to the English menu, then presses 0 for an operator.
    call = live.sipp("caller_pidf", *sipp_args(("caller", caller), ("shape", PIDF_CIRCLE)), "-s", "112", "-d", "500",
                     steps=[("pause", "1000"), ("dtmf", "9"), ("pause", "6000"), ("dtmf", "0"), ("pause", "3000")],
                     background=True, timeout=60)

    def in_menu() -> dict[str, Any] | None:
        rows = [c for c in sup.call("GET", "/api/wall")[1]["in_ivr"] if c["caller"] == caller]
        return rows[0] if rows and rows[0]["state"].startswith("menu") and rows[0]["choices"] else None

    row = wait_for("the caller in the menu on the wall", in_menu, timeout=15)
    incident = live.incident_for(caller)
    assert incident is not None and incident.operator_answered_at is None
    assert row["incident_id"] == incident.id and row["arrived_at"] == incident.arrived_at
    assert row["language"] == "en" and row["pressed"] is True
    assert [(c["kind"], c.get("digits") or c.get("language")) for c in row["choices"]] == [("choice", "9"), ("language", "en")]
    assert row["location"]["kecamatan"] == "Baamang" and row["location"]["radius_m"] == 30 and row["location"]["source"] == "pidf"
    assert "event: wall" in pushed  # the wall is told live, it need not poll

    # Pressing 0 routes the call: it leaves the menu, and the wall says so.
    wait_for("the call to leave the menu", lambda: all(c["caller"] != caller for c in sup.call("GET", "/api/wall")[1]["in_ivr"]), timeout=20)
    routed = live.read(lambda s: s.get(incident.id))
    assert routed is not None and (routed.route or "").startswith(("queue:", "agency:")), routed
    assert call.wait() == 0, call.report()
    assert all(c["caller"] != caller for c in sup.call("GET", "/api/wall")[1]["in_ivr"])


CHANGES = [
    "/api/operators/operator1/login", "/api/operators/operator1/logout", "/api/operators/operator1/pause",
    "/api/operators/operator1/resume", "/api/callbacks/0812/call", "/api/incidents/1/classify", "/api/incidents/1/transfer",
    "/api/incidents/1/close", "/api/numbers/0812/clear", "/api/reload", "/api/announcement", "/console/logout",
]
READS = ["/api/operators", "/api/incidents", "/api/incidents/1", "/api/callbacks", "/api/plan", "/api/boundaries",
         "/api/operators/operator1/log", "/api/announcement"]
SUPERVISOR_ONLY = ["/api/figures", "/api/figures.csv", "/api/wall", "/metrics"]


def test_every_action_refuses_a_caller_with_no_session_and_every_change_one_without_its_csrf_token(live: Stack) -> None:
    anonymous = Browser(live)
    for path in CHANGES:
        status, body = anonymous.call("POST", path, {})
        assert status == 401 and "login required" in body["error"], path
    for path in READS + SUPERVISOR_ONLY:
        assert anonymous.call("GET", path)[0] == 401, path
    op = Browser(live)
    op.login("operator1", _password(live, "operator1"))
    for path in CHANGES:
        status, body = op.call("POST", path, {}, csrf="")
        assert status == 403 and "X-CSRF-Token" in body["error"], path
    for path in SUPERVISOR_ONLY:
        status, body = op.call("GET", path)
        assert status == 403 and body["error"] == "only a supervisor may do this", path
    assert op.call("DELETE", "/api/announcement")[0] == 403
