"""The console opened to the LAN, on the running app: operators log in over HTTPS with the
certificate the local CA made, browsers are told to stay on HTTPS, a password is never
taken in clear from another machine, and a flood of wrong passwords is refused before any
password is hashed, logged, and lifted by a supervisor.

The other machine is the test's own: a network namespace joined to this one by a veth pair
with private addresses (tests/support/netns.py). The app listens on the host end, an address
that exists only while the module runs; every request to the console comes from inside the
namespace (lan_client.py run there), so from an address that is not loopback, and none of it
reaches this machine's real network.
"""

from __future__ import annotations

import http.client
import json
import ssl
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.stack import Stack
from tests.support.net import free_port
from tests.support.netns import Peer, private_peer
from tests.support.stacks import healed, running_stack

pytestmark = pytest.mark.asterisk

FLOOD = 200
CLIENT = Path(__file__).with_name("lan_client.py")
RAISED: dict[str, type[Exception]] = {
    "SSLCertVerificationError": ssl.SSLCertVerificationError, "ConnectionError": ConnectionError,
    "HTTPException": http.client.HTTPException,
}


@pytest.fixture(scope="module")
def peer() -> Iterator[Peer]:
    with private_peer("i112l") as p:
        yield p


@pytest.fixture(scope="module")
def lan_stack(tmp_path_factory: pytest.TempPathFactory, peer: Peer) -> Iterator[Stack]:
    with running_stack(tmp_path_factory, "lan", http_host=peer.host, console_host=peer.host, console_port=free_port()) as s:
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


Target = dict[str, Any]  # where lan_client.py connects: TLS (with which CA) or plain, host and port
Answer = tuple[int, dict[str, Any], http.client.HTTPMessage]


def _https(s: Stack, ca: Path | None) -> Target:
    return {"tls": True, "ca": str(ca) if ca else None, "host": s.settings.console_host, "port": s.settings.console_port}


def _http(s: Stack, port: int) -> Target:
    return {"tls": False, "ca": None, "host": s.settings.http_host, "port": port}


def _request(to: Target, method: str, path: str, form: dict[str, str] | None = None, cookie: str = "") -> Target:
    return to | {"method": method, "path": path, "form": form, "cookie": cookie}


def _login_request(to: Target, name: str, password: str) -> Target:
    return _request(to, "POST", "/console/login", {"name": name, "password": password})


def _from_peer(peer: Peer, requests: list[Target], threads: int = 1) -> list[Answer]:
    """The requests made from inside the namespace, each on a connection of its own, closed
    after; a failure the client met is raised here as the same kind of exception."""
    job = json.dumps({"threads": threads, "requests": requests})
    res = peer.run([sys.executable, str(CLIENT)], stdin=job)
    assert res.returncode == 0, f"lan_client.py in {peer.netns} failed:\n{res.stderr}"
    answers: list[Answer] = []
    for a in json.loads(res.stdout):
        if "raised" in a:
            raise RAISED.get(a["raised"], AssertionError)(f"{a['raised']}: {a['detail']}")
        headers = http.client.HTTPMessage()
        for name, value in a["headers"]:
            headers[name] = value
        answers.append((a["status"], a["body"], headers))
    return answers


def _ask(peer: Peer, to: Target, method: str, path: str, form: dict[str, str] | None = None, cookie: str = "") -> Answer:
    """One request, from the namespace."""
    return _from_peer(peer, [_request(to, method, path, form, cookie)])[0]


def _login(peer: Peer, to: Target, name: str, password: str) -> Answer:
    return _from_peer(peer, [_login_request(to, name, password)])[0]


def test_an_operator_logs_in_over_https_with_the_certificate_the_local_ca_made(lan: Stack, peer: Peer) -> None:
    door = _door(lan)
    assert door["url"] == f"https://{peer.host}:{lan.settings.console_port}/"
    ca = Path(door["trust"])
    assert ca.name == "operators-ca.pem" and len(door["sha256"].split(":")) == 32
    status, body, headers = _login(peer, _https(lan, ca), "operator1", _password(lan, "operator1"))
    assert status == 200 and body["role"] == "operator"
    assert headers["Strict-Transport-Security"] == "max-age=31536000"
    cookie = headers["Set-Cookie"] or ""
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Strict" in cookie
    status, body, headers = _ask(peer, _https(lan, ca), "GET", "/console/session", cookie=cookie.split(";", 1)[0])
    assert status == 200 and body["name"] == "operator1"
    assert headers["Strict-Transport-Security"] == "max-age=31536000"
    # A client that does not trust the local CA stops at its own handshake.
    with pytest.raises(ssl.SSLCertVerificationError):
        _ask(peer, _https(lan, None), "GET", "/")
    audit = lan.api("/api/console/audit?limit=5")
    assert any(r["action"] == "login" and r["name"] == "operator1" and r["address"] == peer.peer for r in audit), audit


def test_a_password_sent_in_clear_from_the_lan_is_refused_and_points_to_https(lan: Stack, peer: Peer) -> None:
    status, body, headers = _login(peer, _http(lan, lan.settings.http_port), "operator2", _password(lan, "operator2"))
    assert status == 403, body
    assert f"https://{peer.host}:{lan.settings.console_port}/" in body["error"]
    assert headers["Set-Cookie"] is None
    # The HTTPS port speaks nothing but TLS.
    with pytest.raises((ConnectionError, http.client.HTTPException)):
        _login(peer, _http(lan, lan.settings.console_port), "operator2", "whatever")


def test_a_flood_of_wrong_passwords_is_refused_unhashed_until_a_supervisor_lifts_the_lock(lan: Stack, peer: Peer) -> None:
    ca = Path(_door(lan)["trust"])
    right = _password(lan, "operator1")
    supervisor = _password(lan, "supervisor1")

    def guess(i: int) -> int:
        return _login(peer, _https(lan, ca), "operator1", f"wrong-{i}")[0]

    flood = [_login_request(_https(lan, ca), "operator1", f"wrong-{i}") for i in range(FLOOD)]
    answers = Counter(status for status, _, _ in _from_peer(peer, flood, threads=8))
    # One check at a time from this address, counted before the next: no more passwords are
    # hashed than the lock allows; the rest are refused unhashed (429), at once.
    assert set(answers) <= {401, 429}, answers
    hashed = answers[401]
    assert hashed <= lan.settings.login_failures_account, answers
    while hashed < lan.settings.login_failures_account:  # a flood too quick to reach the lock
        assert guess(hashed) == 401
        hashed += 1
    status, body, headers = _login(peer, _https(lan, ca), "operator1", right)
    assert status == 429 and "supervisor" in body["error"] and int(headers["Retry-After"] or 0) > 60, body
    assert "locked for account 'operator1' after" in lan.app_log.read_text()
    locks = lan.api("/api/console/locks")
    assert [(lk["kind"], lk["key"]) for lk in locks] == [("account", "operator1")], locks

    # The supervisor, from another account, lifts it; the operator is let in again.
    assert _login(peer, _https(lan, ca), "supervisor1", supervisor)[0] == 200
    assert "was_locked: True" in lan.ivr112("console", "unlock", "operator1").stdout
    assert _login(peer, _https(lan, ca), "operator1", right)[0] == 200
    audit = [(r["action"], r["name"]) for r in lan.api("/api/console/audit?limit=1000")]
    assert audit.count(("login_failed", "operator1")) == hashed
    assert ("locked", "operator1") in audit
    assert ("POST /api/console/locks/lift", "system") in audit
    assert audit[0] == ("login", "operator1")
