"""The EIDO push without a socket: the signature a receiver checks, the webhook URLs a plan
may name (refused with file, line and what to do), and which change makes a new version."""

from __future__ import annotations

import json

import pytest

from ivr import agency_push as push
from ivr.errors import PlanError
from ivr.plan import parse_plan
from ivr.yamlsrc import load_yaml
from tests.unit.test_validate import BASE

SECRET = "s3cret-of-the-police"


def test_a_receiver_verifies_the_signature_over_the_timestamp_and_the_body() -> None:
    body = b'{"$id": "urn:emergency:uid:incidentid:0000000007:x"}'
    sent = push.headers(SECRET, body, eido_id="urn:x", version=3, timestamp=1_700_000_000)
    assert sent[push.VERSION_HEADER] == "3" and sent[push.EIDO_ID_HEADER] == "urn:x"
    assert sent["Content-Type"] == "application/emergency.eido+json"
    given, stamp = sent[push.SIGNATURE_HEADER], sent[push.TIMESTAMP_HEADER]
    assert given.startswith("sha256=") and len(given) == len("sha256=") + 64
    assert push.verify(SECRET, timestamp=stamp, body=body, given=given, now=1_700_000_010)
    # A changed body, another agency's secret, a replay long after, or a forged timestamp all fail.
    assert not push.verify(SECRET, timestamp=stamp, body=body + b" ", given=given, now=1_700_000_010)
    assert not push.verify("the-fire-service", timestamp=stamp, body=body, given=given, now=1_700_000_010)
    assert not push.verify(SECRET, timestamp=stamp, body=body, given=given, now=1_700_000_000 + 3600)
    assert not push.verify(SECRET, timestamp="1700000001", body=body, given=given, now=1_700_000_010)


def test_only_a_change_the_agency_can_see_makes_a_new_version() -> None:
    eido = {"$id": "urn:i", "lastUpdateTimeStamp": "t1", "eidoMessageIdentifier": "urn:i:t1", "incidentComponent": {"s": "Open"}}
    later_step = {**eido, "lastUpdateTimeStamp": "t2", "eidoMessageIdentifier": "urn:i:t2"}
    answered = {**later_step, "incidentComponent": {"s": "Connected"}}
    assert push.content_digest(eido) == push.content_digest(later_step) != push.content_digest(answered)
    assert json.loads(push.versioned(eido, 4))["eidoMessageIdentifier"] == "urn:i:4"


@pytest.mark.parametrize(("url", "said"), [
    ("ftp://cad.example/eido", "must be an https:// URL with a host"),
    ("https:///eido", "must be an https:// URL with a host"),
    ("https://user:pw@cad.example/eido", "must hold no user or password"),
    ("http://cad.polres.example/eido", "unencrypted; use https://"),
    ("https://cad.example:99999/eido", "port that is not a number"),
    ("https://cad.example/e ido", "without spaces"),
])
def test_a_bad_webhook_is_refused_with_its_place_and_what_to_do(url: str, said: str) -> None:
    text = BASE.replace("    on_failure: {queue: ops}\n", f"    on_failure: {{queue: ops}}\n    webhook: {json.dumps(url)}\n", 1)
    with pytest.raises(PlanError) as exc:
        parse_plan(load_yaml(text, "p.yaml"), "p.yaml")
    (problem,) = [str(p) for p in exc.value.problems]
    assert problem.startswith("p.yaml:11:14: agency 'police': ") and said in problem


def test_a_good_webhook_is_kept_and_http_is_allowed_on_this_machine_only() -> None:
    for url in ("https://cad.polres.example/eido?x=1", "http://127.0.0.1:8080/eido", "http://localhost/eido"):
        text = BASE.replace("    on_failure: {queue: ops}\n", f"    on_failure: {{queue: ops}}\n    webhook: {url}\n", 1)
        assert parse_plan(load_yaml(text, "p.yaml"), "p.yaml").agencies["police"].webhook == url
