"""The console opened to the LAN, on the running app: operators log in over HTTPS with the
certificate the local CA made, browsers are told to stay on HTTPS, a password is never
taken in clear from another machine, and a flood of wrong passwords is refused before any
password is hashed, logged, and lifted by a supervisor.

The app listens on this machine's own LAN address (the test's choice), so the requests
really come from an address that is not loopback.
"""

from __future__ import annotations

import http.client
import json
import ssl
import subprocess
import urllib.parse
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.integration.stack import Stack
from tests.support.net import free_port
from tests.support.stacks import healed, running_stack

pytestmark = pytest.mark.asterisk

FLOOD = 200


def lan_address() -> str | None:
    """This machine's first IPv4 address of global scope (iproute2's `ip`), if it has one."""
    out = subprocess.run(["ip", "-o", "-4", "addr", "show", "scope", "global"], capture_output=True, text=True, check=False).stdout
    for line in out.splitlines():
        fields = line.split()
        if "inet" in fields:
            return fields[fields.index("inet") + 1].split("/")[0]
    return None


LAN = lan_address()


@pytest.fixture(scope="module")
def lan_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    if LAN is None:
        pytest.skip("this machine has no address besides loopback to open the console on")
    with running_stack(tmp_path_factory, "lan", http_host=LAN, console_host=LAN, console_port=free_port()) as s:
        yield s


@pytest.fixture
def lan(lan_stack: Stack, request: pytest.FixtureRequest) -> Iterator[Stack]:
    with healed(lan_stack, request) as s:
        yield s


def _password(s: Stack, name: str) -> str:
    return s.ivr112("console", "password", name).stdout.split("password ", 1)[1].split()[0]


def _door(s: Stack) -> dict[str, str]:
    out = s.ivr112("console", "door").stdout
    return {k.strip(): v.strip().split("  ")[0] for k, v in (line.split(":", 1) for line in out.splitlines())}


def _https(s: Stack, ca: Path | None) -> http.client.HTTPSConnection:
    context = ssl.create_default_context(cafile=str(ca) if ca else None)
    context.check_hostname = False  # the made certificate names this machine; we dial its address
    return http.client.HTTPSConnection(LAN or "", s.settings.console_port, context=context, timeout=10)


Answer = tuple[int, dict[str, Any], http.client.HTTPMessage]


def _ask(conn: http.client.HTTPConnection, method: str, path: str, form: dict[str, str] | None = None,
         cookie: str = "") -> Answer:
    """One request on a connection of its own, closed after."""
    headers = {"Content-Type": "application/x-www-form-urlencoded"} | ({"Cookie": cookie} if cookie else {})
    try:
        conn.request(method, path, urllib.parse.urlencode(form) if form is not None else None, headers)
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read() or b"{}"), resp.headers
    finally:
        conn.close()


def _login(conn: http.client.HTTPConnection, name: str, password: str) -> Answer:
    return _ask(conn, "POST", "/console/login", {"name": name, "password": password})


def test_an_operator_logs_in_over_https_with_the_certificate_the_local_ca_made(lan: Stack) -> None:
    door = _door(lan)
    assert door["url"] == f"https://{LAN}:{lan.settings.console_port}/"
    ca = Path(door["trust"])
    assert ca.name == "console-ca.pem" and len(door["sha256"].split(":")) == 32
    status, body, headers = _login(_https(lan, ca), "operator1", _password(lan, "operator1"))
    assert status == 200 and body["role"] == "operator"
    assert headers["Strict-Transport-Security"] == "max-age=31536000"
    cookie = headers["Set-Cookie"] or ""
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Strict" in cookie
    status, body, headers = _ask(_https(lan, ca), "GET", "/console/session", cookie=cookie.split(";", 1)[0])
    assert status == 200 and body["name"] == "operator1"
    assert headers["Strict-Transport-Security"] == "max-age=31536000"
    # A client that does not trust the local CA stops at its own handshake.
    with pytest.raises(ssl.SSLCertVerificationError):
        _ask(_https(lan, None), "GET", "/")
    audit = lan.api("/api/console/audit?limit=5")
    assert any(r["action"] == "login" and r["name"] == "operator1" and r["address"] == LAN for r in audit), audit


def test_a_password_sent_in_clear_from_the_lan_is_refused_and_points_to_https(lan: Stack) -> None:
    conn = http.client.HTTPConnection(LAN or "", lan.settings.http_port, timeout=10)
    status, body, headers = _login(conn, "operator2", _password(lan, "operator2"))
    assert status == 403, body
    assert f"https://{LAN}:{lan.settings.console_port}/" in body["error"]
    assert headers["Set-Cookie"] is None
    # The HTTPS port speaks nothing but TLS.
    plain = http.client.HTTPConnection(LAN or "", lan.settings.console_port, timeout=10)
    with pytest.raises((ConnectionError, http.client.HTTPException)):
        _login(plain, "operator2", "whatever")


def test_a_flood_of_wrong_passwords_is_refused_unhashed_until_a_supervisor_lifts_the_lock(lan: Stack) -> None:
    ca = Path(_door(lan)["trust"])
    right = _password(lan, "operator1")
    supervisor = _password(lan, "supervisor1")

    def guess(i: int) -> int:
        return _login(_https(lan, ca), "operator1", f"wrong-{i}")[0]

    with ThreadPoolExecutor(8) as pool:
        answers = Counter(pool.map(guess, range(FLOOD)))
    # One check at a time from this address, counted before the next: no more passwords are
    # hashed than the lock allows; the rest are refused unhashed (429), at once.
    assert set(answers) <= {401, 429}, answers
    hashed = answers[401]
    assert hashed <= lan.settings.login_failures_account, answers
    while hashed < lan.settings.login_failures_account:  # a flood too quick to reach the lock
        assert guess(hashed) == 401
        hashed += 1
    status, body, headers = _login(_https(lan, ca), "operator1", right)
    assert status == 429 and "supervisor" in body["error"] and int(headers["Retry-After"] or 0) > 60, body
    assert "locked for account 'operator1' after" in lan.app_log.read_text()
    locks = lan.api("/api/console/locks")
    assert [(lk["kind"], lk["key"]) for lk in locks] == [("account", "operator1")], locks

    # The supervisor, from another account, lifts it; the operator is let in again.
    assert _login(_https(lan, ca), "supervisor1", supervisor)[0] == 200
    assert "was_locked: True" in lan.ivr112("console", "unlock", "operator1").stdout
    assert _login(_https(lan, ca), "operator1", right)[0] == 200
    audit = [(r["action"], r["name"]) for r in lan.api("/api/console/audit?limit=1000")]
    assert audit.count(("login_failed", "operator1")) == hashed
    assert ("locked", "operator1") in audit
    assert ("POST /api/console/locks/lift", "system") in audit
    assert audit[0] == ("login", "operator1")
