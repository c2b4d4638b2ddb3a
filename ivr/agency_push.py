"""The EIDO pushed to an agency's webhook (docs/agencies.md): what is signed and how, which
change is worth a new version, and which webhook URLs the plan may name. Pure: the sender
(ari_app/agency_push.py) and the outbox (ari_app/store/agency_outbox.py) do the I/O.

Each update is one HTTP POST of the incident's EIDO as it was when the change happened:

    POST <webhook>
    Content-Type: application/emergency.eido+json
    X-Ivr112-Eido-Id: <the incident URN, the EIDO's $id>
    X-Ivr112-Eido-Version: <1, 2, 3 ... per incident and agency, in order>
    X-Ivr112-Timestamp: <Unix seconds when it was signed>
    X-Ivr112-Signature: sha256=<hex HMAC-SHA256(agency secret, "<timestamp>." + body)>

The receiver checks the signature (and that the timestamp is recent), and keeps each
(Eido-Id, Eido-Version) once: a POST whose answer was lost is sent again.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any
from urllib.parse import urlsplit

from ivr.hosts import loopback_host

CONTENT_TYPE = "application/emergency.eido+json"
SIGNATURE_HEADER = "X-Ivr112-Signature"
TIMESTAMP_HEADER = "X-Ivr112-Timestamp"
EIDO_ID_HEADER = "X-Ivr112-Eido-Id"
VERSION_HEADER = "X-Ivr112-Eido-Version"
# What changes with every step of a call without telling the agency anything new.
_VOLATILE = ("lastUpdateTimeStamp", "eidoMessageIdentifier")
SIGNATURE_TOLERANCE_S = 300


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The X-Ivr112-Signature value of `body` signed at `timestamp` (Unix seconds)."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"sha256={mac.hexdigest()}"


def verify(secret: str, *, timestamp: str, body: bytes, given: str, now: float, tolerance_s: float = SIGNATURE_TOLERANCE_S) -> bool:
    """What a receiver does: the signature matches (constant time) and was made recently."""
    if not timestamp.isdigit() or abs(now - int(timestamp)) > tolerance_s:
        return False
    return hmac.compare_digest(signature(secret, int(timestamp), body), given)


def headers(secret: str, body: bytes, *, eido_id: str, version: int, timestamp: int) -> dict[str, str]:
    """The headers of one push."""
    return {"Content-Type": CONTENT_TYPE, EIDO_ID_HEADER: eido_id, VERSION_HEADER: str(version),
            TIMESTAMP_HEADER: str(timestamp), SIGNATURE_HEADER: signature(secret, timestamp, body)}


def content_digest(eido: dict[str, Any]) -> str:
    """A digest of what the agency would learn from this EIDO: equal digests, nothing new to push."""
    kept = {k: v for k, v in eido.items() if k not in _VOLATILE}
    return hashlib.sha256(json.dumps(kept, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def versioned(eido: dict[str, Any], version: int) -> str:
    """The body of version `version`: the EIDO whose message identifier names the version."""
    return json.dumps({**eido, "eidoMessageIdentifier": f"{eido['$id']}:{version}"}, ensure_ascii=False)


def webhook_problem(url: str) -> str | None:
    """Why `url` cannot be an agency's webhook (the plan validator says it with file and line), or None."""
    if not url or any(c.isspace() for c in url):
        return "webhook must be a URL without spaces, like https://cad.polres.example/eido"
    parts = urlsplit(url)
    try:
        parts.port  # noqa: B018 - raises on a port that is not a number in range
    except ValueError:
        return f"webhook {url!r} has a port that is not a number from 1 to 65535"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return f"webhook {url!r} must be an https:// URL with a host, like https://cad.polres.example/eido"
    if parts.username is not None or parts.password is not None:
        return ("webhook must hold no user or password (they would be written in logs); each push is signed with the "
                "agency's own secret (ivr112 secrets prints it)")
    if parts.fragment:
        return f"webhook {url!r} must have no #fragment"
    if parts.scheme == "http" and not loopback_host(parts.hostname):
        return (f"webhook {url!r} would send the caller's position and number unencrypted; use https:// "
                "(http:// only for a receiver on this machine, 127.0.0.1 or localhost)")
    return None
