"""Console sessions told between nodes (ari_app.web.console_auth.Sessions.share/apply): a
login elsewhere is good here, a logout elsewhere ends it here, a message that is not
understood is refused with a log line and changes nothing."""

from __future__ import annotations

from typing import Any

import pytest

from ari_app.web.console_auth import Sessions, key_hash


def test_a_login_and_a_logout_on_one_node_reach_the_other() -> None:
    told: list[dict[str, Any]] = []
    here, there = Sessions("secret"), Sessions("secret")
    here.share = told.append
    key, session = here.open("andi", "operator")
    there.apply("session", told[-1])
    got = there.get(key)
    assert got is not None and got.principal.name == "andi" and got.csrf == session.csrf
    here.close(key)
    assert told[-1] == {"op": "close", "key_hash": key_hash(key)}  # the key itself never leaves the node
    there.apply("session", told[-1])
    assert there.get(key) is None


@pytest.mark.parametrize("change", [
    {"op": "open", "name": "x", "role": "operator", "csrf": "c", "expires": 9e9},  # no key hash
    {"op": "open", "key_hash": key_hash("k"), "name": "x", "role": "root", "csrf": "c", "expires": 9e9},
    {"op": "open", "key_hash": key_hash("k"), "name": "x", "role": "operator", "csrf": "c", "expires": "never"},
    {"op": "rename", "key_hash": key_hash("k")},
])
def test_a_change_not_understood_is_refused_with_a_log_line(change: dict[str, Any], caplog: pytest.LogCaptureFixture) -> None:
    sessions = Sessions("secret")
    sessions.apply("session", change)
    assert sessions.get("k") is None
    assert "ignored" in caplog.text
