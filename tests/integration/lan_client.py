"""The LAN test's client, run inside the test's own network namespace (`ip netns exec NS
python lan_client.py`): it reads the requests as JSON on stdin, makes them (each on a
connection of its own, `threads` at a time) and prints one JSON answer per request, in order.

A request: {"tls": bool, "ca": path or null, "host", "port", "method", "path", "form": {..}
or null, "cookie": ""}. An answer: {"status", "body", "headers": [[name, value], ..]}, or
{"raised": "SSLCertVerificationError" | "ConnectionError" | "HTTPException" | other class}.
Standard library only: it runs with the test's interpreter but needs nothing of the project.
"""

from __future__ import annotations

import http.client
import json
import ssl
import sys
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from typing import Any

TIMEOUT_S = 10


def _connection(req: dict[str, Any]) -> http.client.HTTPConnection:
    if not req["tls"]:
        return http.client.HTTPConnection(req["host"], req["port"], timeout=TIMEOUT_S)
    context = ssl.create_default_context(cafile=req["ca"])
    context.check_hostname = False  # the made certificate names the server's machine; we dial its address
    return http.client.HTTPSConnection(req["host"], req["port"], context=context, timeout=TIMEOUT_S)


def _raised(exc: Exception) -> str:
    for kind in (ssl.SSLCertVerificationError, ConnectionError, http.client.HTTPException):
        if isinstance(exc, kind):
            return kind.__name__
    return type(exc).__name__


def ask(req: dict[str, Any]) -> dict[str, Any]:
    form = req.get("form")
    headers = {"Content-Type": "application/x-www-form-urlencoded"} | ({"Cookie": req["cookie"]} if req.get("cookie") else {})
    conn = _connection(req)
    try:
        conn.request(req["method"], req["path"], urllib.parse.urlencode(form) if form is not None else None, headers)
        resp = conn.getresponse()
        return {"status": resp.status, "body": json.loads(resp.read() or b"{}"), "headers": resp.getheaders()}
    except (OSError, http.client.HTTPException, ValueError) as exc:
        return {"raised": _raised(exc), "detail": str(exc)}
    finally:
        conn.close()


def main() -> int:
    job = json.load(sys.stdin)
    with ThreadPoolExecutor(max(1, int(job.get("threads", 1)))) as pool:
        answers = list(pool.map(ask, job["requests"]))
    json.dump(answers, sys.stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
